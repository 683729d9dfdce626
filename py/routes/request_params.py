"""Parsing request input into typed values, raising ``ValidationError`` on bad input.

One place for query-string and JSON-body parsing so every handler rejects bad input the
same way (400 with a message naming the parameter), never a 500.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from aiohttp import web

from ..errors import UnsupportedMediaType, ValidationError

MAX_JSON_BYTES = 8 * 1024 * 1024  # 10,000 paths of a bulk request fit many times over
MAX_JSON_DEPTH = 64  # our bodies are two or three levels deep; deeper is an attack
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def query_int(query: Mapping[str, str], name: str, default: int, *, minimum: int = 1, maximum: int | None = None, clamp_max: bool = False) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"'{name}' must be a whole number, got '{raw[:50]}'") from None
    if value < minimum:
        raise ValidationError(f"'{name}' must be at least {minimum}")
    if maximum is not None and value > maximum:
        if clamp_max:
            return maximum
        raise ValidationError(f"'{name}' must be at most {maximum}")
    return value


def query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValidationError(f"'{name}' must be true or false, got '{raw[:50]}'")


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
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValidationError(f"'{name}' must be true or false")
    return value
