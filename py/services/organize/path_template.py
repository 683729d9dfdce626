"""Folder templates such as ``{base_model}/{first_tag}`` rendered into safe relative folders.

Owns the placeholder set, the per-model values (from a CivitAI version/model or a library
entry) and the sanitising of every value into one harmless folder name. It must not touch
the disk: callers join the result to a root and check it with the path guard.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ValidationError
from ..library.model_records import ModelEntry

PLACEHOLDERS = ("base_model", "first_tag", "author", "model_name")
MAX_SEGMENT_LENGTH = 64
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# Windows refuses these as file or folder names, with or without an extension.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
    | {"COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
)
_SEPARATORS_RE = re.compile(r"[/\\]+")
_FORBIDDEN_RE = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')


def sanitize_folder_name(value: Any, *, max_length: int = MAX_SEGMENT_LENGTH) -> str:
    """One safe folder name from any text, or '' when nothing usable is left.

    Separators split the text and ``.``/``..``/empty parts are dropped (``../../etc`` →
    ``etc``, ``a/b`` → ``a_b``); characters Windows forbids become ``_``; leading dots
    (hidden folders) and trailing dots/spaces go; reserved device names get a ``_`` after
    their stem (``CON`` → ``CON_``, ``LPT1.txt`` → ``LPT1_.txt``); the result is at most ``max_length`` characters.
    """
    if not isinstance(value, str):
        value = "" if value is None else str(value)
    text = unicodedata.normalize("NFC", value)
    parts = [p.strip() for p in _SEPARATORS_RE.split(text)]
    parts = [p for p in parts if p and p.strip(".") != ""]
    text = "_".join(parts)
    text = _FORBIDDEN_RE.sub("_", text)
    text = " ".join(text.split())
    text = text.lstrip(". ").rstrip(". ")
    stem, dot, rest = text.partition(".")
    if stem.strip().upper() in _RESERVED:
        text = f"{stem.strip()}_{dot}{rest}"  # 'LPT1.txt' is reserved too: mark the stem
    if len(text) > max_length:
        text = text[:max_length].rstrip(". ")
    return text


@dataclass(slots=True, frozen=True, kw_only=True)
class TemplateValues:
    """The placeholder values of one model, before sanitising."""

    base_model: str = ""
    first_tag: str = ""
    author: str = ""
    model_name: str = ""

    def get(self, name: str) -> str:
        return getattr(self, name)


def first_priority_tag(tags: Iterable[str], priority_tags: Sequence[str]) -> str:
    """The first tag of the priority list the model has; else its own first tag; else ''."""
    own = [t.strip() for t in tags if isinstance(t, str) and t.strip()]
    lowered = {t.casefold(): t for t in own}
    for wanted in priority_tags:
        if isinstance(wanted, str) and wanted.strip().casefold() in lowered:
            return lowered[wanted.strip().casefold()]
    return own[0] if own else ""


def values_for_entry(entry: ModelEntry, priority_tags: Sequence[str]) -> TemplateValues:
    return TemplateValues(
        base_model=entry.base_model,
        first_tag=first_priority_tag(entry.tags, priority_tags),
        author=entry.creator,
        model_name=entry.model_name or entry.file_name,
    )

def check_template(template: str) -> None:
    """Raise ``ValidationError`` for an unknown placeholder."""
    for name in _PLACEHOLDER_RE.findall(template):
        if name not in PLACEHOLDERS:
            raise ValidationError(f"unknown placeholder '{{{name}}}' in folder template '{template[:100]}'")


def render_template(template: str, values: TemplateValues) -> str:
    """The relative folder (``a/b``) for ``values``; '' when every segment is empty.

    Each ``/``-separated segment of the template is rendered, then sanitised as one
    folder name; a segment that ends up empty is left out (no ``SDXL//x``).
    """
    check_template(template)
    segments: list[str] = []
    for raw_segment in _SEPARATORS_RE.split(template or ""):
        rendered = _PLACEHOLDER_RE.sub(lambda m: sanitize_folder_name(values.get(m.group(1))), raw_segment)
        clean = sanitize_folder_name(rendered)
        if clean:
            segments.append(clean)
    return "/".join(segments)
