"""Auto-organize one model type, one run at a time across the whole library.

Owns single-flight (the WebSocketManager's shared lock plus the stored run status, checked
before the file service is called) and the run's progress snapshot, kept for polling until
cleared. It must not plan or move files itself (``AutoOrganizeService`` does).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...errors import AlreadyRunning
from ..organize.auto_organize_service import AutoOrganizeService
from ..library.model_records import ModelType
from ..organize.organize_records import SNAPSHOT_KEY, AutoOrganizeJob, OrganizeResult
from ..shared.websocket_manager import WebSocketManager

_log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], Awaitable[None]]


class AutoOrganizeInProgressError(AlreadyRunning):
    """Another auto-organize run is active (HTTP 409)."""


class WebSocketProgressCallback:
    """Progress sink: stores the snapshot for polling, then pushes it on ``/ws/fetch-progress``."""

    def __init__(self, ws: WebSocketManager, key: str = SNAPSHOT_KEY) -> None:
        self._ws = ws
        self._key = key

    async def __call__(self, snapshot: dict[str, Any]) -> None:
        self._ws.set_task_snapshot(self._key, snapshot)
        await self._ws.broadcast(snapshot)


class AutoOrganizeUseCase:
    """``execute`` runs (or dry-runs) auto-organize for one model type.

    Raises ``AutoOrganizeInProgressError`` before calling the file service when a run is
    active, ``ValidationError`` for a bad template or pattern list.
    """

    def __init__(self, *, model_type: ModelType, file_service: AutoOrganizeService, ws: WebSocketManager) -> None:
        self.model_type = model_type
        self._files = file_service
        self._ws = ws

    def is_running(self) -> bool:
        snap = self._ws.get_task_snapshot(SNAPSHOT_KEY)
        return self._ws.auto_organize_lock.locked() or bool(snap and snap.get("status") in ("queued", "running"))

    def _refuse_if_running(self) -> None:
        if self.is_running():
            snap = self._ws.get_task_snapshot(SNAPSHOT_KEY) or {}
            which = snap.get("model_type") or "a model type"
            raise AutoOrganizeInProgressError(
                f"auto-organize is already running (for {which}); wait for it to finish, then try again",
                extra={"progress": snap} if snap else None,
            )

    async def execute(
        self,
        file_paths: Sequence[str] | None,
        progress_callback: ProgressCallback | None = None,
        *,
        exclusion_patterns: Sequence[str] = (),
        dry_run: bool = False,
    ) -> OrganizeResult:
        """Plan and move; a dry run only plans (no files touched, no progress stored)."""
        self._refuse_if_running()
        lock = self._ws.auto_organize_lock
        async with lock:  # free (checked above, no await since): taken without waiting
            if dry_run:
                return await self._files.auto_organize_models(
                    self.model_type, file_paths, exclusion_patterns=exclusion_patterns, dry_run=True
                )
            callback = progress_callback or WebSocketProgressCallback(self._ws)
            job = AutoOrganizeJob(model_type=self.model_type)

            async def report() -> None:
                await callback(job.snapshot())

            await report()
            try:
                result = await self._files.auto_organize_models(
                    self.model_type, file_paths, exclusion_patterns=exclusion_patterns, job=job, report=report
                )
            except BaseException as exc:
                if isinstance(exc, Exception):
                    job.fail(exc)
                else:
                    job.cancel()
                await report()
                raise
            job.finish(result)
            await report()
            return result

    def progress(self) -> dict[str, Any] | None:
        return self._ws.get_task_snapshot(SNAPSHOT_KEY)

    def clear(self) -> bool:
        """Forget the last run's progress; ``AutoOrganizeInProgressError`` while one runs."""
        self._refuse_if_running()
        had = self._ws.get_task_snapshot(SNAPSHOT_KEY) is not None
        self._ws.clear_task_snapshot(SNAPSHOT_KEY)
        return had
