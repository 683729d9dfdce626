"""A CivitAI preview image or video: fetched through the one remote fetcher and stored
beside a model.

Owns what counts as a usable preview (an image or a video, within its size limit) and the
re-encoding of images to ``<stem>.webp`` (videos are kept as ``<stem>.mp4`` / ``.webm``);
it must not touch sidecars or the index, nor fetch by itself.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ...errors import LibraryError, ValidationError
from ..shared.atomic_file import write_bytes_atomic
from ..shared.preview_encoding import encode_webp
from ..shared.remote_image_fetcher import RemoteImageFetcher

_log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_VIDEO_BYTES = 60 * 1024 * 1024
MAX_PREVIEW_SIDE = 1024  # long side of a stored preview image, in pixels


class PreviewUnavailable(Exception):
    """The preview could not be fetched or decoded (the refresh goes on without one)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class PreviewMedia:
    body: bytes
    is_video: bool
    video_suffix: str = ".mp4"  # ".webm" when the server says video/webm


class CivitaiPreviewFetcher:
    """CivitAI's preview images and videos, through the one remote fetcher: from the allowed
    hosts only, as an image or a video, within their size limits. Raises ``PreviewUnavailable``
    for anything that goes wrong (the refresh then goes on without a preview)."""

    def __init__(self, *, fetcher: RemoteImageFetcher, allowed_hosts: Callable[[], Iterable[str]]) -> None:
        self._fetcher = fetcher
        self._allowed_hosts = allowed_hosts

    def is_allowed(self, url: str) -> bool:
        try:
            self._fetcher.check_url(url, self._allowed_hosts())
        except ValidationError:
            return False
        return True

    async def fetch(self, url: str, *, expect_video: bool = False) -> PreviewMedia:
        """The media at ``url``; raises ``PreviewUnavailable`` (host not allowed, HTTP error, too big)."""

        def limit(content_type: str) -> int:
            # the module's limits, read at call time (tests lower them)
            return MAX_VIDEO_BYTES if _is_video(content_type, expect_video) else MAX_IMAGE_BYTES

        try:
            media = await self._fetcher.fetch(url, allowed_hosts=self._allowed_hosts(), max_bytes=limit)
        except LibraryError as exc:
            raise PreviewUnavailable(f"preview not fetched: {exc.message}") from None
        ctype = media.content_type
        is_video = _is_video(ctype, expect_video)
        if not is_video and not ctype.startswith("image/"):
            raise PreviewUnavailable(f"preview is not an image or video ({ctype or 'no type'})")
        return PreviewMedia(body=media.body, is_video=is_video, video_suffix=".webm" if ctype == "video/webm" else ".mp4")


def _is_video(content_type: str, expect_video: bool) -> bool:
    return content_type.startswith("video/") or (expect_video and not content_type.startswith("image/"))


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
