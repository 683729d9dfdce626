"""Fetching one model file from CivitAI into the library, resumable and verified.

Owns the on-disk protocol of a download: ``<name>.part`` plus a small ``<name>.part.json``
state file in the target folder, Range resumes (after a dropped connection and across a
restart of this process), SHA256 computed while the bytes arrive, refusal of web pages,
the no-overwrite rename into place, then sidecar, preview and index. It must not queue,
schedule or decide where a file goes (the plan says so).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any, BinaryIO, Protocol

import aiohttp

from ...errors import LibraryError, UpstreamUnavailable, ValidationError
from ..civitai.civitai_client import HTML_INSTEAD_OF_FILE, CivitaiClient
from ..civitai.civitai_sync_service import CivitaiSyncService
from ..library.leftover_files import claim_part, release_part
from ..library.model_library import ModelLibrary
from ..library.model_scanner import LibraryRoot, stamp_of
from ..library.type_library import HashStore
from ..shared.atomic_file import write_json_atomic
from ..shared.file_lock import try_lock
from ..shared.file_transfer import TargetExists, move_no_replace
from ..shared.sidecar_store import sidecar_path
from .download_records import DownloadIntegrityError, DownloadJob, DownloadPlan

_log = logging.getLogger(__name__)

STATE_SUFFIX = ".json"  # after ".part"
WRITE_BATCH = 4 * 1024 * 1024  # bytes handed to the writer threads at once
WRITEBACK_EVERY = 64 * 1024 * 1024  # bytes between background fdatasync calls
WRITE_QUEUE_DEPTH = 4  # batches in flight at most (memory: depth x batch)
REPORT_INTERVAL = 0.25  # seconds between progress snapshots while streaming
MAX_STALLED_ATTEMPTS = 5  # reconnects in a row without a single new byte
_MAX_FREE_NAMES = 1000
_HTML_SNIFF = re.compile(rb"^\s*(<!doctype html|<html|<\?xml|<head|<body)", re.IGNORECASE)
# CivitAI's JSON errors; kept narrow, as a safetensors file may start with '{"' by chance
# (its first 8 bytes are the header length).
_JSON_SNIFF = re.compile(rb'^\s*\{\s*"(error|message)"\s*:')


def safe_file_name(name: str, fallback: str) -> str:
    """A plain file name (no folders, no NUL, no leading dot) for a name CivitAI sent."""
    base = re.split(r"[/\\]", name or "")[-1].replace("\x00", "").strip().lstrip(".")
    base = re.sub(r'[<>:"|?*\x00-\x1f]', "_", base)
    return base[:200] or fallback


def check_model_file_name(root: LibraryRoot, file_name: str) -> None:
    """Refuse a name the library would never list there (``.bashrc``, ``payload.html``):
    such a file could then never be managed or deleted from the UI. ``ValidationError``."""
    extension = os.path.splitext(file_name)[1].lower()
    if extension not in root.extensions:
        kinds = ", ".join(sorted(root.extensions))
        what = root.sub_type.replace("_", " ") if root.sub_type else root.model_type.value
        raise ValidationError(
            f"CivitAI names the file '{file_name[:200]}', which is not a {what} file the library lists "
            f"({kinds}); it was not downloaded",
            extra={"file_name": file_name[:200]},
        )


def content_disposition_name(value: str | None) -> str:
    """The file name of a ``Content-Disposition`` header ('' when none)."""
    if not value:
        return ""
    match = re.search(r"filename\*=(?:UTF-8'')?([^;]+)", value, re.IGNORECASE)
    if match:
        from urllib.parse import unquote

        return unquote(match.group(1).strip().strip('"'))
    match = re.search(r'filename="?([^";]+)"?', value, re.IGNORECASE)
    return match.group(1).strip() if match else ""


class _PartFile:
    """The ``.part`` file and its running SHA256; every method blocks (call in a thread).

    While open it is claimed in this process and locked (byte 0), so the scanner's sweep of
    abandoned downloads, here or on another host sharing the folder, leaves it alone.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.size = 0
        self._fh: BinaryIO | None = None
        self._unsynced = 0
        self._flusher: ThreadPoolExecutor | None = None
        self._writeback: Future[None] | None = None

    def open_existing(self) -> int:
        """Hash what an earlier run left, keep appending to it; returns its size."""
        claim_part(self.path)
        try:
            digest = hashlib.sha256()
            size = 0
            # Read before the append handle is opened and locked: closing this reader
            # afterwards would drop the lock (POSIX locks belong to the process).
            with open(self.path, "rb") as fh:
                while chunk := fh.read(8 * 1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            self.digest, self.size = digest, size
            self._open_locked("ab")
        except BaseException:
            release_part(self.path)
            raise
        return size

    def open_new(self) -> None:
        claim_part(self.path)
        try:
            self.digest, self.size = hashlib.sha256(), 0
            self._open_locked("wb")
        except BaseException:
            release_part(self.path)
            raise

    def _open_locked(self, mode: str) -> None:
        self._fh = open(self.path, mode)
        # Advisory and best effort: a filesystem without locks still has the age guard.
        with suppress(OSError):
            try_lock(self._fh.fileno(), 0, 1)

    def write(self, chunks: list[bytes]) -> None:
        """Append and hash (one thread)."""
        self.append(chunks)
        self.hash(chunks)

    def append(self, chunks: list[bytes]) -> None:
        assert self._fh is not None
        write = self._fh.write
        for data in chunks:
            write(data)
            self.size += len(data)
            self._unsynced += len(data)
        if self._unsynced >= WRITEBACK_EVERY and (self._writeback is None or self._writeback.done()):
            # Start writing dirty pages out while the download goes on, so the final fsync
            # (before the rename) has little left to do.
            self._fh.flush()
            self._unsynced = 0
            if self._flusher is None:
                self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-download-sync")
            self._writeback = self._flusher.submit(os.fdatasync, self._fh.fileno())

    def hash(self, chunks: list[bytes]) -> None:
        update = self.digest.update
        for data in chunks:
            update(data)

    def close(self, *, sync: bool = False) -> None:
        if self._fh is None:
            return
        try:
            if self._writeback is not None:
                with suppress(OSError):
                    self._writeback.result()
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
        finally:
            self._fh.close()  # drops the lock
            self._fh = None
            release_part(self.path)
            if self._flusher is not None:
                self._flusher.shutdown(wait=True)
                self._flusher, self._writeback = None, None


async def _write_after(previous: "asyncio.Future[None] | None", part: _PartFile, batch: list[bytes]) -> None:
    """Append and hash ``batch`` once ``previous`` is written (a failure there stops this one)."""
    if previous is not None:
        await previous
    await asyncio.gather(asyncio.to_thread(part.append, batch), asyncio.to_thread(part.hash, batch))


def _remove_quietly(*paths: str) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            os.unlink(path)


class DownloadSource(Protocol):
    """Where a plan with ``origin["kind"]`` gets its bytes and its sidecar (HuggingFace, issue 14)."""

    async def open_download(self, plan: DownloadPlan, headers: dict[str, str]) -> aiohttp.ClientResponse: ...

    async def write_metadata(self, entry: Any, plan: DownloadPlan, sha256: str) -> None: ...


class Downloader:
    """Streams a planned CivitAI file into its folder and adds it to the library.

    ``run`` raises the client's typed errors (401/403/404/410/502), ``DownloadIntegrityError``
    (hash or size mismatch, a web page instead of the file: the partial file is removed) and
    ``CancelledError`` (pause or cancel: the ``.part`` stays; the download service removes
    it on cancel). Progress goes into the job's detail and out through ``job.publish()``.
    Writes the model, its sidecar and preview; ``refresh_paths`` broadcasts ``models_changed``.
    """

    def __init__(
        self,
        *,
        client: CivitaiClient,
        sync: CivitaiSyncService,
        library: ModelLibrary,
        hashes: HashStore,
        retry_delay: float = 0.5,
        sources: Mapping[str, DownloadSource] | None = None,
    ) -> None:
        self._client = client
        self._sync = sync
        self._library = library
        self._hashes = hashes
        self.retry_delay = retry_delay
        self._sources = dict(sources or {})

    def _source(self, plan: DownloadPlan) -> DownloadSource | None:
        """The source of a non-CivitAI plan (None for CivitAI); ``ValidationError`` for an unknown one."""
        kind = plan.origin.get("kind") if plan.origin else None
        if not kind:
            return None
        source = self._sources.get(str(kind))
        if source is None:
            raise ValidationError(f"downloads from {kind} are not available in this process")
        return source

    @staticmethod
    def part_files(plan: DownloadPlan) -> tuple[str, str]:
        return plan.part_path, plan.part_path + STATE_SUFFIX

    async def discard_partial(self, plan: DownloadPlan) -> None:
        """Remove the ``.part`` and its state file (cancel, failure)."""
        await asyncio.to_thread(_remove_quietly, *self.part_files(plan))

    async def run(self, job: DownloadJob) -> str:
        """Download, verify, move into place and index; returns the final file path."""
        plan = job.detail.plan
        root = self._library[plan.model_type].root_for(plan.target_dir)
        if root is None:
            # a download restored after a restart whose library folder is no longer configured
            raise ValidationError(f"'{plan.target_dir}' is no longer inside a {plan.model_type.value} folder of the library")
        check_model_file_name(root, plan.file_name)  # before any byte is written
        await asyncio.to_thread(os.makedirs, plan.target_dir, exist_ok=True)
        part = _PartFile(plan.part_path)
        try:
            offset = await asyncio.to_thread(self._prepare_part, part, plan)
            await self._stream(job, plan, part, offset)
            await asyncio.to_thread(part.close, sync=True)
        except BaseException:
            await asyncio.to_thread(part.close)
            raise
        job.detail.verify()
        await job.publish()
        try:
            self._check_integrity(plan, part)
        except DownloadIntegrityError:
            await self.discard_partial(plan)
            raise
        final_path = await asyncio.to_thread(self._move_into_place, plan)
        await self._add_to_library(plan, final_path, part.digest.hexdigest())
        return final_path

    # ---------------------------------------------------------------- the .part protocol
    @staticmethod
    def _state(plan: DownloadPlan) -> dict[str, Any]:
        state = {"version_id": plan.version_id, "sha256": plan.sha256, "file_params": plan.file_params}
        if plan.origin:
            state["origin"] = plan.origin.get("url")
        return state

    def _prepare_part(self, part: _PartFile, plan: DownloadPlan) -> int:
        """Reuse a ``.part`` an earlier run of the same download left (hashing it first)."""
        part_path, state_path = self.part_files(plan)
        try:
            with open(state_path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, ValueError):
            state = None
        if state == self._state(plan) and os.path.isfile(part_path):
            return part.open_existing()
        _remove_quietly(part_path)
        write_json_atomic(state_path, self._state(plan), indent=None)
        part.open_new()
        return 0

    async def _stream(self, job: DownloadJob, plan: DownloadPlan, part: _PartFile, offset: int) -> None:
        stalled = 0
        source = self._source(plan)
        while True:
            if plan.size and offset >= plan.size:
                if job.detail.total_bytes == 0:
                    job.detail.start(offset=offset, total=plan.size)
                return
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                if source is not None:
                    resp = await source.open_download(plan, headers)
                else:
                    resp = await self._client.open_download(
                        plan.version_id, params=plan.file_params or None, headers=headers
                    )
            except UpstreamUnavailable as exc:
                if offset and exc.extra.get("upstream_status") == 416:
                    # Nothing after ``offset``: an earlier run got every byte but stopped before
                    # the rename. The hash check decides whether the part is the file.
                    job.detail.start(offset=offset, total=offset)
                    return
                # A web page (login, error) instead of the file does not change on a retry.
                if exc.message == HTML_INSTEAD_OF_FILE or exc.extra.get("web_page") or stalled >= MAX_STALLED_ATTEMPTS:
                    raise
                stalled += 1
                _log.info("download %s: %s unreachable (%s); retrying", job.id,
                          plan.origin.get("label") if plan.origin else "CivitAI", exc.message)
                await asyncio.sleep(self.retry_delay * stalled)
                continue
            before = part.size
            try:
                async with resp:
                    offset = await self._receive(job, plan, part, resp, offset)
                return
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                offset = part.size
                stalled = 0 if offset > before else stalled + 1
                if stalled >= MAX_STALLED_ATTEMPTS:
                    raise UpstreamUnavailable(
                        f"the download of model version {plan.version_id} keeps breaking off at byte {offset} "
                        f"({type(exc).__name__})"
                    ) from None
                _log.info("download %s: connection lost at byte %d (%s); resuming", job.id, offset, type(exc).__name__)
                await asyncio.sleep(self.retry_delay * stalled)

    async def _receive(
        self, job: DownloadJob, plan: DownloadPlan, part: _PartFile, resp: aiohttp.ClientResponse, offset: int
    ) -> int:
        """Append the response body to the part; returns the part's size at the end."""
        length = resp.content_length
        if offset and resp.status == 200:
            # The server ignored Range: start over rather than append a second copy.
            await asyncio.to_thread(part.close)
            await asyncio.to_thread(part.open_new)
            offset = 0
        elif resp.status == 206:
            match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                await asyncio.to_thread(part.close)
                await asyncio.to_thread(part.open_new)
                raise aiohttp.ClientPayloadError("unexpected Content-Range; restarting from zero")
        total = offset + length if length is not None else plan.size
        job.detail.start(offset=offset, total=total)
        await job.publish()
        loop = asyncio.get_running_loop()
        batch: list[bytes] = []
        batch_size = 0
        in_flight: list[asyncio.Future[None]] = []  # oldest first; each waits for the one before
        sniffed = offset > 0
        last_report = loop.time()
        try:
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    break
                if not sniffed:
                    sniffed = True
                    if _HTML_SNIFF.match(chunk[:512]) or _JSON_SNIFF.match(chunk[:64]):
                        raise DownloadIntegrityError(
                            f"{plan.origin.get('label') or plan.origin.get('kind')} answered with a web page "
                            "instead of the model file" if plan.origin else HTML_INSTEAD_OF_FILE
                        )
                batch.append(chunk)
                batch_size += len(chunk)
                job.detail.advance(len(chunk))
                if batch_size >= WRITE_BATCH:
                    # Batches are written and hashed in worker threads, in order, while the
                    # next ones arrive; a few may queue so a slow disk moment does not stall reading.
                    while in_flight and in_flight[0].done():
                        in_flight.pop(0).result()  # a failed write ends the download
                    if len(in_flight) >= WRITE_QUEUE_DEPTH:
                        await asyncio.shield(in_flight.pop(0))  # a cancel must not orphan a write
                    in_flight.append(asyncio.ensure_future(_write_after(in_flight[-1] if in_flight else None, part, batch)))
                    batch, batch_size = [], 0
                    now = loop.time()
                    if now - last_report >= REPORT_INTERVAL:
                        last_report = now
                        await job.publish()
                elif loop.time() - last_report >= REPORT_INTERVAL:  # slow streams report too
                    last_report = loop.time()
                    await job.publish()
        finally:
            # Whatever arrived is kept (also on cancel or a dropped connection): the next
            # attempt resumes from the part's real size.
            last = in_flight[-1] if in_flight else None
            if batch:
                last = asyncio.ensure_future(_write_after(last, part, batch))
            if last is not None:
                await asyncio.shield(last)
        if total and part.size < total:
            raise aiohttp.ClientPayloadError(f"body ended at byte {part.size} of {total}")
        return part.size

    @staticmethod
    def _check_integrity(plan: DownloadPlan, part: _PartFile) -> None:
        what, who = f"the file of model version {plan.version_id}", "CivitAI"
        if plan.origin:  # another source (issue 14): name the file and who described it
            what = f"'{plan.origin.get('path') or plan.file_name}'"
            who = str(plan.origin.get("label") or plan.origin.get("kind"))
        if plan.size and part.size != plan.size:
            raise DownloadIntegrityError(
                f"{what} has {part.size} bytes, {who} says {plan.size}; "
                "the partial file was removed"
            )
        digest = part.digest.hexdigest()
        if plan.sha256 and digest != plan.sha256:
            raise DownloadIntegrityError(
                f"{what} does not match {who}'s SHA256 "
                f"(got {digest[:12]}…, expected {plan.sha256[:12]}…); the file was removed",
                extra={"expected_sha256": plan.sha256, "actual_sha256": digest},
            )

    @staticmethod
    def _move_into_place(plan: DownloadPlan) -> str:
        """Rename the part to the first free name (``x.safetensors``, ``x-1.safetensors``, ...)."""
        part_path, state_path = Downloader.part_files(plan)
        stem, extension = os.path.splitext(plan.file_name)
        for n in range(_MAX_FREE_NAMES):
            candidate = f"{plan.target_dir}/{stem if n == 0 else f'{stem}-{n}'}{extension}"
            if os.path.lexists(candidate) or os.path.lexists(sidecar_path(candidate)):
                continue
            try:
                move_no_replace(part_path, candidate)
            except TargetExists:
                continue
            _remove_quietly(state_path)
            return candidate
        raise LibraryError(f"no free file name for '{plan.file_name}' in '{plan.target_dir}'")

    async def _add_to_library(self, plan: DownloadPlan, path: str, sha256: str) -> None:
        """Record the hash, write sidecar and preview, index the file, broadcast the change."""
        service = self._library[plan.model_type]
        st = await asyncio.to_thread(os.stat, path)
        await self._hashes.remember(stamp_of(st), sha256, sha256[:10])
        entries = await service.refresh_paths([path], reason="download", broadcast=False)
        source = self._source(plan)
        if entries and source is not None:
            try:
                await source.write_metadata(entries[0], plan, sha256)
            except (OSError, LibraryError) as exc:
                _log.warning("download of %s: metadata not written: %s", path, exc)
        elif entries:
            version = {**plan.version, "modelId": plan.version.get("modelId") or plan.model_id}
            try:
                preview = await self._sync.fetch_preview(entries[0], version)
                await self._sync.write_civitai(entries[0], version, plan.model, preview=preview)
            except (OSError, LibraryError) as exc:  # the model is there; metadata can be refetched
                _log.warning("download of %s: metadata not written: %s", path, exc)
        await service.refresh_paths([path], reason="download")

