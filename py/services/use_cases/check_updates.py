"""Update checks as a job (on demand and in the background) and "download update" with its
optional replace of the old file.

Owns the check job (one at a time for the whole library: model details in batches of 100
through the shared rate limiter, progress after each batch, cooperative cancel), the
background schedule (daily by default, after the first scan, never beside a bulk refresh,
paced) and the download-then-replace flow, which carries the user's data of the old sidecar
(notes, tags, favourite, own trigger words, usage tips, ``user_edited`` fields) to the new
file before the old one goes to the recoverable delete. It must not format HTTP; the rules of what is an
update live in ``UpdateCheckService``.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import AlreadyRunning, AuthenticationRequired, LibraryError, ValidationError
from ..civitai.update_check_service import UpdateCheckService
from ..downloads.download_records import DownloadJob, DownloadRequest
from ..edits.metadata_edit_service import MetadataEditService
from ..edits.model_lifecycle_service import ModelLifecycleService
from ..jobs.job import Job, JobStatus
from ..jobs.job_registry import JobRegistry
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.settings_manager import SettingsManager
from ..shared.sidecar_store import user_edited_fields
from ..shared.socket_hub import SocketHub
from .download_model import DownloadModelUseCase, failure_of

__all__ = [
    "JOB_KIND", "MESSAGE_TYPE", "CheckUpdatesUseCase", "DownloadUpdateUseCase", "UpdateCheckScheduler", "UpdateProgress",
    "carried_user_data",
]

_log = logging.getLogger(__name__)

JOB_KIND = "update check"
JOB_KEY = "library"
MESSAGE_TYPE = "update_check_progress"
DAY = 24 * 3600.0
RETRY_AFTER_FAILURE = 3600.0  # a background check that failed is tried again an hour later
BACKGROUND_PAUSE = 2.0  # seconds between two CivitAI calls of a background check
BUSY_POLL = 30.0

_WIRE_STATUS = {
    JobStatus.QUEUED: "started",
    JobStatus.RUNNING: "processing",
    JobStatus.PAUSED: "processing",
    JobStatus.CANCELLING: "processing",
    JobStatus.DONE: "completed",
    JobStatus.FAILED: "error",
    JobStatus.CANCELLED: "cancelled",
}
IDLE = "idle"


@dataclass(slots=True)
class UpdateProgress:
    """The detail of an update check: models asked, batches sent, models with updates."""

    background: bool = False
    total: int = 0
    processed: int = 0
    calls: int = 0
    known: int = 0  # models CivitAI answered for
    failed: int = 0
    with_updates: int = 0
    warning: LibraryError | None = None

    def snapshot(self, job: Job[Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "job_id": job.id,
            "status": _WIRE_STATUS[job.status],
            "background": self.background,
            "total": self.total,
            "processed": self.processed,
            "calls": self.calls,
            "known": self.known,
            "failed": self.failed,
            "with_updates": self.with_updates,
            "started_at": job.created_at,
            "finished_at": job.finished_at,
        }
        error = job.error or self.warning
        if error is not None:
            data["error"] = error.message
            data["code"] = error.code
        return data


UpdateJob = Job[UpdateProgress]


class CheckUpdatesUseCase:
    """Single-flight update check of every model with a CivitAI model id.

    ``start`` returns the job at once (``AlreadyRunning`` while one runs, unless ``join``);
    ``cancel`` stops it at the next batch (the call in flight is abandoned).
    """

    def __init__(
        self,
        *,
        service: UpdateCheckService,
        jobs: JobRegistry[UpdateProgress],
        background_pause: float = BACKGROUND_PAUSE,
    ) -> None:
        self._service = service
        self._jobs = jobs
        self.background_pause = background_pause

    def progress(self) -> dict[str, Any] | None:
        latest = self._jobs.latest(JOB_KEY)
        return latest.snapshot() if latest is not None else None

    def active(self) -> UpdateJob | None:
        return self._jobs.active_for(JOB_KEY)

    async def start(self, *, background: bool = False, join: bool = False) -> UpdateJob:
        active = self.active()
        if active is not None:
            if join:
                return active
            raise AlreadyRunning("an update check is already running", extra={"job_id": active.id})
        job = Job(kind=JOB_KIND, key=JOB_KEY, detail=UpdateProgress(background=background))
        return await self._jobs.submit(job, self._run, join_active=join)

    async def cancel(self) -> bool:
        active = self.active()
        if active is None:
            return False
        active.request_stop()
        await active.publish()
        return True

    async def _run(self, job: UpdateJob) -> None:
        progress = job.detail
        ids = self._service.model_ids()
        progress.total = len(ids)
        await job.publish()
        size = self._service.batch_limit
        answered = 0
        last_error: LibraryError | None = None
        for start in range(0, len(ids), size):
            if start and progress.background and self.background_pause > 0:
                await job.unless_stopped(asyncio.sleep(self.background_pause))
            chunk = ids[start : start + size]
            progress.calls += 1
            try:
                progress.known += await job.unless_stopped(self._service.fetch_models(chunk))
                answered += 1
            except AuthenticationRequired:
                raise
            except LibraryError as exc:
                _log.warning("update check: a batch of %d models failed: %s", len(chunk), exc.message)
                progress.failed += len(chunk)
                progress.warning = last_error = exc
            progress.processed += len(chunk)
            await job.publish()
        if last_error is not None and not answered:
            raise last_error
        await self._service.finish_check()
        progress.with_updates = len({
            u.model_id for t in ModelType for u in self._service.updates(t)
        })
        _log.info("update check: %d models in %d calls, %d with updates", progress.total, progress.calls,
                  progress.with_updates)


class UpdateCheckScheduler:
    """The background check: ``update_check_interval`` "daily" (default) or "off".

    Waits for the library's first scan and ``delay`` seconds more, then checks whenever the
    last complete check is a day old; waits while a CivitAI bulk refresh or a download runs.
    ``run`` is a task the composition root cancels at shutdown.
    """

    def __init__(
        self,
        *,
        use_case: CheckUpdatesUseCase,
        service: UpdateCheckService,
        library: ModelLibrary,
        settings: SettingsManager,
        busy: Callable[[], bool],
        delay: float,
        interval: float = DAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._use_case = use_case
        self._service = service
        self._library = library
        self._settings = settings
        self._busy = busy
        self.delay = delay
        self.interval = interval
        self._clock = clock
        self._last_attempt: float | None = None
        self._wake = asyncio.Event()
        settings.on_change(self._on_settings)

    def _on_settings(self, changed: dict[str, Any]) -> None:
        if "update_check_interval" in changed:
            self._wake.set()

    def next_due(self) -> float | None:
        """When the next background check is due (epoch seconds), None when they are off."""
        if self._settings.get("update_check_interval") != "daily":
            return None
        last = self._service.store.last_check_at
        due = (last + self.interval) if last is not None else 0.0
        if self._last_attempt is not None:
            due = max(due, self._last_attempt + RETRY_AFTER_FAILURE)
        return due

    async def run(self) -> None:
        await self._library.wait_started()
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        while True:
            due = self.next_due()
            now = self._clock()
            if due is not None and now >= due:
                if self._busy():
                    await self._sleep(BUSY_POLL)
                    continue
                await self._check()
                continue
            await self._sleep(3600.0 if due is None else min(due - now, 3600.0))

    async def _check(self) -> None:
        self._last_attempt = self._clock()
        try:
            job = await self._use_case.start(background=True, join=True)
            await asyncio.shield(job.wait())
        except AlreadyRunning:
            pass
        except LibraryError as exc:
            _log.warning("background update check could not start: %s", exc.message)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), max(0.05, seconds))
        except asyncio.TimeoutError:
            pass


# The user's own fields of a sidecar, carried to the new version's file on "replace".
USER_FIELDS = ("notes", "tags", "favorite", "trigger_words", "usage_tips")
# ``user_edited`` names that describe the old file itself (or its version), never carried:
# the new file has its own name, hash, preview and CivitAI version (and so its base model).
NOT_CARRIED = frozenset({
    "file_name", "file_path", "sha256", "size", "modified", "civitai", "from_civitai", "base_model",
    "preview_url", "preview_nsfw_level", "metadata_status", "last_checked_at", "user_edited",
})


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _merged_list(old: list[Any], new: Any, *, fold: bool) -> list[Any]:
    out = list(old)
    seen = {str(v).casefold() if fold else v for v in old if isinstance(v, (str, int, float))}
    for value in new if isinstance(new, list) else []:
        key = str(value).casefold() if fold else value
        if isinstance(value, (str, int, float)) and key not in seen:
            seen.add(key)
            out.append(value)
    return out


def carried_user_data(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The new version's sidecar with the old one's user data in it, and the ``user_edited``
    names it then needs (the old one's that were carried, so a refresh keeps leaving them alone).

    The user's values win: lists (tags, own trigger words) keep the old entries first and add
    the new file's; other fields take the old value unless it is empty; favourite is kept once set.
    Pure; ``new`` is not mutated.
    """
    result = dict(new)
    edited = [name for name in user_edited_fields(old) if name not in NOT_CARRIED]
    for name in dict.fromkeys((*USER_FIELDS, *edited)):
        value = old.get(name)
        if name not in old or _is_empty(value):
            continue
        if name == "favorite":
            result[name] = bool(value) or bool(new.get(name))
        elif isinstance(value, list) and name in ("tags", "trigger_words"):
            result[name] = _merged_list(value, new.get(name), fold=name == "tags")
        else:
            result[name] = copy.deepcopy(value)
    return result, [name for name in edited if not _is_empty(old.get(name))]


