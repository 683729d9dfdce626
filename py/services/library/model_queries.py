"""Read-only questions about one model type's library (tags, folders, duplicates, ...).

Owns the derivations from the index; never mutates it. Answers are plain data the
handlers wrap in ``{"success": true, ...}``.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Callable, TypeVar

from .model_index import natural_key
from .model_records import ModelEntry
from .type_library import TypeLibrary

T = TypeVar("T")
# relative-paths looks at this many paths one by one before it uses the index's keys
RELATIVE_PROBE = 256


def _letter_of(name: str) -> str:
    first = name[:1].upper()
    if first.isascii() and first.isalpha():
        return first
    if first.isdigit():
        return "0-9"
    return "#" if not first.isalpha() else "@"


class ModelQueries:
    """Read-side helpers over a ``TypeLibrary``'s index."""

    def __init__(self, *, service: TypeLibrary) -> None:
        self._service = service
        self._memo: dict[str, tuple[tuple[int, int, int], Any]] = {}

    @property
    def _index(self):
        return self._service.index

    def _visible(self) -> list[ModelEntry]:
        return [e for e in self._index.entries.values() if not e.exclude]

    def top_tags(self, limit: int) -> list[dict[str, Any]]:
        return [{"tag": tag, "count": count} for tag, count in self._index.top_tags(limit)]

    def search_tags(self, text: str, limit: int) -> list[dict[str, Any]]:
        needle = text.casefold().strip()
        matches = [(t, c) for t, c in self._index.tag_counts.items() if needle in t]
        matches.sort(key=lambda tc: (not tc[0].startswith(needle), -tc[1], tc[0]))
        return [{"tag": t, "count": c} for t, c in matches[:limit]]

    def base_models(self, limit: int) -> list[dict[str, Any]]:
        items = sorted(self._index.base_model_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"name": name, "count": count} for name, count in items[:limit]]

    def folders(self) -> list[str]:
        return self._index.folders()

    def folder_tree(self, model_root: str) -> dict[str, Any]:
        folders = [folder for (root, folder) in self._index.folder_counts if root == model_root and folder]
        return _tree(folders)

    def unified_folder_tree(self) -> dict[str, Any]:
        return _tree([folder for (_, folder) in self._index.folder_counts if folder])

    def _memoised(self, name: str, build: Callable[[], T]) -> T:
        """``build()``, kept until the index (or the usage the items show) changes."""
        index = self._index
        stamp = (index.serial, index.version, self._service.usage.version)
        known = self._memo.get(name)
        if known is not None and known[0] == stamp:
            return known[1]
        value = build()
        self._memo[name] = (stamp, value)
        return value

    def duplicates(self) -> list[dict[str, Any]]:
        """Groups of files with the same SHA256 (memoised: the answer is every group, formatted)."""
        return self._memoised("duplicates", self._duplicates)

    def _duplicates(self) -> list[dict[str, Any]]:
        index = self._index
        out = []
        for sha in index.duplicate_hashes():
            entries = sorted((index.entries[p] for p in index.paths_by_hash(sha)), key=lambda e: e.file_path)
            out.append({"hash": sha, "models": [self._service.format_response(e) for e in entries]})
        return out

    def filename_conflicts(self) -> list[dict[str, Any]]:
        return self._memoised("filename_conflicts", self._filename_conflicts)

    def _filename_conflicts(self) -> list[dict[str, Any]]:
        index = self._index
        out = []
        for _, paths in sorted((stem, paths) for stem, paths in index.stems() if len(paths) > 1):
            entries = sorted((index.entries[p] for p in paths), key=lambda e: e.file_path)
            out.append({"file_name": entries[0].file_name, "models": [self._service.format_response(e) for e in entries]})
        return out

    def relative_paths(self, search: str, limit: int) -> list[str]:
        needle = search.casefold()
        index = self._index
        entries, excluded = index.entries, index.excluded
        order = index.order("name")
        # a needle most paths hold fills the answer within the first few paths of the name
        # order; a rare one is looked up through the name and folder keys instead of a pass
        probe = self._relative_matches(order[:RELATIVE_PROBE], needle, limit)
        if len(probe) >= limit or len(order) <= RELATIVE_PROBE:
            return probe
        candidates = index.relative_path_candidates(needle)
        if candidates is not None:
            # found through the name and folder keys: no pass over every entry
            if excluded:
                candidates -= excluded
            out = []
            for path in index.first_by_name(candidates, limit):
                entry = entries[path]
                out.append(path[len(entry.root) + 1 :] if path.startswith(entry.root + "/") else entry.relative_path)
            return out
        return self._relative_matches(order, needle, limit)

    def _relative_matches(self, paths: list[str], needle: str, limit: int) -> list[str]:
        """The first ``limit`` relative paths among ``paths`` that contain ``needle``."""
        index = self._index
        entries, excluded = index.entries, index.excluded
        out: list[str] = []
        for path in paths:
            if path in excluded:
                continue
            entry = entries[path]
            # the path below its root is the relative path (file paths are root + '/' + it)
            rel = path[len(entry.root) + 1 :] if path.startswith(entry.root + "/") else entry.relative_path
            if needle in rel.casefold():
                out.append(rel)
                if len(out) >= limit:
                    break
        return out

    def excluded(self) -> list[ModelEntry]:
        entries = self._index.entries
        return sorted((entries[p] for p in self._index.excluded), key=lambda e: natural_key(e.display_name))

    def letter_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for entry in self._visible():
            counts[_letter_of(entry.display_name)] += 1
        return dict(sorted(counts.items()))

    def find_by_relative_path(self, relative_path: str) -> ModelEntry | None:
        """The model at ``relative_path`` below one of the roots, with or without its extension
        (dictionary look-ups: the path under each root, then the files of that stem)."""
        wanted = relative_path.replace("\\", "/").strip("/")
        wanted_noext = os.path.splitext(wanted)[0]
        index = self._index
        for root in self._service.roots:
            entry = index.entries.get(f"{root.path.rstrip('/')}/{wanted}")
            if entry is not None and entry.relative_path == wanted:
                return entry
        stem = wanted_noext.rsplit("/", 1)[-1]
        for path in index.paths_by_stem(stem):
            entry = index.entries.get(path)
            if entry is None:
                continue
            rel = entry.relative_path
            if rel == wanted or os.path.splitext(rel)[0] == wanted_noext:
                return entry
        return None

    def find_by_name(self, name: str) -> ModelEntry | None:
        """Match a loader's file name: relative path, file name with or without extension."""
        entry = self.find_by_relative_path(name)
        if entry is not None:
            return entry
        base = os.path.splitext(os.path.basename(name.replace("\\", "/")))[0].casefold()
        for path in self._index.paths_by_stem(base):
            entry = self._index.entries.get(path)
            if entry is not None:
                return entry
        return None


def _tree(folders: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for folder in sorted(set(folders), key=natural_key):
        node = tree
        for part in folder.split("/"):
            node = node.setdefault(part, {})
    return tree


def civitai_url(entry: ModelEntry) -> str:
    model_id = entry.civitai.get("modelId")
    version_id = entry.civitai.get("id")
    if not model_id:
        return ""
    url = f"https://civitai.com/models/{model_id}"
    if version_id:
        url += f"?modelVersionId={version_id}"
    return url
