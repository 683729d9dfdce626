"""Thin HTTP adapters for downloads (global routes, not per model type).

``download-model`` (POST JSON) and ``download-model-get`` (query string, for browser
extensions) wait by default until the download ends and answer with its ``file_path``;
``wait: false`` answers once it is scheduled. Errors are typed and rendered by the guard.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from ...errors import ValidationError
from ...services.downloads.download_records import FILE_PARAM_KEYS, DownloadRequest
from ...services.downloads.download_service import DownloadService, check_download_id
from ...services.jobs.job import JobStatus
from ...services.use_cases.download_model import DownloadModelUseCase, failure_of
from ..request_params import download_request, query_bool, query_str, read_json_object

_QUERY_FIELDS = (
    "model_id", "model_version_id", "model_root", "relative_path", "use_default_paths",
    "file_params", "download_id", "model_type", "hf_url", "hf_repo", "hf_path", "hf_revision",
)


class ModelDownloadHandler:
    """Downloads: start, watch, pause, resume, cancel, list."""

    def __init__(self, *, use_case: DownloadModelUseCase, downloads: DownloadService) -> None:
        self._use_case = use_case
        self._downloads = downloads

    async def download_model(self, request: web.Request) -> web.Response:
        payload = await read_json_object(request)
        wait = payload.pop("wait", True)
        if not isinstance(wait, bool):
            raise ValidationError("'wait' must be true or false")
        return await self._start(download_request(payload), wait)

    async def download_model_get(self, request: web.Request) -> web.Response:
        q = request.query
        payload: dict[str, Any] = {name: query_str(q, name) for name in _QUERY_FIELDS if name in q}
        # older clients send the file choice as separate parameters
        params = {k: q[k] for k in FILE_PARAM_KEYS if q.get(k)}
        if params and "file_params" not in payload:
            payload["file_params"] = params
        return await self._start(download_request(payload), query_bool(q, "wait", True))

    async def _start(self, request: DownloadRequest, wait: bool) -> web.Response:
        job = await self._use_case.execute(request)
        if wait:
            await job.wait()
            if job.status is not JobStatus.DONE:
                raise failure_of(job)
        return web.json_response({"success": True, **job.snapshot()})

    @staticmethod
    def _id(request: web.Request) -> str:
        raw = request.match_info.get("download_id") or query_str(request.query, "download_id", required=True)
        return check_download_id(raw)

    async def get_download_progress(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **self._downloads.snapshot(self._id(request))})

    async def cancel_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **(await self._downloads.cancel(self._id(request))).snapshot()})

    async def pause_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **(await self._downloads.pause(self._id(request))).snapshot()})

    async def resume_download(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, **(await self._downloads.resume(self._id(request))).snapshot()})

    async def list_downloads(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "downloads": self._downloads.active()})

    async def download_history(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "history": self._downloads.history()})
