"""Thin HTTP adapters for downloads (global routes, not per model type).

``download-model`` (POST JSON) and ``download-model-get`` (query string, for browser
extensions) wait by default until the download ends and answer with its ``file_path``;
``wait: false`` answers once it is scheduled. Errors are typed and rendered by the guard.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...errors import ValidationError
from ...services.downloads.download_coordinator import DownloadCoordinator, check_download_id
from ...services.downloads.download_records import DownloadStatus
from ...services.use_cases.download_model import DownloadModelEarlyAccessError, DownloadModelUseCase
from ..model_route_registrar import ModelRouteRegistrar
from ..request_params import query_bool, query_str, read_json_object

if TYPE_CHECKING:
    from ...app_services import AppServices

_QUERY_FIELDS = (
    "model_id", "model_version_id", "model_root", "relative_path", "use_default_paths",
    "file_params", "download_id", "model_type",
)


class ModelDownloadHandler:
    """Downloads: start, watch, pause, resume, cancel, list."""

    def __init__(self, *, use_case: DownloadModelUseCase, coordinator: DownloadCoordinator) -> None:
        self._use_case = use_case
        self._coordinator = coordinator

    async def download_model(self, request: web.Request) -> web.Response:
        payload = await read_json_object(request)
        wait = payload.pop("wait", True)
        if not isinstance(wait, bool):
            raise ValidationError("'wait' must be true or false")
        return await self._start(payload, wait)

    async def download_model_get(self, request: web.Request) -> web.Response:
        q = request.query
        payload: dict[str, Any] = {name: query_str(q, name) for name in _QUERY_FIELDS if name in q}
        # older clients send the file choice as separate parameters
        params = {k: q[k] for k in ("type", "format", "size", "fp") if q.get(k)}
        if params and "file_params" not in payload:
            payload["file_params"] = params
        return await self._start(payload, query_bool(q, "wait", True))

    async def _start(self, payload: dict[str, Any], wait: bool) -> web.Response:
        result = await self._use_case.execute(payload)
        if not wait or result.get("status") == DownloadStatus.COMPLETED.value:
            return web.json_response(result)
        job = await self._coordinator.wait(result["download_id"])
        if job.status is not DownloadStatus.COMPLETED:
            error = job.error_object()
            if error.code in ("early_access", "authentication_required"):
                wrapped = DownloadModelEarlyAccessError(error.message, extra=error.extra)
                wrapped.code = error.code
                raise wrapped
            raise error
        return web.json_response({"success": True, **self._coordinator.snapshot(job.id)})

    @staticmethod
    def _id(request: web.Request) -> str:
        raw = request.match_info.get("download_id") or query_str(request.query, "download_id", required=True)
        return check_download_id(raw)

    async def get_download_progress(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **self._coordinator.snapshot(self._id(request))})

    async def cancel_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **await self._coordinator.cancel(self._id(request))})

    async def pause_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **await self._coordinator.pause(self._id(request))})

    async def resume_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **await self._coordinator.resume(self._id(request))})

    async def list_downloads(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "downloads": self._coordinator.active()})

    async def download_history(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "history": self._coordinator.history()})


def register_download_routes(registrar: ModelRouteRegistrar, services: "AppServices") -> ModelDownloadHandler | None:
    """The global download routes. GETs that change state get the cross-origin rules; the
    browser extension that sends downloads to the library may use them from its origin."""
    if services.download_use_case is None or services.download_coordinator is None:
        return None
    h = ModelDownloadHandler(use_case=services.download_use_case, coordinator=services.download_coordinator)
    registrar.add("POST", "/api/lm/download-model", h.download_model, extensions=True)
    registrar.add("GET", "/api/lm/download-model-get", h.download_model_get, state_changing=True, extensions=True)
    registrar.add("GET", "/api/lm/download-progress/{download_id}", h.get_download_progress)
    registrar.add("GET", "/api/lm/cancel-download-get", h.cancel_download, state_changing=True, extensions=True)
    registrar.add("GET", "/api/lm/pause-download", h.pause_download, state_changing=True, extensions=True)
    registrar.add("GET", "/api/lm/resume-download", h.resume_download, state_changing=True, extensions=True)
    registrar.add("GET", "/api/lm/downloads", h.list_downloads)
    registrar.add("GET", "/api/lm/downloads/history", h.download_history)
    return h
