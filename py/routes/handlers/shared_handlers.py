"""Handlers of the global routes that belong to no model type: previews, settings, health,
version, status, sockets, static front-end files and translations.

Thin like the per-type ones: they parse, call one collaborator and shape the JSON; typed
errors are rendered by the registrar's guard.
"""
from __future__ import annotations

import asyncio
import mimetypes
import os
from pathlib import Path

from aiohttp import web

from ...errors import NotFoundError, PathOutsideLibrary, ValidationError
from ...services.downloads.download_service import DownloadService
from ...services.library.library_watcher import LibraryWatcher
from ...services.library.model_hasher import HashQueue
from ...services.library.model_library import ModelLibrary
from ...services.shared.path_guard import PathGuard
from ...services.shared.server_i18n import ServerI18n
from ...services.shared.settings_manager import READ_ONLY_OVER_HTTP, SettingsManager
from ...services.shared.sidecar_store import PREVIEW_CONTENT_TYPES, preview_kind
from ...services.shared.socket_hub import SocketHub
from ..request_params import query_str, read_json_object

# The level of the JSON API outside clients rely on (downloads, progress, availability): the
# browser extension that sends downloads here needs 1.1.4; raise it when such a route changes.
API_LEVEL = "1.1.4"

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
    """Handlers of the global routes that are not CivitAI's, downloads' or undo's."""

    def __init__(
        self,
        *,
        guard: PathGuard,
        settings: SettingsManager,
        library: ModelLibrary,
        hash_queue: HashQueue,
        watcher: LibraryWatcher | None,
        hub: SocketHub,
        downloads: DownloadService,
        i18n: ServerI18n,
        version: str,
        static_root: Path,
    ) -> None:
        self._guard = guard
        self._settings = settings
        self._library = library
        self._hash_queue = hash_queue
        self._watcher = watcher
        self._hub = hub
        self._downloads = downloads
        self._i18n = i18n
        self._version = version
        self._static_root = os.path.realpath(static_root)

    async def get_preview(self, request: web.Request) -> web.StreamResponse:
        raw = query_str(request.query, "path", required=True)
        guard = self._guard
        guarded = guard.check(raw)
        if not preview_kind(guarded.real):
            raise PathOutsideLibrary(f"'{raw[:200]}' is not a preview file")
        try:
            # The guard resolved the path; a hard link (or a non-file) is refused here too:
            # its other name may lie anywhere, so it cannot be shown to be inside the library.
            st = await asyncio.to_thread(self._library.sidecars.stat, guarded.path)
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
        headers["Content-Type"] = PREVIEW_CONTENT_TYPES.get(ext, "application/octet-stream")
        return web.FileResponse(guarded.real, headers=headers)

    async def get_settings(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "settings": self._settings.public_view(), **self._flags()})

    async def update_settings(self, request: web.Request) -> web.Response:
        changes = await read_json_object(request)
        view = await self._settings.update_from_http(changes)
        return web.json_response({"success": True, "settings": view, **self._flags()})

    def _flags(self) -> dict[str, object]:
        return {
            "civitai_api_key_set": bool(self._settings.get("civitai_api_key")),
            # shown read-only in the settings dialog: the file, the environment or the CLI set them
            "read_only": list(READ_ONLY_OVER_HTTP),
            "settings_file": str(self._settings.path),
        }

    async def health_check(self, request: web.Request) -> web.Response:
        # the main three always; another type (VAEs ...) only when it has a folder
        ready = {t.value: s.is_ready for t, s in self._library.items() if t.is_core or s.roots}
        return web.json_response({"success": True, "status": "ok", "ready": ready, "version": self._version})

    async def version_info(self, request: web.Request) -> web.Response:
        """``version`` is the API level (plain semver, what clients compare); our own build
        is ``plugin_version`` (issue 14: the browser extension wants ``version`` >= 1.1.4)."""
        return web.json_response({
            "success": True, "version": API_LEVEL, "api_version": API_LEVEL, "plugin_version": self._version,
        })

    async def library_status(self, request: web.Request) -> web.Response:
        """Counts, scan figures and hashing progress (for progress panels and tests)."""
        types = {
            t.value: {"ready": s.is_ready, "total": len(s.index), "last_scan": s.last_scan, "roots": s.root_paths(),
                      "prefix": t.prefix}
            for t, s in self._library.items()
        }
        watcher = self._watcher.mode if self._watcher else "off"
        return web.json_response(
            {"success": True, "types": types, "hashing": self._hash_queue.snapshot(), "watcher": watcher}
        )

    async def fetch_progress_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._hub.serve_fetch_socket(request)

    async def init_progress_socket(self, request: web.Request) -> web.StreamResponse:
        return await self._hub.serve_init_socket(request)

    async def download_progress_socket(self, request: web.Request) -> web.StreamResponse:
        """``?id=``: one download (its latest snapshot first), else every download."""
        download_id = request.query.get("id") or None
        job = self._downloads.jobs.get(download_id) if download_id else None
        replay = [job.snapshot()] if job is not None else []
        return await self._hub.serve_download_socket(request, download_id, replay)

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
        lang = self._i18n.resolve_language(request.query.get("lang") or self._settings.get("language"))
        return web.json_response({"success": True, "lang": lang, "messages": self._i18n.messages(lang)})

    async def get_languages(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "languages": self._i18n.languages})
