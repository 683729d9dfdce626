"""A model's preview file: replacing it from an upload or from an allowed image host.

Owns sniffing (magic bytes, never the name), the size limits, re-encoding images to a
bounded WebP with Pillow (videos, mp4/webm, are kept as sent), removing the model's old
previews and the one outbound fetch the library allows (hosts in the ``preview_url_hosts``
setting). Sidecar writes go through the metadata sync service; it must not fetch any
other URL nor parse requests.
"""
from __future__ import annotations

import asyncio
import os
from contextlib import suppress
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from ...errors import PayloadTooLarge, UpstreamNotFound, UpstreamUnavailable, ValidationError
from ..shared.atomic_file import write_bytes_atomic
from .metadata_edit_service import MetadataEditService
from ..shared.model_locks import ModelLocks
from ..library.model_records import ModelType
from ..library.model_library import ModelLibrary
from .mutation_records import PreviewResult
from ..shared.preview_encoding import MAX_PREVIEW_EDGE, encode_webp, sniff_preview
from ..shared.settings_manager import SettingsManager
from ..shared.sidecar_store import PREVIEW_SUFFIXES

MAX_PREVIEW_BYTES = 64 * 1024 * 1024
_MAX_REDIRECTS = 3
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=20)


class PreviewAssetService:
    """Writes a model's preview (one file, old ones removed) and returns its cache-busted URL."""

    def __init__(
        self,
        *,
        library: ModelLibrary,
        locks: ModelLocks,
        metadata: MetadataEditService,
        settings: SettingsManager,
        max_bytes: int = MAX_PREVIEW_BYTES,
        max_edge: int = MAX_PREVIEW_EDGE,
    ) -> None:
        self._library = library
        self._locks = locks
        self._metadata = metadata
        self._settings = settings
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
        if not isinstance(url, str) or not url.strip():
            raise ValidationError("'image_url' is required")
        if len(url) > 4096 or "\x00" in url or not url.isprintable():
            raise ValidationError("'image_url' is not a valid URL")
        try:
            url.encode("utf-8")
        except UnicodeError:
            raise ValidationError("'image_url' is not a valid URL") from None
        try:
            parts = urlsplit(url.strip())
            host = (parts.hostname or "").lower()
        except ValueError:
            raise ValidationError("'image_url' is not a valid URL") from None
        if parts.scheme not in ("https", "http") or not host:
            raise ValidationError("'image_url' must be an http(s) URL")
        allowed = {h.lower() for h in self._settings.get("preview_url_hosts")}
        if host not in allowed:
            raise ValidationError(
                f"previews are fetched only from {', '.join(sorted(allowed)) or 'no host'}; not from '{host[:100]}'"
            )
        return url.strip()

    async def set_preview_from_url(
        self, model_type: ModelType, path: str, url: object, *, nsfw_level: int | None = None
    ) -> PreviewResult:
        """Fetch an image/video from an allowed host and make it the preview.

        Raises ``ValidationError`` (host not allowed, content not a preview),
        ``PayloadTooLarge``, ``UpstreamNotFound``/``UpstreamUnavailable``, ``ModelNotFound``.
        """
        checked = self.check_url(url)
        self._library[model_type].require(path)
        data = await self._fetch(checked)
        return await self.replace_preview(model_type, path, data, nsfw_level=nsfw_level)

    async def _fetch(self, url: str) -> bytes:
        try:
            async with aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session:
                for _ in range(_MAX_REDIRECTS + 1):
                    async with session.get(url, allow_redirects=False) as resp:
                        if resp.status in (301, 302, 303, 307, 308):
                            location = resp.headers.get("Location", "")
                            url = self.check_url(urljoin(url, location))  # every hop stays on allowed hosts
                            continue
                        if resp.status == 404:
                            raise UpstreamNotFound(f"no image at '{url[:200]}'")
                        if resp.status != 200:
                            raise UpstreamUnavailable(f"the image host answered {resp.status} for '{url[:200]}'")
                        if (resp.content_length or 0) > self.max_bytes:
                            raise PayloadTooLarge(f"the image is larger than {self.max_bytes // (1024 * 1024)} MiB")
                        chunks: list[bytes] = []
                        total = 0
                        async for chunk in resp.content.iter_chunked(256 * 1024):
                            total += len(chunk)
                            if total > self.max_bytes:
                                raise PayloadTooLarge(f"the image is larger than {self.max_bytes // (1024 * 1024)} MiB")
                            chunks.append(chunk)
                        return b"".join(chunks)
                raise UpstreamUnavailable(f"too many redirects for '{url[:200]}'")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamUnavailable(f"could not fetch '{url[:200]}': {exc.__class__.__name__}") from exc
        except ValueError as exc:  # yarl refuses what urlsplit let through
            raise ValidationError(f"'image_url' is not a valid URL: {exc.__class__.__name__}") from exc


def _write_preview(model_path: str, target: str, payload: bytes) -> None:
    write_bytes_atomic(target, payload)
    stem = os.path.splitext(model_path)[0]
    for suffix in PREVIEW_SUFFIXES:
        old = stem + suffix
        if old != target:
            with suppress(OSError):  # gone already, or not a file: it cannot shadow ours
                os.unlink(old)
