"""Preview image bytes: recognising a preview by its magic bytes and re-encoding images to
a bounded WebP with Pillow.

Shared by uploads, previews from an allowed URL and CivitAI previews, so every stored
preview passes the same checks (pixel budget, frame cap). Pure and blocking: no files,
no network; call it through ``asyncio.to_thread``.
"""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ...errors import ValidationError

if TYPE_CHECKING:  # Pillow is imported when an image is first encoded: 5 MiB a server may never need
    from PIL import Image

MAX_PREVIEW_EDGE = 1280  # pixels, longest side of a re-encoded image
MAX_SOURCE_PIXELS = 64_000_000  # refuse decompression bombs before decoding (all frames)
MAX_FRAMES = 300  # an animated preview keeps at most this many frames
WEBP_QUALITY = 85


def sniff_preview(data: bytes) -> str:
    """The kind of a preview from its first bytes: png, jpeg, gif, webp, mp4 or webm.

    Raises ``ValidationError`` for anything else.
    """
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "webm"
    raise ValidationError("the preview is not a PNG, JPEG, GIF, WebP, MP4 or WebM file")


def encode_webp(data: bytes, max_edge: int = MAX_PREVIEW_EDGE) -> bytes:
    """Re-encode an image as WebP no larger than ``max_edge`` on its longest side.

    Animated GIF/WebP stay animated (at most ``MAX_FRAMES`` frames; the pixel budget
    counts every frame). Raises ``ValidationError`` for an image Pillow cannot decode or
    one with too many pixels. Blocking.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            frames = min(getattr(img, "n_frames", 1), MAX_FRAMES)
            if width * height * frames > MAX_SOURCE_PIXELS:
                raise ValidationError(f"the image is too large ({width}x{height} pixels, {frames} frames)")
            if frames > 1:
                return _encode_animation(img, frames, max_edge)
            img.seek(0)
            img.load()
            out = io.BytesIO()
            _bounded(ImageOps.exif_transpose(img), max_edge).save(out, "WEBP", quality=WEBP_QUALITY, method=4)
            return out.getvalue()
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValidationError(f"the image cannot be decoded: {exc.__class__.__name__}") from exc


def _bounded(frame: Image.Image, max_edge: int) -> Image.Image:
    frame = frame.copy()
    frame.thumbnail((max_edge, max_edge))
    has_alpha = frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info)
    return frame.convert("RGBA" if has_alpha else "RGB")


def _encode_animation(img: Image.Image, frames: int, max_edge: int) -> bytes:
    converted: list[Image.Image] = []
    durations: list[int] = []
    for index in range(frames):
        img.seek(index)
        durations.append(int(img.info.get("duration") or 100))
        converted.append(_bounded(img.convert("RGBA"), max_edge))
    out = io.BytesIO()
    converted[0].save(
        out, "WEBP", save_all=True, append_images=converted[1:], duration=durations,
        loop=int(img.info.get("loop", 0)), quality=WEBP_QUALITY, method=4,
    )
    return out.getvalue()
