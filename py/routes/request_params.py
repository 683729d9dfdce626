"""Parsing request input into typed values and request records, raising ``ValidationError``.

The one input vocabulary: query strings, path parts and JSON bodies are read here, so every
handler rejects bad input the same way (400 with a message naming the parameter), never a
500, and services receive typed values only.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from aiohttp import web

from ..errors import UnsupportedMediaType, ValidationError
from ..services.downloads.download_records import FILE_PARAM_KEYS, DownloadRequest
from ..services.downloads.download_service import check_download_id
from ..services.downloads.huggingface_refs import huggingface_file
from ..services.shared.model_types import ModelType

MAX_JSON_BYTES = 8 * 1024 * 1024  # 10,000 paths of a bulk request fit many times over
MAX_JSON_DEPTH = 64  # our bodies are two or three levels deep; deeper is an attack
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# -- values, from JSON or from text -----------------------------------------------------


def parse_int(raw: Any, name: str) -> int:
    """A whole number given as JSON (``5``) or text (``"5"``); ``ValidationError`` otherwise."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValidationError(f"'{name}' must be a whole number")
    if isinstance(raw, int):
        return raw
    text = raw.strip()
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise ValidationError(f"'{name}' must be a whole number, got '{raw[:50]}'")
    return int(text)


def parse_positive_int(raw: Any, name: str) -> int:
    value = parse_int(raw, name)
    if value <= 0:
        raise ValidationError(f"'{name}' must be a positive whole number, got {value}")
    return value


def optional_positive_int(raw: Any, name: str) -> int | None:
    return None if raw is None or raw == "" else parse_positive_int(raw, name)


def parse_bool(raw: Any, name: str, default: bool) -> bool:
    """``true``/``false`` as JSON or as text (``1``, ``yes``, ``off``, ...); absent → ``default``."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValidationError(f"'{name}' must be true or false, got '{str(raw)[:50]}'")


def parse_str(raw: Any, name: str, *, max_len: int = 4096) -> str:
    """Text (absent → ''); not text, too long or with a NUL byte → ``ValidationError``."""
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > max_len or "\x00" in raw:
        raise ValidationError(f"'{name}' must be a string of at most {max_len} characters")
    return raw


def path_positive_int(request: web.Request, name: str) -> int:
    """A positive id from the URL path (``/civitai/versions/{model_id}``)."""
    return parse_positive_int(request.match_info.get(name, ""), name)


# -- query strings ----------------------------------------------------------------------


def query_int(query: Mapping[str, str], name: str, default: int, *, minimum: int = 1, maximum: int | None = None, clamp_max: bool = False) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = parse_int(raw, name)
    if value < minimum:
        raise ValidationError(f"'{name}' must be at least {minimum}")
    if maximum is not None and value > maximum:
        if clamp_max:
            return maximum
        raise ValidationError(f"'{name}' must be at most {maximum}")
    return value


def query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    return parse_bool(query.get(name), name, default)


def query_str(query: Mapping[str, str], name: str, *, required: bool = False, max_len: int = 4096) -> str:
    raw = query.get(name, "")
    if required and not raw:
        raise ValidationError(f"'{name}' is required")
    if len(raw) > max_len:
        raise ValidationError(f"'{name}' is too long")
    if "\x00" in raw:
        raise ValidationError(f"'{name}' must not contain NUL bytes")
    return raw


def query_list(request: web.Request, name: str, *, max_items: int = 200) -> tuple[str, ...]:
    values: list[str] = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            part = part.strip()
            if part and part not in values:
                values.append(part)
    if len(values) > max_items:
        raise ValidationError(f"too many values for '{name}'")
    return tuple(values)


def is_json_type(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type (what a form or a ``text/plain`` body is not)."""
    return content_type == "application/json" or content_type.endswith("+json")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (read no further); ``ValidationError`` beyond."""
    if request.content_length is not None and request.content_length > limit:
        raise ValidationError(f"request body too large (at most {limit // (1024 * 1024)} MiB)")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise ValidationError(f"request body too large (at most {limit // (1024 * 1024)} MiB)")
            chunks.append(chunk)
    except web.HTTPRequestEntityTooLarge:
        raise ValidationError("request body too large") from None
    return b"".join(chunks)


def _check_depth(data: Any, limit: int) -> None:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise ValidationError(f"request body is nested more than {limit} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


async def read_json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; anything else is a 400.

    A body must be sent as JSON (``Content-Type: application/json``): a ``text/plain`` or
    form body is what a page of another site can send without asking, so it is a 415.
    """
    raw = await read_body(request, MAX_JSON_BYTES)
    if not raw.strip():
        if allow_empty:
            return {}
        raise ValidationError("a JSON object body is required")
    if not is_json_type(request.content_type):
        raise UnsupportedMediaType(
            f"send the body as JSON (Content-Type: application/json), not '{request.content_type[:60]}'"
        )
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValidationError(f"request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    _check_depth(data, MAX_JSON_DEPTH)
    return data


def body_str(data: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 4096) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"'{name}' is required")
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string")
    if len(value) > max_len:
        raise ValidationError(f"'{name}' is too long")
    return value


