"""Reads the JSON header of a ``.safetensors`` file and what trainers record in it.

Owns the bounded header read (never the tensor data) and the mapping of trainer metadata
(kohya ``ss_*`` keys, ``modelspec.*``) to CivitAI's base-model names and the AutoV3 hash;
it must not write files or call the network.
"""
from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..shared import fast_json

__all__ = [
    "HeaderError",
    "SafetensorsHeader",
    "autov3_from_metadata",
    "guess_base_model",
    "read_safetensors_header",
    "trigger_words_from_metadata",
]

_LENGTH_BYTES = 8
_DEFAULT_MAX_HEADER = 64 * 1024 * 1024
_HEX = frozenset(string.hexdigits.lower())


class HeaderError(Exception):
    """The file is not a well-formed safetensors file (the message says why)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class SafetensorsHeader:
    metadata: dict[str, str] = field(default_factory=dict)  # "__metadata__", {} when absent
    data_offset: int  # 8 + header length: where tensor bytes start
    tensor_count: int


def read_safetensors_header(
    path: str | os.PathLike[str], *, max_header_bytes: int = _DEFAULT_MAX_HEADER
) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path``.

    Reads the 8-byte little-endian length, checks it against ``max_header_bytes`` and the
    file size, then reads exactly that many bytes. Also checks every tensor's data offsets
    lie inside the file, so a truncated download is caught here. Non-string metadata values
    (written by a few non-conforming tools) are kept as their JSON text.

    Raises ``HeaderError`` for anything malformed; ``OSError`` (missing, unreadable) passes
    through. Blocking: call through ``asyncio.to_thread`` from async code.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = _read_exactly(fh, _LENGTH_BYTES)
        if len(prefix) < _LENGTH_BYTES:
            raise HeaderError(f"file is {size} bytes, too short for a safetensors header")
        length = int.from_bytes(prefix, "little")
        if length < 2:
            raise HeaderError(f"header length {length} is too small for a JSON object")
        if length > max_header_bytes:
            raise HeaderError(f"header length {length} exceeds the limit of {max_header_bytes} bytes")
        if _LENGTH_BYTES + length > size:
            raise HeaderError(f"header length {length} runs past the end of the {size}-byte file")
        raw = _read_exactly(fh, length)
    if len(raw) < length:  # the file shrank between fstat and read
        raise HeaderError(f"header length {length} runs past the end of the file")
    header = _parse(raw)
    data_offset = _LENGTH_BYTES + length
    metadata = _metadata(header.pop("__metadata__", None))
    _check_tensors(header, data_size=size - data_offset)
    return SafetensorsHeader(metadata=metadata, data_offset=data_offset, tensor_count=len(header))


def autov3_from_metadata(metadata: Mapping[str, str]) -> str:
    """CivitAI's AutoV3 from the ``sshs_model_hash`` kohya stores, or '' when absent or not hex.

    AutoV3 is the first 12 hex digits of the SHA-256 of the tensor data (header excluded),
    which is exactly what ``sshs_model_hash`` holds.
    """
    value = metadata.get("sshs_model_hash")
    if not isinstance(value, str):
        return ""
    digest = value.strip().lower()
    if digest.startswith("0x"):
        digest = digest[2:]
    if len(digest) < 12 or not _HEX.issuperset(digest):
        return ""
    return digest[:12]


def trigger_words_from_metadata(metadata: Mapping[str, str]) -> list[str]:
    """Trigger words recorded in the header: none, on purpose, for now.

    Training tags (``ss_tag_frequency``) are captions, not trigger words; guessing from
    them would put wrong words in users' prompts. CivitAI's ``trainedWords`` is the source.
    """
    return []


def guess_base_model(metadata: Mapping[str, str]) -> str:
    """CivitAI's base-model name ("SD 1.5", "SDXL 1.0", "Pony", "Flux.1 D", ...) or ''.

    Looks at ``modelspec.architecture`` first (the most specific), then kohya's
    ``ss_base_model_version``, then the legacy ``ss_v2`` flag, then the name of the model
    trained on (``ss_sd_model_name``, e.g. 'sd_xl_base_1.0'); an SDXL family result is
    refined to Pony / Illustrious / NoobAI when ``ss_sd_model_name`` (the model trained
    on) names one. Flux LoRAs that do not say which Flux are reported as "Flux.1 D", the
    variant nearly all of them are trained on.
    """
    base = ""
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            base = _family(_tokens(value.split("/")[0]))
            if base:
                break
    model_name = _tokens(str(metadata.get("ss_sd_model_name", "")))
    if not base and str(metadata.get("ss_v2", "")).strip().lower() == "true":
        base = _sd2(model_name)
    if not base:
        base = _family(model_name)
    if base == "SDXL 1.0":
        base = _sdxl_derivative(model_name) or base
    return base


def _read_exactly(fh: Any, count: int) -> bytes:
    chunks: list[bytes] = []
    remaining = count
    while remaining > 0:
        chunk = fh.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        header = fast_json.loads_strict(raw)
    except ValueError:
        header = None  # decided below by the standard library, with its messages
    if isinstance(header, dict):
        return header
    try:
        header = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HeaderError(f"header is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise HeaderError(f"header is not valid JSON ({exc.msg} at byte {exc.pos})") from exc
    except RecursionError as exc:
        raise HeaderError("header JSON is nested too deeply") from exc
    if not isinstance(header, dict):
        raise HeaderError(f"header is a JSON {type(header).__name__}, not an object")
    return header


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HeaderError(f"__metadata__ is a JSON {type(value).__name__}, not an object")
    return {
        key: item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        for key, item in value.items()
    }


def _check_tensors(tensors: dict[str, Any], *, data_size: int) -> None:
    for name, info in tensors.items():
        if not isinstance(info, dict):
            raise HeaderError(f"tensor {name!r} is described by a JSON {type(info).__name__}, not an object")
        offsets = info.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise HeaderError(f"tensor {name!r} has invalid data_offsets {offsets!r}")
        if offsets[1] > data_size:
            raise HeaderError(
                f"tensor {name!r} ends at byte {offsets[1]} of a {data_size}-byte data section (truncated file?)"
            )


# --- base model -----------------------------------------------------------------------

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def _tokens(value: str) -> str:
    """Lower-case, every run of separators as one '-', padded with '-' for whole-token tests."""
    return "-" + _SEPARATORS.sub("-", value.lower()).strip("-") + "-"


def _family(t: str) -> str:
    # t is e.g. '-stable-diffusion-xl-v1-base-', '-sdxl-base-v1-0-', '-flux-1-dev-', '-sd-v1-'.
    if "-chroma-" in t:
        return "Chroma"
    if "-flux" in t:
        if "schnell" in t:
            return "Flux.1 S"
        if "kontext" in t:
            return "Flux.1 Kontext"
        if "krea" in t:
            return "Flux.1 Krea"
        return "Flux.1 D"
    if re.search(r"-(sd|stable-diffusion)-?v?3-?5|-sd35-", t):
        if "large-turbo" in t or "turbo" in t:
            return "SD 3.5 Large Turbo"
        if "large" in t:
            return "SD 3.5 Large"
        if "medium" in t:
            return "SD 3.5 Medium"
        return "SD 3.5"
    if re.search(r"-(sd|stable-diffusion)-?v?3-", t):
        return "SD 3"
    if re.search(r"-(sdxl|sd-xl|stable-diffusion-xl)", t):
        if "turbo" in t:
            return "SDXL Turbo"
        if "lightning" in t:
            return "SDXL Lightning"
        return "SDXL 1.0"
    if re.search(r"-(sd|stable-diffusion)-?v?2", t):
        return _sd2(t)
    if re.search(r"-(sd|stable-diffusion)-?v?1", t):
        return "SD 1.4" if re.search(r"-v?1-4-", t) else "SD 1.5"
    if "-stable-cascade-" in t:
        return "Stable Cascade"
    if "-pony-" in t:
        return "Pony"
    if "-illustrious" in t:
        return "Illustrious"
    if "-noobai-" in t:
        return "NoobAI"
    if "-hunyuan-video-" in t:
        return "Hunyuan Video"
    if "-hunyuan-dit-" in t:
        return "Hunyuan 1"
    if "-lumina" in t:
        return "Lumina"
    if "-auraflow-" in t:
        return "AuraFlow"
    if "-kolors-" in t:
        return "Kolors"
    if "-hidream" in t:
        return "HiDream"
    return ""


def _sd2(t: str) -> str:
    return "SD 2.0" if re.search(r"-v?2-0-", t) else "SD 2.1"


def _sdxl_derivative(model_name: str) -> str:
    if "pony" in model_name:
        return "Pony"
    if "noob" in model_name:
        return "NoobAI"
    if "illustrious" in model_name:
        return "Illustrious"
    return ""
