"""HTTP adapters for the CivitAI routes: per-type refresh, bulk refresh, relink and lookups,
plus the two global availability routes browser extensions call.

Handlers parse and validate input, call ``CivitaiSyncService`` or the bulk use case and shape
the JSON; typed errors are rendered by the registrar's guard (upstream failures 502/503,
"not on CivitAI" 404, bad input 400).
"""
from __future__ import annotations

from aiohttp import web

from ...errors import ValidationError
from ...services.civitai.civitai_sync_service import CivitaiSyncService
from ...services.jobs.job import JobStatus
from ...services.use_cases.bulk_metadata_refresh import IDLE, MESSAGE_TYPE, BulkMetadataRefreshUseCase
from ..request_params import (
    body_bool,
    body_str,
    optional_positive_int,
    parse_positive_int,
    path_positive_int,
    query_str,
    read_json_object,
)
from .model_handlers import HandlerContext, ok


class ModelCivitaiHandler:
    """``/api/lm/{prefix}/fetch-civitai``, ``fetch-all-civitai``, ``relink-civitai``, ``civitai/...``."""

    def __init__(self, *, ctx: HandlerContext, sync: CivitaiSyncService, bulk: BulkMetadataRefreshUseCase) -> None:
        self._ctx = ctx
        self._sync = sync
        self._bulk = bulk

    async def fetch_civitai(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        entry = self._ctx.model_path(body_str(data, "file_path"))
        fresh = await self._sync.refresh_model(entry)
        return ok(metadata=self._ctx.service.format_response(fresh))

    async def fetch_all_civitai(self, request: web.Request) -> web.Response:
        data = await read_json_object(request, allow_empty=True)
        force = body_bool(data, "force", False)
        wait = body_bool(data, "wait", True)
        if not wait:
            job = await self._bulk.start(force=force)
            return ok(**job.snapshot())
        job = await self._bulk.run_to_end(force=force)
        if job.status is JobStatus.FAILED and job.error is not None:
            # the upstream's reason and status (502/503/401), with the summary of what was done
            raise job.error.with_extra(summary=job.snapshot())
        return ok(**job.snapshot())

    async def get_fetch_all_civitai_progress(self, request: web.Request) -> web.Response:
        snapshot = self._bulk.progress()
        if snapshot is None:
            return ok(type=MESSAGE_TYPE, model_type=self._ctx.model_type.value, status=IDLE)
        return ok(**snapshot)

    async def cancel_task(self, request: web.Request) -> web.Response:
        return ok(cancelled=await self._bulk.cancel())

    async def relink_civitai(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        entry = self._ctx.model_path(body_str(data, "file_path"))
        if data.get("model_id") in (None, ""):
            raise ValidationError("'model_id' is required")
        fresh = await self._sync.relink(
            entry,
            parse_positive_int(data.get("model_id"), "model_id"),
            optional_positive_int(data.get("model_version_id"), "model_version_id"),
        )
        return ok(metadata=self._ctx.service.format_response(fresh))

    async def get_civitai_versions(self, request: web.Request) -> web.Response:
        result = await self._sync.versions_with_local_state(path_positive_int(request, "model_id"), self._ctx.model_type)
        payload = result.to_json()
        return ok(**payload)

    async def get_civitai_model_by_version(self, request: web.Request) -> web.Response:
        version = await self._sync.version_by_id(path_positive_int(request, "version_id"))
        return ok(version=version)

    async def get_civitai_model_by_hash(self, request: web.Request) -> web.Response:
        version = await self._sync.version_by_hash(request.match_info.get("hash", ""))
        return ok(version=version)


class CivitaiGlobalHandlers:
    """``/api/lm/check-model-exists`` and ``/api/lm/model-versions-status`` (any model type)."""

    def __init__(self, *, sync: CivitaiSyncService) -> None:
        self._sync = sync

    async def check_model_exists(self, request: web.Request) -> web.Response:
        model_id = parse_positive_int(query_str(request.query, "modelId", required=True, max_len=20), "modelId")
        version_id = optional_positive_int(query_str(request.query, "modelVersionId", max_len=20), "modelVersionId")
        matches = self._sync.local_matches(model_id, version_id)
        return ok(
            exists=bool(matches),
            modelType=matches[0].model_type.value if matches else None,
            models=[m.to_json() for m in matches],
            versionIds=sorted({m.version_id for m in matches if isinstance(m.version_id, int)}),
        )

    async def model_versions_status(self, request: web.Request) -> web.Response:
        model_id = parse_positive_int(query_str(request.query, "modelId", required=True, max_len=20), "modelId")
        result = await self._sync.model_versions_status(model_id)
        versions = [
            {
                "id": v.version.get("id"),
                "name": v.version.get("name"),
                "baseModel": v.version.get("baseModel"),
                "inLibrary": v.local_path is not None,
                "byVersionId": bool(v.linked_paths),
                "byHash": any(f.local_paths for f in v.files),
                "localPath": v.local_path,
            }
            for v in result.versions
        ]
        return ok(modelId=result.model_id, name=result.name, type=result.type, versions=versions)
