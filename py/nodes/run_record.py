"""What our nodes computed in the last run, for the Save Image node downstream: the LoRAs a
loader really applied (names as resolved) and the strings it output (trigger words, syntax).

Keyed by ComfyUI's node id, which is also how ComfyUI caches outputs: a loader whose output is
reused from the cache wrote its record when it last ran with the same inputs. Each record keeps
the inputs it was made from, so a reader can tell a record of another graph from this one.
Written and read on the executor thread only (one prompt runs at a time).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NodeRun", "forget_all", "recall", "remember"]

MAX_RECORDS = 256


@dataclass(slots=True, frozen=True, kw_only=True)
class NodeRun:
    signature: str  # the node's own inputs (literal values) when it ran
    applied: tuple[tuple[str, float, float], ...] = ()  # (name, model strength, clip strength)
    outputs: dict[int, Any] = field(default_factory=dict)  # output index -> value (strings only)


_records: "OrderedDict[str, NodeRun]" = OrderedDict()


def remember(node_id: Any, run: NodeRun) -> None:
    if node_id is None:
        return
    key = str(node_id)
    _records[key] = run
    _records.move_to_end(key)
    while len(_records) > MAX_RECORDS:
        _records.popitem(last=False)


def recall(node_id: Any, signature: str) -> NodeRun | None:
    """The record of ``node_id`` when it ran with these inputs, else None."""
    run = _records.get(str(node_id))
    return run if run is not None and run.signature == signature else None


def forget_all() -> None:
    _records.clear()


def signature_of(inputs: Any) -> str:
    """A node's literal inputs as one comparable string (links are left out: they are not
    the node's own values, and ComfyUI re-runs the node when what they carry changes)."""
    if not isinstance(inputs, dict):
        return ""
    parts = []
    for key in sorted(inputs):
        value = inputs[key]
        if isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)
