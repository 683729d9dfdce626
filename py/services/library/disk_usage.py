"""What the library's models take on disk: totals per type and folder, the largest models,
copies of one file (same SHA256) across folders and types, models never used.

Computed from the in-memory indexes only (no disk walk per call) and kept until an index or
the usage history changes, so a page polling it costs a dictionary look-up.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..shared.model_types import ModelType
from .model_index import NO_USAGE, UsageSource
from .model_records import HashStatus, ModelEntry

MAX_LIMIT = 500


class _TypeSource(Protocol):
    model_type: ModelType
    index: Any
    usage: UsageSource


@dataclass(frozen=True, slots=True)
class DiskQuery:
    model_type: ModelType | None = None  # None: every type
    folder: str | None = None  # a folder relative to its root ('' = the roots themselves), with its sub-folders
    limit: int = 20  # largest models and never-used models listed


def _item(entry: ModelEntry, usage: Mapping[str, Any]) -> dict[str, Any]:
    record = usage.get(entry.sha256) if entry.sha256 else None
    return {
        "model_type": entry.model_type.value,
        "prefix": entry.model_type.prefix,
        "file_path": entry.file_path,
        "file_name": entry.file_path.rsplit("/", 1)[-1],
        "model_name": entry.model_name,
        "root": entry.root,
        "folder": entry.folder,
        "size": entry.stamp.size,
        "sha256": entry.sha256,
        "use_count": int(getattr(record, "count", 0) or 0),
        "last_used": getattr(record, "last_used", None),
    }


def _in_folder(entry: ModelEntry, folder: str | None) -> bool:
    if folder is None or folder == "":
        return True
    return entry.folder == folder or entry.folder.startswith(folder + "/")


class DiskUsage:
    """The disk report over every type library (``ModelLibrary`` or any mapping of them)."""

    def __init__(self, *, library: Mapping[ModelType, _TypeSource]) -> None:
        self._library = library
        self._cached: tuple[tuple[Any, ...], DiskQuery, dict[str, Any]] | None = None

    def _stamp(self) -> tuple[Any, ...]:
        usage = self._usage()
        return (getattr(usage, "version", 0), *((t.value, getattr(s.index, "version", None), len(s.index))
                                                 for t, s in self._library.items()))

    def _usage(self) -> UsageSource:
        return next((s.usage for s in self._library.values()), NO_USAGE)

    def report(self, query: DiskQuery) -> dict[str, Any]:
        stamp = self._stamp()
        if self._cached is not None and self._cached[0] == stamp and self._cached[1] == query:
            return self._cached[2]
        result = self._compute(query)
        self._cached = (stamp, query, result)
        return result

    def _entries(self, model_type: ModelType | None) -> Iterable[ModelEntry]:
        for t, service in self._library.items():
            if model_type is None or t is model_type:
                yield from service.index.entries.values()

    def _compute(self, q: DiskQuery) -> dict[str, Any]:
        usage = dict(self._usage().all())
        limit = max(1, min(q.limit, MAX_LIMIT))
        entries = [e for e in self._entries(q.model_type) if _in_folder(e, q.folder)]

        per_type: dict[ModelType, list[int]] = defaultdict(lambda: [0, 0])
        per_folder: dict[tuple[ModelType, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for e in entries:
            size = e.stamp.size
            totals = per_type[e.model_type]
            totals[0] += size
            totals[1] += 1
            folder = per_folder[(e.model_type, e.root, e.folder)]
            folder[0] += size
            folder[1] += 1
        types = []
        for t in ModelType:
            if t not in per_type:
                continue
            folders = sorted(
                ({"root": root, "folder": folder, "path": f"{root.rstrip('/')}/{folder}" if folder else root,
                  "size": size, "count": count}
                 for (ft, root, folder), (size, count) in per_folder.items() if ft is t),
                key=lambda f: (-f["size"], f["path"]),
            )
            size, count = per_type[t]
            types.append({"model_type": t.value, "prefix": t.prefix, "size": size, "count": count, "folders": folders})

        largest = sorted(entries, key=lambda e: (-e.stamp.size, e.file_path))[:limit]

        # duplicates across folders and types: one SHA256, several files (of the whole library,
        # so a copy outside the folder looked at still counts; shown when one lies inside it)
        by_hash: dict[str, list[ModelEntry]] = defaultdict(list)
        for e in self._entries(None):
            if e.sha256 and e.hash_status is HashStatus.DONE:
                by_hash[e.sha256].append(e)
        selected = {e.file_path for e in entries}
        duplicates = []
        for sha, group in by_hash.items():
            if len(group) < 2 or not any(e.file_path in selected for e in group):
                continue
            group.sort(key=lambda e: (e.model_type.value, e.file_path))
            size = group[0].stamp.size
            duplicates.append({
                "sha256": sha, "size": size, "count": len(group), "wasted": size * (len(group) - 1),
                "types": sorted({e.model_type.value for e in group}),
                "models": [_item(e, usage) for e in group],
            })
        duplicates.sort(key=lambda d: (-d["wasted"], d["sha256"]))

        never = [e for e in entries if e.sha256 and e.sha256 not in usage]
        never.sort(key=lambda e: (-e.stamp.size, e.file_path))
        unhashed = sum(1 for e in entries if not e.sha256)
        return {
            "total": {"size": sum(t["size"] for t in types), "count": len(entries)},
            "types": types,
            "largest": [_item(e, usage) for e in largest],
            "duplicates": duplicates,
            "duplicate_wasted": sum(d["wasted"] for d in duplicates),
            "never_used": {
                "count": len(never), "size": sum(e.stamp.size for e in never),
                "items": [_item(e, usage) for e in never[:limit]],
            },
            "unhashed": unhashed,  # not hashed yet: neither in duplicates nor in never used
            "usage_records": len(usage),  # 0: no usage recorded yet (usage is recorded inside ComfyUI)
        }
