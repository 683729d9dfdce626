"""Schedules planned downloads and keeps their latest snapshots in the WebSocketManager.

Owns download ids (generated, or the client's own ``download_id``) and the progress
callback of each job: every snapshot is stored in ``WebSocketManager`` and pushed from there,
so the ``/ws/download-progress`` push and the polling endpoint read the same data. It must
not validate payloads (the use case does) nor fetch bytes.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

from ...errors import AlreadyRunning, NotFoundError, ValidationError
from .download_manager import DownloadManager, ProgressCallback
from .download_records import DownloadJob, DownloadPlan, DownloadStatus
from ..shared.websocket_manager import WebSocketManager

DOWNLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def check_download_id(value: Any) -> str:
    """A client-chosen id: 1-100 letters, digits, ``_ . : -``; ``ValidationError`` otherwise."""
    if not isinstance(value, str) or not DOWNLOAD_ID_RE.match(value):
        raise ValidationError("'download_id' must be 1-100 letters, digits, '_', '.', ':' or '-'")
    return value


class DownloadCoordinator:
    """The seam between requests and the download manager."""

    def __init__(self, *, manager: DownloadManager, ws: WebSocketManager) -> None:
        self._manager = manager
        self._ws = ws
        manager.progress_factory = self.progress_callback

    @property
    def manager(self) -> DownloadManager:
        return self._manager

    def progress_callback(self, download_id: str) -> ProgressCallback:
        """Store the job's snapshot for polling and push it to the sockets watching it."""

        async def callback(job: DownloadJob) -> None:
            await self._ws.broadcast_download_progress(download_id, job.snapshot())

        return callback

    async def schedule_download(self, plan: DownloadPlan, *, download_id: str | None = None) -> dict[str, Any]:
        """Queue the download (or join the active one for the same file) and wait until it has
        either started streaming, ended, or is waiting for a slot.

        Raises ``AlreadyRunning`` when ``download_id`` is taken by an unfinished download, or
        when the same file is already downloading under another id.

        Returns ``{"success": True, "download_id", "status", ...snapshot}``; a job that already
        failed while opening is returned as it is (the use case maps its error).
        """
        active = self._manager.find_active(plan)
        if active is not None and download_id not in (None, active.id):
            raise AlreadyRunning(
                f"model version {plan.version_id} is already being downloaded (download id '{active.id}')",
                extra={"download_id": active.id},
            )
        if active is not None:
            job = active
        else:
            job_id = check_download_id(download_id) if download_id is not None else uuid.uuid4().hex
            job = await self._manager.enqueue(DownloadJob(id=job_id, plan=plan), self.progress_callback(job_id))
        job = await self._manager.wait_opened(job.id)
        return {"success": True, **self.snapshot(job.id)}

    async def wait(self, download_id: str) -> DownloadJob:
        """The job once it completed, failed or was cancelled."""
        return await self._manager.wait(download_id)

    def snapshot(self, download_id: str) -> dict[str, Any]:
        """The latest snapshot (the one the sockets got); ``NotFoundError`` for unknown ids."""
        snap = self._ws.get_download_progress(download_id)
        if snap is None:
            job = self._manager.get(download_id)
            if job is None:
                raise NotFoundError(f"no download with id '{download_id}'")
            snap = job.snapshot()
        return snap

    async def pause(self, download_id: str) -> dict[str, Any]:
        await self._manager.pause(download_id)
        return self.snapshot(download_id)

    async def resume(self, download_id: str) -> dict[str, Any]:
        await self._manager.resume(download_id)
        return self.snapshot(download_id)

    async def cancel(self, download_id: str) -> dict[str, Any]:
        await self._manager.cancel(download_id)
        return self.snapshot(download_id)

    def active(self) -> list[dict[str, Any]]:
        return [self._snap_of(j) for j in self._manager.active()]

    def history(self) -> list[dict[str, Any]]:
        return [self._snap_of(j) for j in self._manager.history()]

    def _snap_of(self, job: DownloadJob) -> dict[str, Any]:
        if job.status is DownloadStatus.DOWNLOADING:
            live = self._ws.get_download_progress(job.id)
            if live is not None:
                return live
        return job.snapshot()
