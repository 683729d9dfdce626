"""A model's preview file: replacing it from an upload or from an allowed image host.

Owns sniffing (magic bytes, never the name), the size limits, re-encoding images to a
bounded WebP with Pillow (videos, mp4/webm, are kept as sent), removing the model's old
previews and setting one from an allowed image host (through the one remote fetcher, with
the ``preview_url_hosts`` setting). Sidecar writes go through the metadata edit service; it
must not fetch any other URL nor parse requests.
"""
from __future__ import annotations

import asyncio
import os
from contextlib import suppress
from typing import Any

from ...errors import PayloadTooLarge
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelType
from ..shared.atomic_file import write_bytes_atomic
from ..shared.model_locks import ModelLocks
from ..shared.preview_encoding import MAX_PREVIEW_EDGE, encode_webp, sniff_preview
from ..shared.remote_image_fetcher import RemoteImageFetcher
from ..shared.settings_manager import SettingsManager
from ..shared.sidecar_store import PREVIEW_SUFFIXES
from .metadata_edit_service import MetadataEditService
from .mutation_records import PreviewResult

MAX_PREVIEW_BYTES = 64 * 1024 * 1024


class PreviewAssetService:
    """Writes a model's preview (one file, old ones removed) and returns its cache-busted URL."""

    def __init__(
        self,
        *,
        library: ModelLibrary,
        locks: ModelLocks,
        metadata: MetadataEditService,
        settings: SettingsManager,
        fetcher: RemoteImageFetcher,
        max_bytes: int = MAX_PREVIEW_BYTES,
        max_edge: int = MAX_PREVIEW_EDGE,
    ) -> None:
        self._library = library
        self._locks = locks
        self._metadata = metadata
        self._settings = settings
        self._fetcher = fetcher
        self.max_bytes = max_bytes
        self._max_edge = max_edge

    async def replace_preview(
        self, model_type: ModelType, path: str, data: bytes, *, nsfw_level: int | None = None
    ) -> PreviewResult:
        """Make ``data`` the model's preview; returns the entry and the URL to load.

        Raises ``ModelNotFound``, ``PayloadTooLarge``, ``ValidationError`` (not a
        supported image/video, undecodable); writes ``<stem>.webp`` (or ``.mp4``/``.webm``),
        deletes the model's other previews, records ``preview_url`` (and the NSFW level)
        in the sidecar and broadcasts ``models_changed``.
        """
        if len(data) > self.max_bytes:
            raise PayloadTooLarge(f"the preview is larger than {self.max_bytes // (1024 * 1024)} MiB")
        kind = sniff_preview(data)
        service = self._library[model_type]
        service.require(path)
        if kind in ("mp4", "webm"):
            payload, suffix = data, "." + kind
        else:
            payload, suffix = await asyncio.to_thread(encode_webp, data, self._max_edge), ".webp"
        async with self._locks.hold(path):
            service.require(path)
            target = os.path.splitext(path)[0] + suffix
            await asyncio.to_thread(_write_preview, path, target, payload)
            values: dict[str, Any] = {"preview_url": target}
            if nsfw_level is not None:
                values["preview_nsfw_level"] = nsfw_level

            def edit(sidecar: dict[str, Any]) -> dict[str, Any]:
                sidecar.update(values)
                return sidecar

            entry = await self._metadata.update_sidecar(
                model_type, path, edit, edited=list(values), reason="preview", locked=True
            )
        url = service.format_response(entry)["preview_url"]
        return PreviewResult(entry=entry, preview_path=target, preview_url=url)

    # from a URL ---------------------------------------------------------------------
    def check_url(self, url: object) -> str:
        """The URL if its scheme is http(s) and its host is allowed; ``ValidationError`` otherwise."""
        return str(self._fetcher.check_url(url, self._settings.get("preview_url_hosts")))

    async def set_preview_from_url(
        self, model_type: ModelType, path: str, url: object, *, nsfw_level: int | None = None
    ) -> PreviewResult:
        """Fetch an image/video from an allowed host and make it the preview.

        Raises ``ValidationError`` (host not allowed, content not a preview),
        ``PayloadTooLarge``, ``UpstreamNotFound``/``UpstreamUnavailable``, ``ModelNotFound``.
        """
        checked = self.check_url(url)
        self._library[model_type].require(path)
        media = await self._fetcher.fetch(
            checked, allowed_hosts=self._settings.get("preview_url_hosts"), max_bytes=self.max_bytes
        )
        return await self.replace_preview(model_type, path, media.body, nsfw_level=nsfw_level)


def _write_preview(model_path: str, target: str, payload: bytes) -> None:
    write_bytes_atomic(target, payload)
    stem = os.path.splitext(model_path)[0]
    for suffix in PREVIEW_SUFFIXES:
        old = stem + suffix
        if old != target:
            with suppress(OSError):  # gone already, or not a file: it cannot shadow ours
                os.unlink(old)
