"""The download queue: bounded concurrency, pause/resume/cancel and a persisted history.

Owns every ``DownloadJob`` of the process and the tasks running them (at most
``download_concurrency`` at once, the rest queued in order), and stores each job in SQLite so
history survives restarts and unfinished downloads resume on start. It must not know how
bytes are fetched (``Downloader``) nor how progress travels (the coordinator's callback).
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ...errors import AlreadyRunning, DiskFull, LibraryError, NotFoundError, ValidationError, is_disk_full
from .download_records import DownloadJob, DownloadPlan, DownloadStatus
from .downloader import Downloader
from ..library.index_cache import IndexCache
from ..shared.settings_manager import SettingsManager

_log = logging.getLogger(__name__)

ProgressCallback = Callable[[DownloadJob], Awaitable[None]]
ProgressFactory = Callable[[str], ProgressCallback]

KV_NAMESPACE = "downloads"
HISTORY_LIMIT = 200
FINISH_GRACE_SECONDS = 30.0


async def _no_progress(job: DownloadJob) -> None:
    return None


class DownloadManager:
    """Queues and runs downloads; one instance per process, started and stopped with it.

    ``enqueue`` returns the job at once (or the active job for the same version and file);
    ``pause``/``resume``/``cancel`` raise ``NotFoundError`` for unknown ids and
    ``ValidationError`` when the job is in a state that does not allow it.
    """

    def __init__(self, *, downloader: Downloader, cache: IndexCache, settings: SettingsManager) -> None:
        self._downloader = downloader
        self._cache = cache
        self._settings = settings
        self._jobs: dict[str, DownloadJob] = {}
        self._callbacks: dict[str, ProgressCallback] = {}
        self._queue: deque[str] = deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._opened: dict[str, asyncio.Event] = {}
        self.progress_factory: ProgressFactory = lambda _id: _no_progress
        self._started = False
        self._closing = False

    # ---------------------------------------------------------------- lifetime
    async def start(self) -> None:
        """Load the history; queue again the downloads an earlier run left unfinished."""
        records = await self._cache.kv_get_all(KV_NAMESPACE)
        restored: list[DownloadJob] = []
        for key, record in records.items():
            try:
                job = DownloadJob.from_record(record)
            except (KeyError, ValueError, TypeError):
                _log.warning("dropping unreadable download record %s", key)
                await self._cache.kv_delete(KV_NAMESPACE, key)
                continue
            restored.append(job)
        restored.sort(key=lambda j: j.created_at)
        self._started = True
        for job in restored:
            self._jobs[job.id] = job
            self._events[job.id] = asyncio.Event()
            self._opened[job.id] = asyncio.Event()
            self._callbacks[job.id] = self.progress_factory(job.id)
            if job.is_terminal:
                self._events[job.id].set()
                self._opened[job.id].set()
                continue
            if job.status is not DownloadStatus.PAUSED:
                job.requeue()
                self._queue.append(job.id)
            await self._publish(job)
        self._pump()

    async def stop(self) -> None:
        """Cancel running downloads (their ``.part`` files stay for the next start)."""
        self._closing = True
        finishing = [t for i, t in self._tasks.items() if self._jobs[i].status is DownloadStatus.VERIFYING]
        if finishing:
            # Verified bytes are being moved into place and indexed: let that end (a cancel
            # there would make the next start download the file a second time).
            await asyncio.wait(finishing, timeout=FINISH_GRACE_SECONDS)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with _suppress_all():
                await task
        self._tasks.clear()

    # ---------------------------------------------------------------- queries
    def get(self, download_id: str) -> DownloadJob | None:
        return self._jobs.get(download_id)

    def active(self) -> list[DownloadJob]:
        """Running, queued and paused jobs, oldest first."""
        return sorted((j for j in self._jobs.values() if not j.is_terminal), key=lambda j: j.created_at)

    def history(self) -> list[DownloadJob]:
        """Finished jobs (completed, failed, cancelled), newest first."""
        return sorted((j for j in self._jobs.values() if j.is_terminal), key=lambda j: -(j.finished_at or 0))

    def find_active(self, plan: DownloadPlan) -> DownloadJob | None:
        return next((j for j in self.active() if j.plan.key == plan.key), None)

    def running_count(self) -> int:
        return len(self._tasks)

    @property
    def concurrency(self) -> int:
        try:
            return max(1, int(self._settings.get("download_concurrency")))
        except (TypeError, ValueError):
            return 3

    # ---------------------------------------------------------------- commands
    async def enqueue(self, job: DownloadJob, progress: ProgressCallback | None = None) -> DownloadJob:
        """Queue ``job`` (its part name made unique among active jobs) and start it if a slot is free.

        Raises ``AlreadyRunning`` when the id belongs to an unfinished job.
        """
        existing = self._jobs.get(job.id)
        if existing is not None and not existing.is_terminal:
            raise AlreadyRunning(f"download id '{job.id}' is already in use by an unfinished download")
        job.plan = self._unique_part(job.plan)
        self._jobs[job.id] = job
        self._events[job.id] = asyncio.Event()
        self._opened[job.id] = asyncio.Event()
        self._callbacks[job.id] = progress or self.progress_factory(job.id)
        self._queue.append(job.id)
        await self._persist(job)
        await self._publish(job)
        self._pump()
        return job

    async def _stop_running(self, download_id: str) -> None:
        """Take a download off the queue and stop its task (partial files stay)."""
        if download_id in self._queue:
            self._queue.remove(download_id)
        task = self._tasks.get(download_id)
        if task is not None:
            task.cancel()
            with _suppress_all():
                await task

    async def pause(self, download_id: str) -> DownloadJob:
        job = self._require(download_id)
        if job.status is DownloadStatus.PAUSED:
            return job
        if job.is_terminal or job.status is DownloadStatus.VERIFYING:
            raise ValidationError(f"download {download_id} is {job.status.value} and cannot be paused")
        await self._stop_running(download_id)
        job.pause()
        self._opened[download_id].set()  # a request waiting for the start gets its answer
        await self._persist(job)
        await self._publish(job)
        return job

    async def resume(self, download_id: str) -> DownloadJob:
        job = self._require(download_id)
        if job.status is not DownloadStatus.PAUSED:
            if job.is_terminal:
                raise ValidationError(f"download {download_id} is {job.status.value} and cannot be resumed")
            return job
        job.requeue()
        self._queue.append(download_id)
        await self._persist(job)
        await self._publish(job)
        self._pump()
        return job

    async def cancel(self, download_id: str) -> DownloadJob:
        """Stop the download and remove its partial files; a finished job is left as it is."""
        job = self._require(download_id)
        if job.is_terminal:
            return job
        if job.status is DownloadStatus.VERIFYING:
            raise ValidationError(f"download {download_id} is being verified and moved into place; it cannot be cancelled now")
        await self._stop_running(download_id)
        if not job.is_terminal:
            await self._downloader.discard_partial(job.plan)
            job.cancel()
            await self._ended(job)
        return job

    async def wait(self, download_id: str, timeout: float | None = None) -> DownloadJob:
        """The job once it is completed, failed or cancelled."""
        job = self._require(download_id)
        await asyncio.wait_for(self._events[download_id].wait(), timeout)
        return job

    async def wait_opened(self, download_id: str) -> DownloadJob:
        """The job once bytes flow or it ended (returns at once while it waits in the queue)."""
        job = self._require(download_id)
        if job.status is DownloadStatus.QUEUED and download_id not in self._tasks:
            return job
        await self._opened[download_id].wait()
        return job

    # ---------------------------------------------------------------- internals
    def _require(self, download_id: str) -> DownloadJob:
        job = self._jobs.get(download_id)
        if job is None:
            raise NotFoundError(f"no download with id '{download_id}'")
        return job

    def _unique_part(self, plan: DownloadPlan) -> DownloadPlan:
        taken = {j.plan.part_path for j in self._jobs.values() if not j.is_terminal}
        if plan.part_path not in taken:
            return plan
        stem, extension = os.path.splitext(plan.file_name)
        n = 1
        while True:
            name = f"{stem}-{n}{extension}"
            candidate = DownloadPlan(**{**_plan_fields(plan), "file_name": name})
            if candidate.part_path not in taken:
                return candidate
            n += 1

    def _pump(self) -> None:
        if not self._started or self._closing:
            return
        while self._queue and len(self._tasks) < self.concurrency:
            download_id = self._queue.popleft()
            job = self._jobs.get(download_id)
            if job is None or job.status is not DownloadStatus.QUEUED:
                continue
            self._tasks[download_id] = asyncio.create_task(self._run(job), name=f"lm-download-{download_id}")

    async def _run(self, job: DownloadJob) -> None:
        callback = self._callbacks.get(job.id, _no_progress)

        async def report() -> None:
            if job.status is DownloadStatus.DOWNLOADING:
                self._opened[job.id].set()
            await self._publish(job, callback)

        try:
            await self._persist(job)
            path = await self._downloader.run(job, report)
        except asyncio.CancelledError:
            raise  # pause / cancel / shutdown: the caller decides what the job becomes
        except Exception as exc:
            if is_disk_full(exc) and not isinstance(exc, DiskFull):
                exc = DiskFull(job.plan.target_dir, error_number=exc.errno)  # type: ignore[attr-defined]
            if isinstance(exc, LibraryError):
                _log.info("download %s failed: %s", job.id, exc.message)
            else:
                _log.exception("download %s failed", job.id)
            await self._downloader.discard_partial(job.plan)
            job.fail(exc)
            await self._ended(job)
        else:
            job.finish(path)
            await self._ended(job)
        finally:
            self._tasks.pop(job.id, None)
            self._pump()

    async def _ended(self, job: DownloadJob) -> None:
        self._opened[job.id].set()
        await self._persist(job)
        await self._publish(job)
        self._events[job.id].set()
        await self._prune_history()

    async def _publish(self, job: DownloadJob, callback: ProgressCallback | None = None) -> None:
        callback = callback or self._callbacks.get(job.id, _no_progress)
        try:
            await callback(job)
        except Exception:
            _log.exception("download progress callback failed for %s", job.id)

    async def _persist(self, job: DownloadJob) -> None:
        try:
            await self._cache.kv_put(KV_NAMESPACE, job.id, job.to_record())
        except Exception:  # history is a convenience; never fail a download over it
            _log.exception("could not store download %s", job.id)

    async def _prune_history(self) -> None:
        finished = self.history()
        for job in finished[HISTORY_LIMIT:]:
            self._jobs.pop(job.id, None)
            self._events.pop(job.id, None)
            self._opened.pop(job.id, None)
            self._callbacks.pop(job.id, None)
            await self._cache.kv_delete(KV_NAMESPACE, job.id)


def _plan_fields(plan: DownloadPlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}


class _suppress_all:
    """``with _suppress_all():`` around awaiting a cancelled task (its outcome is known)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], (Exception, asyncio.CancelledError))
