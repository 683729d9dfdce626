"""Downloads a CivitAI preview image or video and stores it beside a model.

Owns the host allow-list check (no server-side fetch of arbitrary URLs), the size limit,
manual redirect checks and the re-encoding of images to ``<stem>.webp`` (videos are kept as
``<stem>.mp4`` / ``.webm``); it must not touch sidecars or the index.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from ...errors import ValidationError
from ..shared.atomic_file import write_bytes_atomic
from ..shared.preview_encoding import encode_webp

_log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_VIDEO_BYTES = 60 * 1024 * 1024
MAX_PREVIEW_SIDE = 1024  # long side of a stored preview image, in pixels
_MAX_REDIRECTS = 3
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)


class PreviewUnavailable(Exception):
    """The preview could not be fetched or decoded (the refresh goes on without one)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class PreviewMedia:
    body: bytes
    is_video: bool
    video_suffix: str = ".mp4"  # ".webm" when the server says video/webm


class CivitaiPreviewFetcher:
    """Fetches preview media only from allowed hosts; one session, closed by ``close()``."""

    def __init__(self, *, allowed_hosts: Callable[[], Iterable[str]], user_agent: str = "comfyui-model-library/0.1") -> None:
        self._allowed_hosts = allowed_hosts
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def is_allowed(self, url: str) -> bool:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return False
        if parsed.scheme not in ("http", "https") or not parsed.host:
            return False
        host = parsed.host.lower()
        return any(host == allowed.lower() for allowed in self._allowed_hosts())

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=True, timeout=_TIMEOUT, headers={"User-Agent": self._user_agent})
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def fetch(self, url: str, *, expect_video: bool = False) -> PreviewMedia:
        """The media at ``url``; raises ``PreviewUnavailable`` (host not allowed, HTTP error, too big)."""
        current = URL(url)
        for _hop in range(_MAX_REDIRECTS + 1):
            if not self.is_allowed(str(current)):
                raise PreviewUnavailable(f"preview host {current.host!r} is not an allowed image host")
            try:
                async with self._get_session().get(current, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        current = current.join(URL(resp.headers["Location"]))
                        continue
                    if resp.status != 200:
                        raise PreviewUnavailable(f"preview answered HTTP {resp.status}")
                    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    is_video = ctype.startswith("video/") or (expect_video and not ctype.startswith("image/"))
                    if not is_video and not ctype.startswith("image/"):
                        raise PreviewUnavailable(f"preview is not an image or video ({ctype or 'no type'})")
                    limit = MAX_VIDEO_BYTES if is_video else MAX_IMAGE_BYTES
                    if resp.content_length is not None and resp.content_length > limit:
                        raise PreviewUnavailable(f"preview is larger than {limit // (1024 * 1024)} MiB")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.content.iter_chunked(256 * 1024):
                        size += len(chunk)
                        if size > limit:
                            raise PreviewUnavailable(f"preview is larger than {limit // (1024 * 1024)} MiB")
                        chunks.append(chunk)
                    suffix = ".webm" if ctype == "video/webm" else ".mp4"
                    return PreviewMedia(body=b"".join(chunks), is_video=is_video, video_suffix=suffix)
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                raise PreviewUnavailable(f"preview download failed: {type(exc).__name__}") from None
        raise PreviewUnavailable("too many redirects for the preview")


def store_preview(model_path: str, media: PreviewMedia) -> str:
    """Write the preview beside the model (``<stem>.webp`` / ``.mp4`` / ``.webm``); returns its path.

    Images are decoded (anything that is not a picture is refused) and re-encoded to WebP by
    the same encoder as uploads (``encode_webp``: pixel budget, animations kept), at most
    ``MAX_PREVIEW_SIDE`` pixels on the long side; a small still WebP is kept as is.
    Blocking (Pillow, disk): call through ``asyncio.to_thread``. Raises ``PreviewUnavailable``.
    """
    stem = os.path.splitext(model_path)[0]
    if media.is_video:
        target = stem + media.video_suffix
        write_bytes_atomic(target, media.body)
        return target
    from PIL import Image, UnidentifiedImageError

    target = stem + ".webp"
    try:
        with Image.open(io.BytesIO(media.body)) as image:
            keep = (
                image.format == "WEBP"
                and max(image.size) <= MAX_PREVIEW_SIDE
                and not getattr(image, "is_animated", False)
                and not image.info.get("exif")
            )
            if keep:
                image.load()  # decodes every pixel: a file that is not a picture fails here
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PreviewUnavailable(f"preview image cannot be decoded: {exc}") from None
    if keep:
        # Already a small still WebP without EXIF: keep the bytes, skip a lossy re-encode.
        write_bytes_atomic(target, media.body)
        return target
    try:
        payload = encode_webp(media.body, MAX_PREVIEW_SIDE)
    except ValidationError as exc:
        raise PreviewUnavailable(f"preview image cannot be decoded: {exc}") from None
    write_bytes_atomic(target, payload)
    return target
