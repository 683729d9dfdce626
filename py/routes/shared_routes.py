"""Routes that belong to no model type: previews, settings, health, version, sockets,
static front-end files and translations.

Thin handlers like the per-type ones; bound through the same registrar (same guards).
"""
from __future__ import annotations

import asyncio
import mimetypes
import os
from typing import TYPE_CHECKING

from aiohttp import web

from ..errors import NotFoundError, PathOutsideLibrary, ValidationError
from ..services.shared.settings_manager import READ_ONLY_OVER_HTTP
from ..services.shared.sidecar_store import IMAGE_SUFFIXES, VIDEO_SUFFIXES, stat_companion
from .handlers.management_handlers import UndoDeleteHandler
from .model_route_registrar import ModelRouteRegistrar
from .request_params import query_str, read_json_object

if TYPE_CHECKING:
    from ..app_services import AppServices

PREVIEW_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
PREVIEW_TYPES = {
    ".webp": "image/webp",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}
STATIC_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".html": "text/html",
    ".txt": "text/plain",
}


class SharedHandlers:
    """Handlers of the global routes."""

    def __init__(self, *, services: "AppServices") -> None:
        self._s = services
        self._static_root = os.path.realpath(services.plugin_dir / "web" / "app")

    async def get_preview(self, request: web.Request) -> web.StreamResponse:
        raw = query_str(request.query, "path", required=True)
        guarded = self._s.path_guard.check(raw)
        if not guarded.real.lower().endswith(PREVIEW_SUFFIXES):
            raise PathOutsideLibrary(f"'{raw[:200]}' is not a preview file")
        guard = self._s.path_guard
        try:
            # The guard resolved the path; a hard link (or a non-file) is refused here too:
            # its other name may lie anywhere, so it cannot be shown to be inside the library.
            st = await asyncio.to_thread(stat_companion, guarded.path, contains_real=guard.contains_real)
        except OSError:
            raise NotFoundError(f"no preview at '{raw[:200]}'") from None
        if st is None:
            raise PathOutsideLibrary(
                f"'{raw[:200]}' is not served: it is a hard link, or no file inside the library"
            )
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        headers = {"Cache-Control": "private, max-age=0, must-revalidate", "ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        ext = os.path.splitext(guarded.real)[1].lower()
        headers["Content-Type"] = PREVIEW_TYPES.get(ext, "application/octet-stream")
        return web.FileResponse(guarded.real, headers=headers)

    async def get_settings(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "settings": self._s.settings.public_view(), **self._flags()})

    async def update_settings(self, request: web.Request) -> web.Response:
        changes = await read_json_object(request)
        view = await self._s.settings.update_from_http(changes)
        return web.json_response({"success": True, "settings": view, **self._flags()})

    def _flags(self) -> dict[str, object]:
        return {
            "civitai_api_key_set": bool(self._s.settings.get("civitai_api_key")),
            # shown read-only in the settings dialog: the file, the environment or the CLI set them
            "read_only": list(READ_ONLY_OVER_HTTP),
            "settings_file": str(self._s.settings.path),
        }

    async def health_check(self, request: web.Request) -> web.Response:
        ready = {t.value: s.is_ready for t, s in self._s.model_services.items()}
        return web.json_response({"success": True, "status": "ok", "ready": ready, "version": self._s.version})

    async def version_info(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "version": self._s.version})

    async def library_status(self, request: web.Request) -> web.Response:
        """Counts, scan figures and hashing progress (for progress panels and tests)."""
        types = {
            t.value: {"ready": s.is_ready, "total": len(s.index), "last_scan": s.last_scan, "roots": s.root_paths()}
            for t, s in self._s.model_services.items()
        }
        watcher = self._s.watcher.mode if self._s.watcher else "off"
        return web.json_response(
            {"success": True, "types": types, "hashing": self._s.hash_queue.snapshot(), "watcher": watcher}
        )

    async def fetch_progress_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._s.ws.handle_fetch_socket(request)

    async def init_progress_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._s.ws.handle_init_socket(request)

    async def download_progress_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._s.ws.handle_download_socket(request)

    async def get_static(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info.get("path", "")
        if "\x00" in rel or rel.startswith("/") or "\\" in rel:
            raise ValidationError("invalid static path")
        full = os.path.realpath(os.path.join(self._static_root, rel))
        if os.path.commonpath([full, self._static_root]) != self._static_root:
            raise PathOutsideLibrary("static path escapes the web folder")
        if not os.path.isfile(full):
            raise NotFoundError(f"no file '{rel[:200]}'")
        ext = os.path.splitext(full)[1].lower()
        content_type = STATIC_TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        return web.FileResponse(full, headers={"Cache-Control": "no-cache", "Content-Type": content_type})

    async def get_i18n(self, request: web.Request) -> web.Response:
        lang = self._s.i18n.resolve_language(request.query.get("lang") or self._s.settings.get("language"))
        return web.json_response({"success": True, "lang": lang, "messages": self._s.i18n.messages(lang)})

    async def get_languages(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "languages": self._s.i18n.languages})


def register_shared_routes(registrar: ModelRouteRegistrar, services: "AppServices") -> SharedHandlers:
    h = SharedHandlers(services=services)
    registrar.add("GET", "/api/lm/previews", h.get_preview)
    registrar.add("GET", "/api/lm/settings", h.get_settings)
    registrar.add("POST", "/api/lm/settings", h.update_settings)
    registrar.add("GET", "/api/lm/health-check", h.health_check)
    registrar.add("GET", "/api/lm/version-info", h.version_info)
    registrar.add("GET", "/api/lm/status", h.library_status)
    registrar.add("GET", "/api/lm/i18n", h.get_i18n)
    registrar.add("GET", "/api/lm/i18n/languages", h.get_languages)
    registrar.add("GET", "/lm/static/{path:.+}", h.get_static)
    # A socket streams the library's paths and progress to whoever opens it: it gets the
    # cross-origin rules of a change (browsers send no CORS check for WebSockets).
    registrar.add("GET", "/ws/fetch-progress", h.fetch_progress_socket, state_changing=True)
    registrar.add("GET", "/ws/init-progress", h.init_progress_socket, state_changing=True)
    registrar.add("GET", "/ws/download-progress", h.download_progress_socket, state_changing=True, extensions=True)
    registrar.add("POST", "/api/lm/undo-delete", UndoDeleteHandler(lifecycle=services.lifecycle).undo_delete)
    return h
