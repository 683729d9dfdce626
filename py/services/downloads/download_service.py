"""The downloads of the process: queued on the job runtime, limited in number, kept in history.

Owns download ids, joining a request to the active download of the same file, unique part
names, the history in SQLite (so it survives restarts and unfinished downloads resume on
start) and the clean-up a cancel or a failure owes the disk. It must not know how bytes are
fetched (``Downloader``) nor how progress travels (subscribers of the job registry).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from typing import Any

from ...errors import AlreadyRunning, DiskFull, ValidationError, is_disk_full
from ..jobs.job import JobStatus
from ..jobs.job_registry import JobRegistry
from ..library.index_cache import IndexCache
from ..shared.settings_manager import SettingsManager
from .download_records import (
    DOWNLOADING,
    JOB_KIND,
    VERIFYING,
    DownloadJob,
    DownloadPlan,
    DownloadProgress,
    job_from_record,
    job_record,
    new_download_job,
)
from .downloader import Downloader

_log = logging.getLogger(__name__)

KV_NAMESPACE = "downloads"
HISTORY_LIMIT = 200
FINISH_GRACE_SECONDS = 30.0
DOWNLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def check_download_id(value: Any) -> str:
    """A client-chosen id: 1-100 letters, digits, ``_ . : -``; ``ValidationError`` otherwise."""
    if not isinstance(value, str) or not DOWNLOAD_ID_RE.match(value):
        raise ValidationError("'download_id' must be 1-100 letters, digits, '_', '.', ':' or '-'")
    return value


class DownloadService:
    """Starts, pauses, resumes and cancels downloads; one instance per process.

    ``start`` returns the job at once (or the active job for the same version and file);
    ``pause``/``resume``/``cancel`` raise ``NotFoundError`` for unknown ids and
    ``ValidationError`` when the job is in a state that does not allow it.
    """

    def __init__(self, *, downloader: Downloader, cache: IndexCache, settings: SettingsManager) -> None:
        self._downloader = downloader
        self._cache = cache
        self._settings = settings
        self.jobs: JobRegistry[DownloadProgress] = JobRegistry(
            kind=JOB_KIND, concurrency=self._concurrency, cancel_tasks=True, history_limit=None
        )
        self.jobs.subscribe(self._on_change)
        self._stored: dict[str, str] = {}  # job id → the status last written to the history
        self._history_write: asyncio.Future[None] | None = None

    @property
    def downloader(self) -> Downloader:
        return self._downloader

    def _concurrency(self) -> int:
        try:
            return max(1, int(self._settings.get("download_concurrency")))
        except (TypeError, ValueError):
            return 3

    # ---------------------------------------------------------------- lifetime
    async def start_service(self) -> None:
        """Load the history; queue again the downloads an earlier run left unfinished."""
        records = await self._cache.kv_get_all(KV_NAMESPACE)
        restored: list[DownloadJob] = []
        for key, record in records.items():
            try:
                restored.append(job_from_record(record))
            except (KeyError, ValueError, TypeError):
                _log.warning("dropping unreadable download record %s", key)
                await self._cache.kv_delete(KV_NAMESPACE, key)
        for job in sorted(restored, key=lambda j: j.created_at):
            self.jobs.adopt(job, self._run)
            self._stored[job.id] = job.detail.wire_status(job)
            if job.status is JobStatus.QUEUED:
                await self.jobs.requeue(job)
            elif job.status is JobStatus.PAUSED:
                job.detail.opened.set()
                await self.jobs.publish(job)

    async def stop_service(self) -> None:
        """Stop running downloads (their ``.part`` files stay for the next start)."""
        finishing = [j for j in self.jobs.active() if j.detail.phase == VERIFYING]
        if finishing:
            # Verified bytes are being moved into place and indexed: let that end (a cancel
            # there would make the next start download the file a second time).
            await asyncio.wait([asyncio.ensure_future(j.wait()) for j in finishing], timeout=FINISH_GRACE_SECONDS)
        await self.jobs.shutdown()
        if self._history_write is not None:
            await asyncio.gather(self._history_write, return_exceptions=True)

    # ---------------------------------------------------------------- commands
    async def start(self, plan: DownloadPlan, *, download_id: str | None = None) -> DownloadJob:
        """Queue a download of ``plan`` (or join the active one for the same file).

        Raises ``AlreadyRunning`` when ``download_id`` belongs to an unfinished download, or
        when the same file is already downloading under another id.
        """
        active = self.jobs.active_for(plan.key)
        if active is not None:
            if download_id not in (None, active.id):
                raise AlreadyRunning(
                    f"model version {plan.version_id} is already being downloaded (download id '{active.id}')",
                    extra={"download_id": active.id},
                )
            return active
        job_id = check_download_id(download_id) if download_id is not None else uuid.uuid4().hex
        job = new_download_job(self._unique_part(plan), job_id)
        return await self.jobs.submit(job, self._run)

    async def wait_opened(self, job: DownloadJob) -> DownloadJob:
        """The job once bytes flow or it ended (at once while it waits for a free slot)."""
        if job.status is JobStatus.QUEUED and not self.jobs.is_running(job.id):
            return job
        await job.detail.opened.wait()
        return job

    async def pause(self, download_id: str) -> DownloadJob:
        job = self.jobs.require(download_id)
        if job.detail.phase == VERIFYING and not job.is_terminal:
            raise ValidationError(f"download {download_id} is verifying and cannot be paused")
        await self.jobs.pause(download_id)
        job.detail.stopped()
        job.detail.opened.set()  # a request waiting for the start gets its answer
        return job

    async def resume(self, download_id: str) -> DownloadJob:
        return await self.jobs.resume(download_id)

    async def cancel(self, download_id: str) -> DownloadJob:
        """Stop the download and remove its partial files; a finished job is left as it is."""
        job = self.jobs.require(download_id)
        if job.is_terminal:
            return job
        if job.detail.phase == VERIFYING:
            raise ValidationError(
                f"download {download_id} is being verified and moved into place; it cannot be cancelled now"
            )
        await self.jobs.cancel(download_id)
        await self._downloader.discard_partial(job.detail.plan)
        return job

    def snapshot(self, download_id: str) -> dict[str, Any]:
        """The latest snapshot (the one the sockets got); ``NotFoundError`` for unknown ids."""
        return self.jobs.require(download_id).snapshot()

    def active(self) -> list[dict[str, Any]]:
        return [j.snapshot() for j in self.jobs.active()]

    def history(self) -> list[dict[str, Any]]:
        return [j.snapshot() for j in self.jobs.history()]

    # ---------------------------------------------------------------- internals
    def _unique_part(self, plan: DownloadPlan) -> DownloadPlan:
        taken = {j.detail.plan.part_path for j in self.jobs.active()}
        if plan.part_path not in taken:
            return plan
        stem, extension = os.path.splitext(plan.file_name)
        n = 1
        while True:
            candidate = plan.renamed(f"{stem}-{n}{extension}")
            if candidate.part_path not in taken:
                return candidate
            n += 1

    async def _run(self, job: DownloadJob) -> None:
        """One attempt (a resume after a pause runs this again): the file, or the error."""
        try:
            job.detail.finish(await self._downloader.run(job))
        except asyncio.CancelledError:
            job.detail.stopped()
            raise  # pause / cancel / shutdown: the registry decides what the job becomes
        except Exception as exc:
            job.detail.stopped()
            await self._downloader.discard_partial(job.detail.plan)
            if is_disk_full(exc) and not isinstance(exc, DiskFull):
                raise DiskFull(job.detail.plan.target_dir, error_number=exc.errno) from exc  # type: ignore[attr-defined]
            raise

    async def _on_change(self, job: DownloadJob) -> None:
        """Let waiting requests go once bytes flow or the job stops; keep the history."""
        d = job.detail
        if job.is_terminal or job.status is JobStatus.PAUSED or d.phase in (DOWNLOADING, VERIFYING):
            d.opened.set()
        status = d.wire_status(job)
        if self._stored.get(job.id) == status:
            return
        self._stored[job.id] = status
        dropped = [old.id for old in self.jobs.prune(HISTORY_LIMIT)] if job.is_terminal else []
        for job_id in dropped:
            self._stored.pop(job_id, None)
        # Written behind the download, in order: the stream must not wait for SQLite (bytes
        # that arrive meanwhile would pile up, and a cut connection would lose them).
        previous = self._history_write
        self._history_write = asyncio.ensure_future(self._store(previous, job.id, job_record(job), dropped))

    async def _store(self, previous: "asyncio.Future[None] | None", job_id: str, record: dict[str, Any],
                     dropped: list[str]) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await self._cache.kv_put(KV_NAMESPACE, job_id, record)
            for old in dropped:
                await self._cache.kv_delete(KV_NAMESPACE, old)
        except Exception:  # history is a convenience; never fail a download over it
            _log.exception("could not store download %s", job_id)
