"""The metadata a saved image carries: ComfyUI's own (``prompt``, ``workflow`` and any other
extra info, as core ``SaveImage`` writes it) plus A1111's ``parameters`` text.

PNG: text chunks (``parameters`` first, as A1111 writes it). WebP: EXIF, the way ComfyUI's WebP
nodes write their part (``prompt:`` in Model, ``workflow:`` in Make and the tags below it) and
A1111 its part (``UserComment``, UNICODE-prefixed UTF-16BE as piexif writes it).
PIL comes with ComfyUI; it is imported only when an image is saved.
"""
from __future__ import annotations

import json
from typing import Any

EXIF_MAKE, EXIF_MODEL, EXIF_IFD, EXIF_USER_COMMENT = 0x010F, 0x0110, 0x8769, 0x9286
UNICODE_PREFIX = b"UNICODE\x00"


def png_info(parameters: str, prompt: Any, extra_pnginfo: Any) -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if parameters:
        info.add_text("parameters", parameters)  # PIL writes iTXt when the text is not Latin-1
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def webp_exif(parameters: str, prompt: Any, extra_pnginfo: Any) -> Any:
    from PIL import Image

    exif = Image.Exif()
    if prompt is not None:
        exif[EXIF_MODEL] = "prompt:" + json.dumps(prompt)
    tag = EXIF_MAKE
    for key, value in (extra_pnginfo or {}).items():
        exif[tag] = f"{key}:{json.dumps(value)}"
        tag -= 1
    if parameters:
        exif.get_ifd(EXIF_IFD)[EXIF_USER_COMMENT] = UNICODE_PREFIX + parameters.encode("utf-16-be")
    return exif


def read_user_comment(raw: bytes) -> str:
    """The text of an EXIF ``UserComment`` (for tests and readers)."""
    if raw.startswith(UNICODE_PREFIX):
        body = raw[len(UNICODE_PREFIX):]
        return body.decode("utf-16-be", errors="replace")
    return raw[8:].decode("utf-8", errors="replace") if len(raw) >= 8 else ""
