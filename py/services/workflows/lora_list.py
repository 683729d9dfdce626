"""The LoRA list of the loader and stacker nodes: its one documented input shape, the
``<lora:name:0.8>`` text syntax, and the ``LORA_STACK`` other node packs pass around.

Pure functions and records (no ComfyUI, no I/O), so scripts, mobile frontends and API-format
prompts can drive the nodes without the widget. The nodes (py/nodes/lora_list.py re-exports this
module) read it strictly; the workflow reader (workflow_references.py) reads it leniently with
``read_leniently``, since a list that does not read is the node's to report, not the reader's.

The ``loras`` input is a string holding either
- JSON: a list of entries, or ``{"entries": [...]}``, each entry
  ``{"name": "style/foo.safetensors", "strength": 0.8, "clip_strength": 0.6, "active": true,
  "sha256": "<64 hex>"}`` (only ``name`` is required: strengths default to 1.0, ``clip_strength``
  to ``strength``, ``active`` to true; ``sha256`` lets a renamed or moved file be found), or
- text: ``<lora:foo:0.8>`` / ``<lora:foo:0.8:0.6>``, one or more, anything else ignored.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "LoraEntry", "LoraListError", "entries_from_stack", "format_syntax", "parse_lora_list", "parse_lora_syntax",
    "read_leniently", "stack_of", "to_json", "LORA_SYNTAX",
]

LORA_SYNTAX = re.compile(r"<lora:([^:<>]+?)(?::(-?[\d.]+))?(?::(-?[\d.]+))?>", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ENTRIES = 200
MAX_STRENGTH = 100.0  # core LoraLoader's bound


class LoraListError(ValueError):
    """The ``loras`` input does not read; the message names the entry and the reason."""


@dataclass(slots=True, frozen=True, kw_only=True)
class LoraEntry:
    """One LoRA of a list: what ComfyUI calls it, how strong, whether it is on."""

    name: str  # ComfyUI's name: the path below a LoRA folder, with extension ('/' separated)
    strength: float = 1.0
    clip_strength: float = 1.0
    active: bool = True
    sha256: str = ""  # what it was when added: finds a renamed or moved file again

    def with_name(self, name: str) -> "LoraEntry":
        return replace(self, name=name)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LoraListError(f"{what} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise LoraListError(f"{what} must be a number, got {str(value)[:30]!r}") from None
    if not math.isfinite(number) or abs(number) > MAX_STRENGTH:
        raise LoraListError(f"{what} must be between -{MAX_STRENGTH:g} and {MAX_STRENGTH:g}")
    return number


def _entry(raw: Any, position: int) -> LoraEntry:
    where = f"LoRA entry {position + 1}"
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise LoraListError(f"{where} must be an object with a 'name'")
    name = raw.get("name") or raw.get("lora_name") or raw.get("path")
    if not isinstance(name, str) or not name.strip():
        raise LoraListError(f"{where} has no 'name'")
    strength = _number(raw.get("strength", raw.get("model_strength", 1.0)), f"{where} ('{name}') strength")
    clip = _number(raw.get("clip_strength", strength), f"{where} ('{name}') clip_strength")
    active = raw.get("active", raw.get("on", True))
    if not isinstance(active, bool):
        raise LoraListError(f"{where} ('{name}'): 'active' must be true or false")
    sha256 = str(raw.get("sha256") or "").strip().lower()
    return LoraEntry(
        name=name.strip().replace("\\", "/"), strength=strength, clip_strength=clip, active=active,
        sha256=sha256 if _SHA256.match(sha256) else "",
    )


def parse_lora_syntax(text: str) -> list[LoraEntry]:
    """Every ``<lora:name:strength[:clip_strength]>`` in ``text`` (a bare name is strength 1)."""
    entries = []
    for match in LORA_SYNTAX.finditer(text or ""):
        name, strength, clip = match.group(1).strip(), match.group(2), match.group(3)
        model = _number(strength, f"the strength of <lora:{name}>") if strength else 1.0
        entries.append(LoraEntry(
            name=name, strength=model,
            clip_strength=_number(clip, f"the clip strength of <lora:{name}>") if clip else model,
        ))
    return entries


def parse_lora_list(value: Any) -> list[LoraEntry]:
    """The ``loras`` input in either form (see the module docstring); empty means none.

    Raises ``LoraListError`` naming what does not read.
    """
    if value is None:
        return []
    if isinstance(value, (list, dict)):
        data: Any = value
    else:
        text = str(value).strip()
        if not text:
            return []
        if text[0] not in "[{":
            return parse_lora_syntax(text)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LoraListError(f"the LoRA list is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if isinstance(data, dict):
        data = data.get("entries", data.get("loras"))
    if not isinstance(data, list):
        raise LoraListError("the LoRA list must be a list of entries")
    if len(data) > MAX_ENTRIES:
        raise LoraListError(f"a LoRA list has at most {MAX_ENTRIES} entries")
    return [_entry(raw, i) for i, raw in enumerate(data)]


def read_leniently(value: Any, *, limit: int = 1000, max_text: int = 200_000) -> list[tuple[int, LoraEntry]]:
    """(position, entry) of every entry of a ``loras`` value that names a LoRA, in either form.

    Never raises: a value that does not read gives nothing, an entry without a name is
    skipped, and an entry whose numbers do not read keeps its name (strength 1). ``active``
    is false only when it is literally ``false``.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text[0] not in "[{":
            return [(i, _lenient_syntax(m)) for i, m in enumerate(LORA_SYNTAX.finditer(text[:max_text]))]
        try:
            value = json.loads(text)
        except ValueError:
            return []
    if isinstance(value, dict):
        value = value.get("entries", value.get("loras"))
    if not isinstance(value, list):
        return []
    out = []
    for i, raw in enumerate(value[:limit]):
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            continue
        name = raw.get("name") or raw.get("lora_name") or raw.get("path")
        if not isinstance(name, str) or not name.strip():
            continue
        active = raw.get("active", raw.get("on", True)) is not False
        try:
            entry = _entry({**raw, "active": active}, i)
        except LoraListError:
            sha256 = str(raw.get("sha256") or "").strip().lower()
            entry = LoraEntry(name=name.strip().replace("\\", "/"), active=active,
                              sha256=sha256 if _SHA256.match(sha256) else "")
        out.append((i, entry))
    return out