def body_str_list(data: Mapping[str, Any], name: str, *, required: bool = True, max_items: int = 10_000) -> list[str]:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationError(f"'{name}' is required")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"'{name}' must be a list of strings")
    if required and not value:
        raise ValidationError(f"'{name}' must not be empty")
    if len(value) > max_items:
        raise ValidationError(f"'{name}' has more than {max_items} items")
    return value


def body_bool(data: Mapping[str, Any], name: str, default: bool = False) -> bool:
    """A JSON ``true``/``false`` (text is refused in a JSON body)."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(f"'{name}' must be true or false")
    return value


# -- request records ----------------------------------------------------------------------


def _file_params(value: Any) -> dict[str, str]:
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError("'file_params' must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise ValidationError("'file_params' must be an object")
    out: dict[str, str] = {}
    for key, item in value.items():
        if key not in FILE_PARAM_KEYS:
            raise ValidationError(f"unknown file parameter '{str(key)[:30]}' (one of {', '.join(FILE_PARAM_KEYS)})")
        if item in (None, ""):
            continue
        if not isinstance(item, str) or len(item) > 64:
            raise ValidationError(f"file parameter '{key}' must be a short string")
        out[key] = item
    return out


def _model_type(value: Any) -> ModelType | None:
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    for model_type in ModelType:
        if text in (model_type.value, model_type.prefix):
            return model_type
    raise ValidationError("'model_type' must be one of " + ", ".join(t.value for t in ModelType))


def download_request(payload: Mapping[str, Any]) -> DownloadRequest:
    """A download request from a JSON body or a query string (the same fields, as text there).

    Raises ``ValidationError`` naming the field; nothing is looked up here.
    """
    model_id = optional_positive_int(payload.get("model_id"), "model_id")
    version_id = optional_positive_int(payload.get("model_version_id"), "model_version_id")
    hf = huggingface_file(payload)  # a HuggingFace file instead of a CivitAI version (issue 14)
    if hf is not None and (model_id is not None or version_id is not None):
        raise ValidationError("name a CivitAI model ('model_id', 'model_version_id') or a HuggingFace file, not both")
    if hf is None and model_id is None and version_id is None:
        raise ValidationError(
            "'model_id' or 'model_version_id' is required (or a HuggingFace file: 'hf_url', or 'hf_repo' + 'hf_path')"
        )
    model_root = parse_str(payload.get("model_root"), "model_root").strip()
    relative_path = parse_str(payload.get("relative_path"), "relative_path").strip().replace("\\", "/").strip("/")
    if relative_path and any(p in ("..", ".") or p.startswith(".") for p in relative_path.split("/")):
        raise ValidationError("'relative_path' must be a folder path inside the library root (no '..', no hidden folders)")
    raw_id = payload.get("download_id")
    return DownloadRequest(
        model_id=model_id,
        version_id=version_id,
        model_root=model_root,
        relative_path=relative_path,
        use_default_paths=parse_bool(payload.get("use_default_paths"), "use_default_paths", not model_root),
        file_params=_file_params(payload.get("file_params")),
        model_type=_model_type(payload.get("model_type")),
        download_id=check_download_id(raw_id) if raw_id not in (None, "") else None,
        huggingface=hf,
    )
