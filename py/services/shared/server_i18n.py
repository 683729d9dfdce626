"""Translations for server-rendered pages, read from ``locales/<lang>/library.json``.

Owns loading, merging over English and dotted-key lookup; the browser gets the same
messages through ``/api/lm/i18n`` so both sides use one set of files.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

FALLBACK = "en"
MESSAGES_FILE = "library.json"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ServerI18n:
    """Messages per language, loaded once at start-up."""

    def __init__(self, *, locales_dir: Path) -> None:
        self._messages: dict[str, dict[str, Any]] = {}
        raw: dict[str, dict[str, Any]] = {}
        if locales_dir.is_dir():
            for folder in sorted(locales_dir.iterdir()):
                file = folder / MESSAGES_FILE
                if file.is_file():
                    try:
                        raw[folder.name] = json.loads(file.read_text(encoding="utf-8"))
                    except (OSError, ValueError) as exc:
                        _log.warning("locale file %s unreadable: %s", file, exc)
        english = raw.get(FALLBACK, {})
        for lang, messages in raw.items():
            self._messages[lang] = _merge(english, messages)
        self._messages.setdefault(FALLBACK, english)

    @property
    def languages(self) -> list[str]:
        return sorted(self._messages)

    def resolve_language(self, lang: str | None) -> str:
        if lang in self._messages:
            return lang  # type: ignore[return-value]
        if lang:
            base = lang.split("-")[0]
            for known in self._messages:
                if known.split("-")[0] == base:
                    return known
        return FALLBACK

    def messages(self, lang: str) -> dict[str, Any]:
        return self._messages[self.resolve_language(lang)]

    def translate(self, key: str, lang: str) -> str:
        node: Any = self.messages(lang)
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return key
            node = node[part]
        return node if isinstance(node, str) else key