@dataclass(slots=True, frozen=True, kw_only=True)
class UpdateDownload:
    """A started (or finished) update download, and the recoverable delete of the old file."""

    job: DownloadJob
    old_path: str
    replace: bool
    batch_id: str | None = None  # the undo token of the old file's delete

    def to_json(self) -> dict[str, Any]:
        return {**self.job.snapshot(), "old_file_path": self.old_path, "replace": self.replace,
                "replaced": self.batch_id is not None, "batch_id": self.batch_id}


class DownloadUpdateUseCase:
    """Download a newer version into the folder of a model's file; with ``replace``, once the
    download is complete and verified, move the old file to the recoverable delete.

    Raises what ``DownloadModelUseCase`` raises (400, 401, 404, 409, 502) and
    ``ValidationError`` when the file has no CivitAI model id. Writes files (the download),
    carries the old sidecar's user data into the new one and only then trashes the old file
    (when the carry fails, the old file stays), broadcasts ``update_replaced`` for a replace it
    finished later.
    """

    def __init__(
        self,
        *,
        downloads: DownloadModelUseCase,
        lifecycle: ModelLifecycleService,
        metadata: MetadataEditService,
        library: ModelLibrary,
        service: UpdateCheckService,
        hub: SocketHub,
    ) -> None:
        self._downloads = downloads
        self._lifecycle = lifecycle
        self._metadata = metadata
        self._library = library
        self._service = service
        self._hub = hub
        self._followers: set[asyncio.Task[None]] = set()

    async def execute(self, entry: ModelEntry, version_id: int, *, replace: bool, wait: bool) -> UpdateDownload:
        model_id = entry.civitai.get("modelId") if entry.civitai else None
        if not isinstance(model_id, int) or model_id <= 0:
            raise ValidationError(f"'{entry.file_path}' has no CivitAI model id: check it on CivitAI first")
        if version_id == entry.civitai.get("id"):
            raise ValidationError(f"'{entry.file_path}' already is model version {version_id}")
        root = self._library[entry.model_type].root_for(entry.file_path)
        if root is None:
            raise ValidationError(f"'{entry.file_path}' is not inside a library root")
        request = DownloadRequest(
            model_id=model_id, version_id=version_id, model_root=root.path, relative_path=entry.folder,
            use_default_paths=False, model_type=entry.model_type,
        )
        job = await self._downloads.execute(request)
        if not wait:
            if replace:
                task = asyncio.get_running_loop().create_task(self._replace_later(entry, job))
                self._followers.add(task)
                task.add_done_callback(self._followers.discard)
            return UpdateDownload(job=job, old_path=entry.file_path, replace=replace)
        await job.wait()
        if job.status is not JobStatus.DONE:
            raise failure_of(job)
        batch_id = await self._replace(entry, job) if replace else None
        await self._service.refresh_views()
        return UpdateDownload(job=job, old_path=entry.file_path, replace=replace, batch_id=batch_id)

    async def _replace(self, entry: ModelEntry, job: DownloadJob) -> str | None:
        """Carry the user's data to the new file, then trash the old one; None (the old file
        stays) when the user's data could not be carried."""
        new_path = job.detail.file_path
        if new_path and new_path != entry.file_path:
            try:
                await self._carry_user_data(entry, new_path)
            except LibraryError as exc:
                _log.warning("update of %s: the old sidecar's user data was not carried to %s (%s); "
                             "the old file stays", entry.file_path, new_path, exc.message)
                return None
        report = await self._lifecycle.delete_model(entry.model_type, entry.file_path)
        return report.batch_id

    async def _carry_user_data(self, entry: ModelEntry, new_path: str) -> None:
        read = await asyncio.to_thread(self._library.sidecars.read, entry.file_path)
        old = dict(read.data) if read.data and not read.corrupt else {}
        if not old:
            return
        _, edited = carried_user_data(old, {})  # the names depend on the old sidecar only
        await self._metadata.update_sidecar(
            entry.model_type, new_path, lambda data: carried_user_data(old, data)[0], edited=edited, reason="update",
        )

    async def _replace_later(self, entry: ModelEntry, job: DownloadJob) -> None:
        await job.wait()
        if job.status is not JobStatus.DONE:
            return  # the old file stays: nothing verified replaced it
        try:
            batch_id = await self._replace(entry, job)
        except LibraryError as exc:
            _log.warning("replacing %s after its update downloaded failed: %s", entry.file_path, exc.message)
            return
        await self._service.refresh_views()
        await self._hub.broadcast({
            "type": "update_replaced", "model_type": entry.model_type.value, "old_file_path": entry.file_path,
            "file_path": job.snapshot().get("file_path"), "batch_id": batch_id,
        })

    async def close(self) -> None:
        tasks = list(self._followers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
