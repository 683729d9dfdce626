"""Records of library mutations: the partial metadata update, tag rules and per-file outcomes.

Owns the wire reader of save-metadata (the editable-field allow-list and its type checks)
and the typed results the mutation services return; it must not touch files or the index.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ...errors import ValidationError
from ..library.model_records import ModelEntry
from ..shared.nsfw_levels import MAX_NSFW_LEVEL


class _Unset:
    """The value of a ``MetadataChanges`` field the request did not name."""

    _instance: "_Unset | None" = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

MAX_TAGS = 200
MAX_TAG_LENGTH = 100
MAX_TRIGGER_WORDS = 200
MAX_TRIGGER_WORD_LENGTH = 500
MAX_NAME_LENGTH = 512
MAX_NOTES_LENGTH = 100_000
MAX_BASE_MODEL_LENGTH = 200
MAX_USAGE_TIPS_LENGTH = 4096
USAGE_TIP_KEYS = frozenset({"strength", "strength_min", "strength_max", "clip_strength", "clip_skip"})
# Keys a request may name that identify the model rather than edit it.
_ADDRESS_KEYS = frozenset({"file_path"})


def _check_utf8(value: str, name: str) -> None:
    # lone surrogates (undecodable bytes) cannot be written to a UTF-8 sidecar
    try:
        value.encode("utf-8")
    except UnicodeError:
        raise ValidationError(f"'{name}' is not valid UTF-8 text") from None


def normalize_tags(values: Any, *, name: str = "tags") -> tuple[str, ...]:
    """Tags trimmed, case-folded and unique, in first-seen order; ``ValidationError`` otherwise."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError(f"'{name}' must be a list of strings")
    out: list[str] = []
    for raw in values:
        tag = " ".join(raw.split()).casefold()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(f"tag '{tag[:40]}...' is longer than {MAX_TAG_LENGTH} characters")
        if "\x00" in tag:
            raise ValidationError("tags must not contain NUL bytes")
        _check_utf8(tag, name)
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValidationError(f"a model has at most {MAX_TAGS} tags")
    return tuple(out)


def _text(value: Any, name: str, max_len: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string")
    if "\x00" in value:
        raise ValidationError(f"'{name}' must not contain NUL bytes")
    if len(value) > max_len:
        raise ValidationError(f"'{name}' is longer than {max_len} characters")
    _check_utf8(value, name)
    if not allow_empty and not value.strip():
        raise ValidationError(f"'{name}' must not be empty")
    return value


def _trigger_words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("'trigger_words' must be a list of strings")
    out: list[str] = []
    for raw in value:
        word = raw.strip()
        if not word:
            continue
        _text(word, "trigger_words", MAX_TRIGGER_WORD_LENGTH)
        if word not in out:
            out.append(word)
    if len(out) > MAX_TRIGGER_WORDS:
        raise ValidationError(f"a model has at most {MAX_TRIGGER_WORDS} trigger words")
    return tuple(out)


def _usage_tips(value: Any) -> str:
    """Stored as the de-facto format does: a JSON object text such as '{"strength": 0.8}'."""
    if isinstance(value, str):
        _text(value, "usage_tips", MAX_USAGE_TIPS_LENGTH)
        if not value.strip():
            return ""
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError("'usage_tips' must be a JSON object of numbers") from None
    if not isinstance(value, dict):
        raise ValidationError("'usage_tips' must be an object such as {\"strength\": 0.8}")
    clean: dict[str, float | int] = {}
    for key, number in value.items():
        if key not in USAGE_TIP_KEYS:
            raise ValidationError(f"unknown usage tip '{str(key)[:40]}' (known: {', '.join(sorted(USAGE_TIP_KEYS))})")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ValidationError(f"usage tip '{key}' must be a number")
        clean[key] = number
    return json.dumps(clean) if clean else ""


def _nsfw_level(value: Any, name: str = "preview_nsfw_level") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NSFW_LEVEL:
        raise ValidationError(f"'{name}' must be a whole number from 0 to {MAX_NSFW_LEVEL}")
    return value


def parse_nsfw_level(value: Any, name: str = "nsfw_level") -> int:
    """An NSFW level from JSON or a form field (digits); ``ValidationError`` otherwise."""
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValidationError(f"'{name}' must be a whole number from 0 to {MAX_NSFW_LEVEL}")
        value = int(value.strip())
    return _nsfw_level(value, name)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"'{name}' must be true or false")
    return value


