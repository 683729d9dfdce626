"""The in-memory index of one model type: entries, sorted orders, counts and filters.

Owns everything a listing needs so a request costs one filter pass plus the page:
sorted orders are kept per sort key (re-sorted only after a batch of changes, updated
by bisection for single changes), search text is lower-cased once, filter results are
memoised per index version. Pure data structure: no I/O, no asyncio.
"""
from __future__ import annotations

import bisect
import gc
import operator
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .model_records import ModelEntry

_NATURAL_SPLIT = re.compile(r"\d+")


def _discard(index: dict, key, path: str) -> None:
    paths = index.get(key)
    if paths is not None:
        paths.discard(path)
        if not paths:
            del index[key]


def _pad_digits(match: "re.Match[str]") -> str:
    digits = match.group()
    return digits.rjust(24, "0") if len(digits) < 24 else digits


def natural_key(text: str) -> str:
    """'lora10' sorts after 'lora9'; case-insensitive. A plain string (digit runs
    zero-padded) so sorting compares in C, not tuple by tuple."""
    return _NATURAL_SPLIT.sub(_pad_digits, text.casefold())


# Keys are plain strings ending in "\x00<path>" (unique, and compared in C: sorting 50,000
# of them holds the GIL for a few milliseconds, not the ~70 ms tuples took).
SORT_KEYS: dict[str, Callable[[ModelEntry], str]] = {
    "name": lambda e: f"{natural_key(e.display_name)}\x00{e.file_path}",
    "date": lambda e: f"{e.stamp.mtime_ns:024d}\x00{e.file_path}",
    "size": lambda e: f"{e.stamp.size:024d}\x00{e.file_path}",
}


def _path_of(key: str) -> str:
    return key[key.index("\x00") + 1 :]
DEFAULT_DIRECTION = {"name": "asc", "date": "desc", "size": "desc"}


@dataclass(slots=True, frozen=True, kw_only=True)
class ListQuery:
    """A validated listing request (the handler parses, the index filters)."""

    sort_key: str = "name"
    descending: bool = False
    search: str = ""
    search_filename: bool = True
    search_modelname: bool = True
    search_tags: bool = True
    search_creator: bool = False
    search_trigger_words: bool = False
    fuzzy: bool = False
    folder: str | None = None
    recursive: bool = True
    model_root: str | None = None
    base_models: tuple[str, ...] = ()
    tags_include: tuple[str, ...] = ()
    tags_exclude: tuple[str, ...] = ()
    tag_logic_all: bool = False
    favorites_only: bool = False
    hash: str = ""
    include_excluded: bool = False


@dataclass(slots=True)
class _SearchText:
    filename: str
    modelname: str
    tags: str
    creator: str
    triggers: str
    default: str  # filename + model name + tags, the usual scope


@dataclass(slots=True)
class _Order:
    """One sort order: its sorted keys and, aligned with them, the paths."""

    keys: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def insert(self, key: str) -> None:
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.paths.insert(i, _path_of(key))

    def remove(self, key: str) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
            del self.paths[i]

    def merge(self, new_keys: list[str]) -> None:
        """Add many keys: timsort merges the two sorted runs in linear time."""
        if not new_keys:
            return
        new_keys.sort()
        self.keys.extend(new_keys)
        self.keys.sort()
        self.paths = [_path_of(k) for k in self.keys]


