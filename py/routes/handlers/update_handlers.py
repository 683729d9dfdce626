"""HTTP adapters for update checks: start, watch and cancel the check, read the newer versions
of a type (or of one file), edit the ignore lists, download an update (optionally replacing).

Handlers parse and validate input, call the update service or its use cases and shape the
JSON; typed errors are rendered by the registrar's guard.
"""
from __future__ import annotations

from aiohttp import web

from ...errors import ValidationError
from ...services.civitai.update_check_service import UpdateCheckService
from ...services.jobs.job import JobStatus
from ...services.use_cases.check_updates import IDLE, MESSAGE_TYPE, CheckUpdatesUseCase, DownloadUpdateUseCase
from ..request_params import (
    body_bool,
    body_str,
    optional_positive_int,
    parse_positive_int,
    query_bool,
    query_str,
    read_json_object,
)
from .model_handlers import HandlerContext, ok


class ModelUpdateHandler:
    """``/api/lm/{prefix}/check-updates``, ``updates``, ``ignore-update``, ``download-update``, ..."""

    def __init__(
        self,
        *,
        ctx: HandlerContext,
        service: UpdateCheckService,
        check: CheckUpdatesUseCase,
        download: DownloadUpdateUseCase,
    ) -> None:
        self._ctx = ctx
        self._service = service
        self._check = check
        self._download = download

    async def check_updates(self, request: web.Request) -> web.Response:
        data = await read_json_object(request, allow_empty=True)
        wait = body_bool(data, "wait", False)
        job = await self._check.start()
        if wait:
            await job.wait()
            if job.status is JobStatus.FAILED and job.error is not None:
                raise job.error.with_extra(summary=job.snapshot())
        return ok(**job.snapshot())

    async def get_update_check_progress(self, request: web.Request) -> web.Response:
        snapshot = self._check.progress()
        return ok(**(snapshot or {"type": MESSAGE_TYPE, "status": IDLE}))

    async def cancel_update_check(self, request: web.Request) -> web.Response:
        return ok(cancelled=await self._check.cancel())

    async def get_updates(self, request: web.Request) -> web.Response:
        q = request.query
        file_path = None
        if "file_path" in q:
            file_path = self._ctx.model_path(query_str(q, "file_path", required=True)).file_path
        updates = self._service.updates(
            self._ctx.model_type, file_path=file_path, include_ignored=query_bool(q, "include_ignored", False)
        )
        return ok(
            updates=[u.to_json() for u in updates],
            count=sum(1 for u in updates if u.has_update),
            last_check_at=self._service.store.last_check_at,
            same_base_model=bool(self._ctx.settings.get("update_same_base_model")),
            check=self._check.progress() or {"type": MESSAGE_TYPE, "status": IDLE},
        )

    async def ignore_update(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        model_id = optional_positive_int(data.get("model_id"), "model_id")
        version_id = optional_positive_int(data.get("version_id"), "version_id")
        result = await self._service.set_ignored(
            model_id=model_id, version_id=version_id, ignored=body_bool(data, "ignore", True)
        )
        return ok(**result)

    async def download_update(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        entry = self._ctx.model_path(body_str(data, "file_path"))
        if data.get("version_id") in (None, ""):
            raise ValidationError("'version_id' is required")
        version_id = parse_positive_int(data.get("version_id"), "version_id")
        result = await self._download.execute(
            entry, version_id, replace=body_bool(data, "replace", False), wait=body_bool(data, "wait", True)
        )
        return ok(**result.to_json())
