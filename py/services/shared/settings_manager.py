"""User settings: an allow-listed, validated JSON file written atomically, readable by its owner only.

Owns the schema (which keys exist, their types and defaults, which of them HTTP may change)
and the file; it must not know who reads a setting. Secrets are write-only: ``public_view``
never returns them. Settings that steer where credentials or server-side fetches go (API
bases, allowed image hosts, allowed names and origins) come from the file, the environment
or the command line only, never from an HTTP request.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ...errors import SettingNotWritable, ValidationError
from .atomic_file import write_json_atomic
from .model_types import TYPE_SPECS
from .nsfw_levels import NSFW_LEVEL_NAMES

_log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh-CN", "ja", "ko", "de", "fr", "es", "ru")
SECRET_KEYS = frozenset({"civitai_api_key", "huggingface_token"})


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("must be true or false")


def _str(max_len: int = 4096) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_len:
            raise ValueError(f"must be a string of at most {max_len} characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL bytes")
        return value

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return value

    return check


def _number(lo: float, hi: float, *, integer: bool = False, nullable: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        if integer and int(value) != value:
            raise ValueError("must be a whole number")
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return int(value) if integer else float(value)

    return check


def _str_list(max_items: int = 200, item: Callable[[Any], str] = _str(4096)) -> Callable[[Any], list[str]]:
    def check(value: Any) -> list[str]:
        if not isinstance(value, list) or len(value) > max_items:
            raise ValueError(f"must be a list of at most {max_items} strings")
        return [item(v) for v in value]

    return check


def _http_url(value: Any) -> str:
    text = _str(2048)(value)
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/")


def _url_or_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [_http_url(value)]
    urls = _str_list(10, _http_url)(value)
    if not urls:
        raise ValueError("must name at least one URL")
    return urls


def _host(value: Any) -> str:
    text = _str(255)(value).strip().lower()
    if not text or "/" in text or " " in text:
        raise ValueError("must be a host name")
    return text


def _origin(value: Any) -> str:
    text = _str(2048)(value).strip()
    if text == "*":
        return text
    parsed = urlparse(text)
    if not parsed.scheme or not parsed.netloc or parsed.path not in ("", "/"):
        raise ValueError("must be an origin such as http://mypc.lan:8188")
    return text.rstrip("/")


def _templates(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be an object of model type to template")
    out: dict[str, str] = {}
    for key, template in value.items():
        if key not in ("lora", "checkpoint", "embedding"):
            raise ValueError(f"unknown model type {key!r}")
        out[key] = _str(512)(template)
    return out


@dataclass(frozen=True, slots=True)
class SettingSpec:
    default: Any
    check: Callable[[Any], Any]
    http_writable: bool = True  # False: file, environment or command line only


SCHEMA: dict[str, SettingSpec] = {
    "civitai_api_key": SettingSpec("", _str(512)),
    # sent only to the HuggingFace hub's own origin (issue 14); write-only like the CivitAI key
    "huggingface_token": SettingSpec("", _str(512)),
    # where the API key goes: never from HTTP
    "civitai_api_base": SettingSpec(["https://civitai.com/api/v1"], _url_or_list, http_writable=False),
    "language": SettingSpec("en", _choice(LANGUAGES)),
    "blur_mature_content": SettingSpec(True, _bool),
    "mature_blur_level": SettingSpec("R", _choice(NSFW_LEVEL_NAMES)),
    "default_lora_strength": SettingSpec(1.0, _number(-10, 10)),
    "write_hash_sidecars": SettingSpec(False, _bool),
    "hash_max_mb_per_second": SettingSpec(None, _number(1, 100_000, nullable=True)),
    "lora_roots": SettingSpec([], _str_list()),
    "checkpoint_roots": SettingSpec([], _str_list()),
    "diffusion_model_roots": SettingSpec([], _str_list()),
    "embedding_roots": SettingSpec([], _str_list()),
    # standalone roots of the other types (vae_roots, controlnet_roots, ...; issue 14)
    **{spec.settings_key: SettingSpec([], _str_list()) for spec in TYPE_SPECS.values() if not spec.core},
    **{f"default_{t.value}_root": SettingSpec("", _str()) for t, spec in TYPE_SPECS.items() if not spec.core},
    "default_lora_root": SettingSpec("", _str()),
    "default_checkpoint_root": SettingSpec("", _str()),
    "default_embedding_root": SettingSpec("", _str()),
    "download_path_templates": SettingSpec(
        {"lora": "{base_model}/{first_tag}", "checkpoint": "{base_model}", "embedding": "{base_model}"},
        _templates,
    ),
    "download_concurrency": SettingSpec(3, _number(1, 8, integer=True)),
    "auto_organize_templates": SettingSpec(
        {"lora": "{base_model}/{first_tag}", "checkpoint": "{base_model}", "embedding": "{base_model}"},
        _templates,
    ),
    "priority_tags": SettingSpec(
        ["character", "style", "concept", "clothing", "poses", "background", "tool", "vehicle", "buildings", "objects", "animal"],
        _str_list(100, _str(64)),
    ),
    # where the server fetches images from, and who may talk to it: never from HTTP
    "preview_url_hosts": SettingSpec(
        ["image.civitai.com", "imagecache.civitai.com"], _str_list(50, _host), http_writable=False
    ),
    "allowed_hosts": SettingSpec([], _str_list(50, _host), http_writable=False),
    "allowed_origins": SettingSpec([], _str_list(50, _origin), http_writable=False),
    "show_only_sfw": SettingSpec(False, _bool),
    # update checks (issue 14): the background check, and whether only the same base model counts
    "update_check_interval": SettingSpec("daily", _choice(("daily", "off"))),
    "update_same_base_model": SettingSpec(True, _bool),
}


READ_ONLY_OVER_HTTP = tuple(key for key, spec in SCHEMA.items() if not spec.http_writable)
FILE_MODE = 0o600  # the file holds the CivitAI key
DIR_MODE = 0o700


def default_settings_path() -> Path:
    env = os.environ.get("LM_SETTINGS_FILE")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("comfyui-model-library", appauthor=False)) / "settings.json"


class SettingsManager:
    """Reads the settings file once, validates every change and writes it atomically.

    Raises ``ValidationError`` for unknown keys or bad values; writes the file.
    """

    def __init__(self, *, path: Path, overrides: dict[str, Any] | None = None) -> None:
        self.path = path
        self._values: dict[str, Any] = {}
        self._overrides = dict(overrides or {})
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            _log.warning("settings file %s unreadable (%s); using defaults", self.path, exc)
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        for key, value in raw.items():
            spec = SCHEMA.get(key)
            if spec is None:
                self._values[key] = value  # keep keys written by newer versions
                continue
            try:
                self._values[key] = spec.check(value)
            except ValueError as exc:
                _log.warning("setting %s ignored: %s", key, exc)

    def get(self, key: str) -> Any:
        if key in self._overrides:
            return self._overrides[key]
        if key in self._values:
            return self._values[key]
        spec = SCHEMA.get(key)
        if spec is None:
            raise KeyError(key)
        default = spec.default
        return list(default) if isinstance(default, list) else dict(default) if isinstance(default, dict) else default

    def public_view(self) -> dict[str, Any]:
        view = {key: self.get(key) for key in SCHEMA if key not in SECRET_KEYS}
        view["civitai_api_key_set"] = bool(self.get("civitai_api_key"))
        view["huggingface_token_set"] = bool(self.get("huggingface_token"))
        return view

    async def update_from_http(self, changes: Any) -> dict[str, Any]:
        """``update`` for a request: refuses keys only the file, environment or CLI may set.

        Raises ``SettingNotWritable`` (naming every such key, nothing written) and
        ``ValidationError``.
        """
        if isinstance(changes, dict):
            refused = sorted(k for k in changes if k in SCHEMA and not SCHEMA[k].http_writable)
            if refused:
                raise SettingNotWritable(
                    f"{', '.join(repr(k) for k in refused)} can be changed only in the settings file "
                    f"({self.path}), the environment or on the command line",
                    extra={"settings": refused},
                )
        return await self.update(changes)

    def validate(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict) or not changes:
            raise ValidationError("settings must be a non-empty JSON object")
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            spec = SCHEMA.get(key)
            if spec is None:
                raise ValidationError(f"unknown setting '{key}'")
            try:
                clean[key] = spec.check(value)
            except ValueError as exc:
                raise ValidationError(f"setting '{key}' {exc}") from exc
        return clean

    async def update(self, changes: Any) -> dict[str, Any]:
        """Validate and persist ``changes``; returns the public view.

        Raises ``ValidationError``; writes the settings file atomically.
        """
        clean = self.validate(changes)
        async with self._lock:
            merged = {**self._values, **clean}
            await asyncio.to_thread(self._write, merged)
            self._values = merged
        for listener in list(self._listeners):
            try:
                listener(clean)
            except Exception:  # a listener must never break a settings write
                _log.exception("settings listener failed")
        return self.public_view()

    def _write(self, values: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        write_json_atomic(self.path, values, mode=FILE_MODE)

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)
