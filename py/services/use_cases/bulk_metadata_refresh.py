"""Refresh CivitAI metadata of many models at once, with as few requests as CivitAI allows.

Owns the refresh job of one model type (on the job runtime): hash what is pending, identify files with the batch by-hash
endpoint (100 per call), fetch model details once per model id (100 per call), merge and
write sidecars, fetch missing previews with bounded concurrency, and report progress. It must
not format HTTP responses; single writes go through ``CivitaiSyncService``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ...errors import AlreadyRunning, AuthenticationRequired, LibraryError
from ..civitai.civitai_client import BATCH_LIMIT, CivitaiClient
from ..civitai.civitai_sync_service import CivitaiSyncService, PreviewInfo, has_civitai_data
from ..jobs.job import Job, JobStatus, JobStopped
from ..jobs.job_registry import JobRegistry
from ..library.model_records import ModelEntry, ModelType
from ..library.type_library import TypeLibrary

_log = logging.getLogger(__name__)

T = TypeVar("T")
MESSAGE_TYPE = "civitai_fetch_progress"
JOB_KIND = "CivitAI refresh"
WRITE_CHUNK = 50  # models written (and re-read into the index) between progress reports
REFRESHES_IN_FLIGHT = 3
DEFAULT_PREVIEW_CONCURRENCY = 32  # static files from the image CDN; API calls go through the limiter

# The words bulk refresh progress has always used on the wire, per job status.
_WIRE_STATUS = {
    JobStatus.QUEUED: "started",
    JobStatus.RUNNING: "processing",
    JobStatus.PAUSED: "processing",
    JobStatus.CANCELLING: "processing",
    JobStatus.DONE: "completed",
    JobStatus.FAILED: "error",
    JobStatus.CANCELLED: "cancelled",
}
IDLE = "idle"  # the progress of a type that never ran a refresh


@dataclass(slots=True)
class RefreshProgress:
    """The detail of a bulk refresh job: what was identified, written, not found, failed."""

    model_type: ModelType
    force: bool = False
    total: int = 0
    processed: int = 0
    updated: int = 0
    not_found: int = 0
    failed: int = 0
    current_name: str = ""
    warning: LibraryError | None = None  # an upstream failure that cost some models; the job went on

    def start(self, total: int) -> None:
        self.total = total

    def advance(self, *, updated: int = 0, not_found: int = 0, failed: int = 0, current_name: str | None = None) -> None:
        self.updated += updated
        self.not_found += not_found
        self.failed += failed
        self.processed += updated + not_found + failed
        if current_name is not None:
            self.current_name = current_name

    def snapshot(self, job: Job[Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "model_type": self.model_type.value,
            "status": _WIRE_STATUS[job.status],
            "total": self.total,
            "processed": self.processed,
            "updated": self.updated,
            "not_found": self.not_found,
            "failed": self.failed,
            "current_name": "" if job.is_terminal else self.current_name,
            "force": self.force,
            "started_at": job.created_at,
            "finished_at": job.finished_at,
        }
        error = job.error or self.warning
        if error is not None:
            data["error"] = error.message
            data["code"] = error.code
        return data


RefreshJob = Job[RefreshProgress]


class BulkMetadataRefreshUseCase:
    """Single-flight bulk refresh of one model type's CivitAI metadata, on the job runtime.

    ``start`` returns the job at once (``AlreadyRunning`` if one runs); ``run_to_end``
    starts and waits. ``cancel`` stops the job at the next batch (an in-flight CivitAI call
    is abandoned, the chunk being written is finished). Writes sidecars and previews.
    """

    def __init__(
        self,
        *,
        model_type: ModelType,
        service: TypeLibrary,
        sync: CivitaiSyncService,
        client: CivitaiClient,
        jobs: JobRegistry[RefreshProgress],
        preview_concurrency: int = DEFAULT_PREVIEW_CONCURRENCY,
    ) -> None:
        self.model_type = model_type
        self._service = service
        self._sync = sync
        self._client = client
        self._jobs = jobs
        self._preview_concurrency = max(1, preview_concurrency)

    @property
    def _key(self) -> str:
        return self.model_type.prefix

    def progress(self) -> dict[str, Any] | None:
        """The latest snapshot (the same one the WebSocket carried), or None before any run."""
        latest = self._jobs.latest(self._key)
        return latest.snapshot() if latest is not None else None

    async def start(self, *, force: bool = False) -> RefreshJob:
        """Start a run in the background; raises ``AlreadyRunning`` while one runs."""
        if self._jobs.active_for(self._key) is not None:
            raise AlreadyRunning(f"a CivitAI metadata refresh of {self.model_type.prefix} is already running")
        job = Job(kind=JOB_KIND, key=self._key, detail=RefreshProgress(model_type=self.model_type, force=force))
        return await self._jobs.submit(job, self._run)

    async def run_to_end(self, *, force: bool = False) -> RefreshJob:
        """Run and return the finished job (its status says how it ended). Raises
        ``AlreadyRunning``; the run survives the caller being cancelled."""
        job = await self.start(force=force)
        await asyncio.shield(job.wait())
        return job

    async def cancel(self) -> bool:
        """Ask the running job to stop; False when none runs."""
        active = self._jobs.active_for(self._key)
        if active is None:
            return False
        active.request_stop()
        await active.publish()
        return True

    # ----------------------------------------------------------------- the run

    async def _run(self, job: RefreshJob) -> None:
        try:
            await self._refresh(job)
        finally:
            d = job.detail
            _log.info(
                "CivitAI refresh of %s ended: %d models, %d updated, %d not found, %d failed",
                self.model_type.prefix, d.total, d.updated, d.not_found, d.failed,
            )

    def _candidates(self, force: bool) -> list[ModelEntry]:
        entries = sorted(self._service.index.entries.values(), key=lambda e: e.file_path)
        return [e for e in entries if not e.exclude and (force or not has_civitai_data(e))]

    async def _refresh(self, job: RefreshJob) -> None:
        progress = job.detail
        entries = self._candidates(progress.force)
        progress.start(len(entries))
        await job.publish()
        if not entries:
            return

        phase_started = time.perf_counter()
        pending = [e for e in entries if not e.sha256]
        if pending:
            progress.advance(current_name=f"hashing {len(pending)} files")
            await job.publish()
            entries = await job.unless_stopped(self._sync.ensure_hashed(entries))
            missing = progress.total - len(entries)
            if missing:
                progress.advance(failed=missing)
        by_sha: dict[str, list[ModelEntry]] = {}
        unhashed = 0
        for entry in entries:
            if entry.sha256:
                by_sha.setdefault(entry.sha256.lower(), []).append(entry)
            else:
                unhashed += 1
        if unhashed:
            progress.advance(failed=unhashed)
        shas = list(by_sha)
        _log.info("CivitAI refresh of %s: %d files hashed in %.2f s", self.model_type.prefix, len(pending),
                  time.perf_counter() - phase_started)

        previews = _PreviewPrefetch(self._sync, self._preview_concurrency, job.stop_signal)
        try:
            await self._identify_and_write(job, by_sha, shas, previews)
        finally:
            # Previews stored for models whose sidecar was not written (cancel, error) are
            # already on disk: re-read those models so the index shows them too.
            stray = await previews.close()
            if stray:
                await self._service.refresh_paths(stray, reason="civitai")

    async def _identify_and_write(
        self,
        job: RefreshJob,
        by_sha: dict[str, list[ModelEntry]],
        shas: list[str],
        previews: "_PreviewPrefetch",
    ) -> None:
        """Identify in batches, fetch model details in batches, write sidecars as soon as their
        model details are in (while the next batches are asked): three pipelines, one order."""
        models: dict[int, dict[str, Any]] = {}
        unfetched: list[int] = []  # model ids seen, details not asked yet
        known_ids: set[int] = set()
        waiting: list[tuple[ModelEntry, dict[str, Any]]] = []  # found, waiting for model details
        writes: asyncio.Queue[list[tuple[ModelEntry, dict[str, Any]]] | None] = asyncio.Queue()
        stop_writing = asyncio.Event()
        writer = asyncio.ensure_future(self._write_from(writes, job, models, previews, stop_writing))

        async def fetch_models(count: int) -> None:
            ids, unfetched[:] = unfetched[:count], unfetched[count:]
            try:
                models.update(await job.unless_stopped(self._client.get_models(ids)))
            except AuthenticationRequired:
                raise
            except LibraryError as exc:
                # The versions alone still carry names, words and base models: merge without details.
                _log.warning("CivitAI model details failed: %s", exc.message)
                job.detail.warning = exc

        def release_ready() -> None:
            pending = set(unfetched)
            ready = [item for item in waiting if item[1].get("modelId") not in pending]
            if ready:
                waiting[:] = [item for item in waiting if item[1].get("modelId") in pending]
                writes.put_nowait(ready)

        try:
            # 1. identify: POST /model-versions/by-hash, 100 hashes a call; previews start at once
            #    (they need only the version)
            phase_started = time.perf_counter()
            found_total = 0
            last_error: LibraryError | None = None
            answered = 0
            for chunk in _chunks(shas, BATCH_LIMIT):
                job.detail.advance(current_name=by_sha[chunk[0]][0].file_name)
                await job.publish()
                try:
                    found = await job.unless_stopped(
                        self._client.get_versions_by_hashes(chunk, bypass_not_found_cache=job.detail.force)
                    )
                    answered += 1
                except AuthenticationRequired:
                    raise
                except LibraryError as exc:
                    _log.warning("CivitAI by-hash batch failed: %s", exc.message)
                    job.detail.warning = exc
                    last_error = exc
                    job.detail.advance(failed=sum(len(by_sha[s]) for s in chunk))
                    continue
                missing = sum(len(by_sha[s]) for s in chunk if s not in found)
                if missing:
                    job.detail.advance(not_found=missing)
                for sha, version in found.items():
                    found_total += 1
                    mid = version.get("modelId")
                    if isinstance(mid, int) and mid > 0 and mid not in known_ids:
                        known_ids.add(mid)
                        unfetched.append(mid)
                    for entry in by_sha.get(sha, ()):
                        previews.schedule(entry, version)
                        waiting.append((entry, version))
                # 2. model details once per model id: GET /models?ids=, only full batches of 100
                #    here, the rest after the last by-hash batch
                while len(unfetched) >= BATCH_LIMIT:
                    await fetch_models(BATCH_LIMIT)
                release_ready()
            if last_error is not None and not answered:
                raise last_error  # CivitAI answered no batch at all: the run is an error
            _log.info("CivitAI refresh: %d of %d hashes identified in %.2f s", found_total, len(shas),
                      time.perf_counter() - phase_started)
            while unfetched:
                await fetch_models(BATCH_LIMIT)
            release_ready()
            _log.info("CivitAI refresh: details of %d models in %.2f s", len(known_ids), time.perf_counter() - phase_started)
        except BaseException:
            stop_writing.set()  # the writer finishes the chunk in hand, so disk and index agree
            raise
        finally:
            writes.put_nowait(None)
            await asyncio.shield(writer)
        if job.stop_requested and job.detail.processed < job.detail.total:
            raise JobStopped()  # the writer stopped between chunks
        _log.info("CivitAI refresh: sidecars written after %.2f s", time.perf_counter() - phase_started)

    async def _write_from(
        self,
        writes: "asyncio.Queue[list[tuple[ModelEntry, dict[str, Any]]] | None]",
        job: RefreshJob,
        models: dict[int, dict[str, Any]],
        previews: "_PreviewPrefetch",
        stop: asyncio.Event,
    ) -> None:
        """3. merge and write sidecars (with their stored previews), a chunk at a time, each chunk
        re-read into the index before the next; stops between chunks on cancel or error."""
        # Re-reading written models into the index runs one file after another inside
        # refresh_paths; a few chunks' re-reads overlap with the next chunk's writes.
        refreshing: list[asyncio.Task[None]] = []
        try:
            while (group := await writes.get()) is not None:
                for chunk in _chunks(group, WRITE_CHUNK):
                    if stop.is_set() or job.stop_requested:
                        break
                    job.detail.advance(current_name=chunk[0][0].file_name)
                    results = await asyncio.gather(
                        *(self._write_one(entry, version, models.get(version.get("modelId")), previews)
                          for entry, version in chunk)
                    )
                    written = [entry.file_path for (entry, _), ok in zip(chunk, results) if ok]
                    refreshing.append(asyncio.ensure_future(self._refresh_written(written, len(chunk), job)))
                    while len(refreshing) >= REFRESHES_IN_FLIGHT:
                        await refreshing.pop(0)
        finally:
            # every written sidecar reaches the index, even on cancel or error
            for task in refreshing:
                await asyncio.shield(task)

    async def _refresh_written(self, written: list[str], attempted: int, job: RefreshJob) -> None:
        if written:
            await self._service.refresh_paths(written, reason="civitai")
        job.detail.advance(updated=len(written), failed=attempted - len(written))
        await job.publish()

    async def _write_one(
        self, entry: ModelEntry, version: dict[str, Any], model: dict[str, Any] | None, previews: "_PreviewPrefetch"
    ) -> bool:
        try:
            preview = await previews.result(entry.file_path)
            return await self._sync.write_civitai(entry, version, model, preview=preview)
        except (OSError, LibraryError) as exc:
            _log.warning("CivitAI refresh of %s failed: %s", entry.file_path, exc)
            return False


class _PreviewPrefetch:
    """Preview downloads running beside the API calls, at most ``concurrency`` at a time."""

    def __init__(self, sync: CivitaiSyncService, concurrency: int, stop: asyncio.Event) -> None:
        self._sync = sync
        self._slots = asyncio.Semaphore(concurrency)
        self._stop = stop
        self._tasks: dict[str, asyncio.Task[PreviewInfo | None]] = {}
        self._consumed: set[str] = set()

    def schedule(self, entry: ModelEntry, version: dict[str, Any]) -> None:
        if entry.file_path not in self._tasks:
            self._tasks[entry.file_path] = asyncio.get_running_loop().create_task(self._fetch(entry, version))

    async def _fetch(self, entry: ModelEntry, version: dict[str, Any]) -> PreviewInfo | None:
        async with self._slots:
            return await self._sync.fetch_preview(entry, version, stop=self._stop)

    async def result(self, path: str) -> PreviewInfo | None:
        task = self._tasks.get(path)
        if task is None:
            return None
        self._consumed.add(path)
        try:
            return await asyncio.shield(task)
        except Exception:  # fetch_preview reports its own failures; anything else: no preview
            _log.exception("preview download for %s failed", path)
            return None

    async def close(self) -> list[str]:
        """Stop what still runs; the models that got a preview but whose sidecar was not written."""
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        stray = []
        for path, task in self._tasks.items():
            if path in self._consumed or task.cancelled() or task.exception() is not None:
                continue
            if task.result() is not None:
                stray.append(path)
        return stray


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