_READERS = {
    "model_name": lambda v: _text(v, "model_name", MAX_NAME_LENGTH, allow_empty=False).strip(),
    "notes": lambda v: _text(v, "notes", MAX_NOTES_LENGTH),
    "tags": normalize_tags,
    "base_model": lambda v: _text(v, "base_model", MAX_BASE_MODEL_LENGTH).strip(),
    "favorite": lambda v: _bool(v, "favorite"),
    "usage_tips": _usage_tips,
    "trigger_words": _trigger_words,
    "preview_nsfw_level": _nsfw_level,
    "skip_metadata_refresh": lambda v: _bool(v, "skip_metadata_refresh"),
}


@dataclass(slots=True, frozen=True, kw_only=True)
class MetadataChanges:
    """A partial, validated edit of a model's sidecar; unnamed fields stay ``UNSET``."""

    model_name: Any = UNSET
    notes: Any = UNSET
    tags: Any = UNSET
    base_model: Any = UNSET
    favorite: Any = UNSET
    usage_tips: Any = UNSET
    trigger_words: Any = UNSET
    preview_nsfw_level: Any = UNSET
    skip_metadata_refresh: Any = UNSET

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MetadataChanges":
        """Read the editable fields of a save-metadata body.

        Raises ``ValidationError`` for an unknown or protected key (``sha256``, ...), a
        value of the wrong type, or a body that edits nothing.
        """
        unknown = sorted(k for k in data if k not in _READERS and k not in _ADDRESS_KEYS)
        if unknown:
            shown = ", ".join(f"'{k[:40]}'" for k in unknown[:5])
            raise ValidationError(
                f"not editable: {shown} (editable: {', '.join(sorted(_READERS))})",
                extra={"fields": unknown[:20]},
            )
        values = {k: _READERS[k](v) for k, v in data.items() if k in _READERS}
        if not values:
            raise ValidationError("no editable field given")
        return cls(**values)

    def named(self) -> dict[str, Any]:
        """The fields the request named, as sidecar values (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is UNSET:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(slots=True, frozen=True, kw_only=True)
class FileOutcome:
    """What happened to one model of a (bulk) mutation."""

    file_path: str
    success: bool
    new_path: str = ""
    error: str = ""
    code: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"file_path": self.file_path, "success": self.success}
        if self.new_path:
            body["new_file_path"] = self.new_path
        if not self.success:
            body["error"] = self.error
            body["code"] = self.code
        return body


@dataclass(slots=True, frozen=True, kw_only=True)
class DeleteReport:
    """A delete batch: its undo id (empty when nothing was deleted) and per-model outcomes."""

    batch_id: str
    outcomes: tuple[FileOutcome, ...]

    @property
    def deleted(self) -> int:
        return sum(1 for o in self.outcomes if o.success)


@dataclass(slots=True, frozen=True, kw_only=True)
class UndoReport:
    batch_id: str
    outcomes: tuple[FileOutcome, ...]
    remaining: int = 0  # models left in the trash (conflicts), still undoable


@dataclass(slots=True, frozen=True, kw_only=True)
class RenameResult:
    old_path: str
    entry: ModelEntry


@dataclass(slots=True, frozen=True, kw_only=True)
class PreviewResult:
    entry: ModelEntry
    preview_path: str
    preview_url: str


@dataclass(slots=True, frozen=True, kw_only=True)
class HashCheck:
    """One file of a duplicate verification: its stored and actual hash."""

    file_path: str
    stored_sha256: str
    actual_sha256: str = ""
    error: str = ""

    @property
    def fixed(self) -> bool:
        return bool(self.actual_sha256) and self.actual_sha256 != self.stored_sha256


@dataclass(slots=True, frozen=True, kw_only=True)
class DuplicateVerification:
    checks: tuple[HashCheck, ...]
    groups: dict[str, list[str]] = field(default_factory=dict)  # actual sha256 -> paths (2+)