class ModelIndex:
    """Entries of one model type with the orders and counts listings and queries read."""

    def __init__(self) -> None:
        self.entries: dict[str, ModelEntry] = {}
        self._search: dict[str, _SearchText] = {}
        self._orders: dict[str, _Order] = {name: _Order() for name in SORT_KEYS}
        self.hash_index: dict[str, set[str]] = {}  # sha256 / autov2 / autov3 -> paths
        self.tag_counts: Counter[str] = Counter()
        self.base_model_counts: Counter[str] = Counter()
        self.folder_counts: Counter[tuple[str, str]] = Counter()  # (root, folder)
        # inverted indexes: listing filters are set intersections, not per-entry checks
        self.by_tag: dict[str, set[str]] = {}
        self.by_base_model: dict[str, set[str]] = {}
        self.by_folder: dict[tuple[str, str], set[str]] = {}
        self.favorites: set[str] = set()
        self.excluded: set[str] = set()
        self._default_texts: dict[str, str] = {}
        self.version = 0
        self._memo: OrderedDict[ListQuery, list[str]] = OrderedDict()
        self._ranks: dict[str, tuple[int, dict[str, int]]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> ModelEntry | None:
        return self.entries.get(path)

    # mutation ------------------------------------------------------------------
    def add_many(self, entries: Iterable[ModelEntry]) -> None:
        """Add or replace many entries, merging them into every sorted order at once."""
        new_keys: dict[str, list[str]] = {name: [] for name in SORT_KEYS}
        gc_was_enabled = gc.isenabled()
        gc.disable()  # tens of thousands of small objects: no cycles to find, only time lost
        try:
            for entry in entries:
                self._remove(entry.file_path)
                self._insert(entry)
                for name, key_fn in SORT_KEYS.items():
                    new_keys[name].append(key_fn(entry))
            for name, order in self._orders.items():
                order.merge(new_keys[name])
        finally:
            if gc_was_enabled:
                gc.enable()
        self._touch()

    def upsert(self, entry: ModelEntry) -> None:
        """Add or replace one entry, keeping sorted orders by bisection."""
        self._remove(entry.file_path)
        self._insert(entry)
        for name, order in self._orders.items():
            order.insert(SORT_KEYS[name](entry))
        self._touch()

    def remove(self, path: str) -> ModelEntry | None:
        entry = self._remove(path)
        self._touch()
        return entry

    def _insert(self, entry: ModelEntry) -> None:
        path = entry.file_path
        self.entries[path] = entry
        tags = " ".join(entry.tags).casefold()
        filename = entry.file_name.casefold()
        modelname = entry.model_name.casefold()
        self._search[path] = _SearchText(
            filename=filename,
            modelname=modelname,
            tags=tags,
            creator=entry.creator.casefold(),
            triggers=" ".join(entry.trigger_words + tuple(entry.civitai.get("trainedWords") or ())).casefold(),
            default=f"{filename}\x00{modelname}\x00{tags}",
        )
        self._default_texts[path] = self._search[path].default
        for h in (entry.sha256, entry.autov2, entry.autov3):
            if h:
                self.hash_index.setdefault(h, set()).add(path)
        for tag in set(t.casefold() for t in entry.tags):
            self.tag_counts[tag] += 1
            self.by_tag.setdefault(tag, set()).add(path)
        if entry.base_model:
            self.base_model_counts[entry.base_model] += 1
            self.by_base_model.setdefault(entry.base_model, set()).add(path)
        self.folder_counts[(entry.root, entry.folder)] += 1
        self.by_folder.setdefault((entry.root, entry.folder), set()).add(path)
        if entry.favorite:
            self.favorites.add(path)
        if entry.exclude:
            self.excluded.add(path)

    def _remove(self, path: str) -> ModelEntry | None:
        entry = self.entries.pop(path, None)
        if entry is None:
            return None
        self._search.pop(path, None)
        self._default_texts.pop(path, None)
        self.favorites.discard(path)
        self.excluded.discard(path)
        for h in (entry.sha256, entry.autov2, entry.autov3):
            if h and h in self.hash_index:
                self.hash_index[h].discard(path)
                if not self.hash_index[h]:
                    del self.hash_index[h]
        for tag in set(t.casefold() for t in entry.tags):
            self.tag_counts[tag] -= 1
            if self.tag_counts[tag] <= 0:
                del self.tag_counts[tag]
            _discard(self.by_tag, tag, path)
        if entry.base_model:
            self.base_model_counts[entry.base_model] -= 1
            if self.base_model_counts[entry.base_model] <= 0:
                del self.base_model_counts[entry.base_model]
            _discard(self.by_base_model, entry.base_model, path)
        key = (entry.root, entry.folder)
        self.folder_counts[key] -= 1
        if self.folder_counts[key] <= 0:
            del self.folder_counts[key]
        _discard(self.by_folder, key, path)
        for name, order in self._orders.items():
            order.remove(SORT_KEYS[name](entry))
        return entry

    def _touch(self) -> None:
        self.version += 1
        self._memo.clear()

    # reading -------------------------------------------------------------------
    def order(self, sort_key: str) -> list[str]:
        return self._orders[sort_key].paths

    def query(self, q: ListQuery) -> list[str]:
        """Paths matching ``q`` in its sort order (memoised until the next change).

        Structured filters are set intersections over inverted indexes (C speed); only
        the text search looks at each remaining entry, through a tight comprehension.
        """
        hit = self._memo.get(q)
        if hit is not None:
            self._memo.move_to_end(q)
            return hit
        order = self.order(q.sort_key)
        candidates = self._candidates(q)
        if candidates is None:
            paths = order
        elif len(candidates) < len(order) // 8:
            # few candidates: sort them by their order position instead of scanning it
            rank = self._rank(q.sort_key)
            paths = sorted(candidates, key=rank.__getitem__)
        else:
            paths = [p for p in order if p in candidates]
        if q.search.strip():
            paths = self._search_filter(q, paths)
        if q.descending:
            paths = paths[::-1]
        self._memo[q] = paths
        if len(self._memo) > 64:
            self._memo.popitem(last=False)
        return paths

    def _rank(self, sort_key: str) -> dict[str, int]:
        cached = self._ranks.get(sort_key)
        if cached is None or cached[0] != self.version:
            cached = (self.version, {p: i for i, p in enumerate(self.order(sort_key))})
            self._ranks[sort_key] = cached
        return cached[1]

    def _candidates(self, q: ListQuery) -> set[str] | None:
        """The set of paths passing every structured filter, or None for "all"."""
        sets: list[set[str]] = []
        if q.hash:
            sets.append(self.hash_index.get(q.hash.casefold(), set()))
        if q.favorites_only:
            sets.append(self.favorites)
        if q.base_models:
            sets.append(set().union(*(self.by_base_model.get(b, set()) for b in q.base_models)))
        if q.model_root is not None or (q.folder is not None and (q.folder != "" or not q.recursive)):
            sets.append(self._folder_set(q))
        if q.tags_include:
            tag_sets = [self.by_tag.get(t.casefold(), set()) for t in q.tags_include]
            sets.append(set.intersection(*tag_sets) if q.tag_logic_all else set().union(*tag_sets))
        exclude: set[str] = set()
        if q.tags_exclude:
            exclude = set().union(*(self.by_tag.get(t.casefold(), set()) for t in q.tags_exclude))
        if not q.include_excluded and self.excluded:
            exclude = exclude | self.excluded
        if not sets and not exclude:
            return None
        if sets:
            sets.sort(key=len)
            result = set(sets[0])
            for other in sets[1:]:
                result &= other
        else:
            result = set(self.entries)
        return result - exclude if exclude else result

    def _folder_set(self, q: ListQuery) -> set[str]:
        folder = (q.folder or "").strip("/")
        prefix = folder + "/"
        out: set[str] = set()
        for (root, name), paths in self.by_folder.items():
            if q.model_root is not None and root != q.model_root:
                continue
            if q.folder is None or name == folder or (q.recursive and (folder == "" or name.startswith(prefix))):
                out |= paths
        return out

    def _search_filter(self, q: ListQuery, paths: list[str]) -> list[str]:
        search = self._search
        tokens = q.search.casefold().split()
        fields = [
            name
            for flag, name in (
                (q.search_filename, "filename"),
                (q.search_modelname, "modelname"),
                (q.search_tags, "tags"),
                (q.search_creator, "creator"),
                (q.search_trigger_words, "triggers"),
            )
            if flag
        ]
        if not fields:
            return []
        if fields == ["filename", "modelname", "tags"]:
            texts = self._default_texts
        else:
            getters = [operator.attrgetter(f) for f in fields]
            texts = {p: "\x00".join(g(search[p]) for g in getters) for p in paths}
        if q.fuzzy:
            # every token's letters in order, possibly apart, within one word
            patterns = [re.compile("[^\\x00\\s]*?".join(re.escape(ch) for ch in t)) for t in tokens]
            for pattern in patterns:
                match = pattern.search
                paths = [p for p in paths if match(texts[p])]
            return paths
        for token in tokens:
            paths = [p for p in paths if token in texts[p]]
        return paths

    def top_tags(self, limit: int) -> list[tuple[str, int]]:
        return sorted(self.tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def folders(self) -> list[str]:
        return sorted({folder for (_, folder) in self.folder_counts if folder}, key=natural_key)