def _lenient_syntax(match: re.Match[str]) -> LoraEntry:
    try:
        return parse_lora_syntax(match.group(0))[0]
    except LoraListError:
        return LoraEntry(name=match.group(1).strip())


def to_json(entries: Iterable[LoraEntry]) -> str:
    """The widget's stored form (the inverse of ``parse_lora_list`` for JSON)."""
    return json.dumps({"entries": [
        {"name": e.name, "strength": e.strength, "clip_strength": e.clip_strength, "active": e.active,
         **({"sha256": e.sha256} if e.sha256 else {})}
        for e in entries
    ]})


def _strength_text(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"


def format_syntax(entries: Iterable[LoraEntry]) -> str:
    """``<lora:stem:0.8>`` (``<lora:stem:0.8:0.6>`` when the clip strength differs) of the
    active entries, space separated: the text A1111-style prompts and CivitAI read."""
    parts = []
    for entry in entries:
        if not entry.active:
            continue
        stem = entry.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        text = f"<lora:{stem}:{_strength_text(entry.strength)}"
        if entry.clip_strength != entry.strength:
            text += f":{_strength_text(entry.clip_strength)}"
        parts.append(text + ">")
    return " ".join(parts)


def entries_from_stack(stack: Any) -> list[LoraEntry]:
    """A ``LORA_STACK`` (``[(name, model_strength, clip_strength), ...]``, as other packs make it)."""
    if not stack:
        return []
    if not isinstance(stack, (list, tuple)):
        raise LoraListError("lora_stack must be a list of (name, model_strength, clip_strength)")
    entries = []
    for i, item in enumerate(stack):
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            raise LoraListError(f"lora_stack item {i + 1} must be (name, model_strength, clip_strength)")
        name, strength = item[0], item[1]
        clip = item[2] if len(item) > 2 else strength
        entries.append(LoraEntry(
            name=str(name).replace("\\", "/"), strength=_number(strength, f"lora_stack item {i + 1} strength"),
            clip_strength=_number(clip, f"lora_stack item {i + 1} clip strength"),
        ))
    return entries


def stack_of(entries: Sequence[LoraEntry]) -> list[tuple[str, float, float]]:
    """The active entries as a ``LORA_STACK``."""
    return [(e.name, e.strength, e.clip_strength) for e in entries if e.active]
