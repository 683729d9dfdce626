"""The in-memory index of one model type: entries, sorted orders, counts and filters.

Owns everything a listing needs so a request costs one filter pass plus the page:
sorted orders are kept per sort key (rebuilt in a worker thread after a batch of changes,
updated by bisection for single ones), search text is lower-cased once, filter results are
memoised per index version within a memory budget. Pure data structure: no I/O, no asyncio.

Sized for 100,000 models in a small memory footprint: an order is a list of paths (its
sort keys are computed when needed, never stored), a hash names its path directly (a set
only when two files share it), AutoV2 is found as a prefix of the sorted SHA256s.
"""
from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import operator
import re
import time
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .gil_slices import all_of, dict_of, dict_of_pairs, map_list, set_of, sorted_by, sorted_strings
from .model_records import ModelEntry

_PATH_OF = operator.itemgetter(1)  # ModelEntry.file_path, as a C callable

_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(text: str) -> str:
    """'lora10' sorts after 'lora9'; case-insensitive. A plain string (digit runs
    zero-padded) so sorting compares in C, not tuple by tuple."""
    parts = _DIGIT_RUNS.split(text.casefold())
    if len(parts) == 1:
        return parts[0]
    parts[1::2] = [digits.rjust(24, "0") for digits in parts[1::2]]
    return "".join(parts)


def _name_key(e: ModelEntry) -> str:
    return f"{natural_key(e.model_name or e.file_name)}\x00{e.file_path}"


def _date_key(e: ModelEntry) -> str:
    return f"{e.stamp.mtime_ns:024d}\x00{e.file_path}"


def _size_key(e: ModelEntry) -> str:
    return f"{e.stamp.size:024d}\x00{e.file_path}"


# Keys are plain strings ending in "\x00<path>" (unique, and compared in C: sorting 100,000
# of them holds the GIL for about 10 ms, where tuples took several times that).
SORT_KEYS: dict[str, Callable[[ModelEntry], str]] = {"name": _name_key, "date": _date_key, "size": _size_key}
# sorts by usage history (issue 11): computed from the usage source, not kept as orders
USAGE_SORTS = ("usage", "last_used")
LISTING_SORTS = (*SORT_KEYS, *USAGE_SORTS)
DEFAULT_DIRECTION = {"name": "asc", "date": "desc", "size": "desc", "usage": "desc", "last_used": "desc"}
DAY_SECONDS = 86_400
_SERIALS = itertools.count(1)
# below this many changed entries an order is updated by bisection, above it re-sorted
_BISECT_LIMIT = 64
# a batch of more than a quarter of the kept paths is sorted with them, a smaller one merged in
_MERGE_SHARE = 4
# memoised results may hold this many paths in all (8 bytes each)
MEMO_BUDGET = 1_000_000
# search texts are also kept as this many joined blocks (a path's block: its hash): a
# search looks for its first word in each block's one string (C speed), and only the
# blocks that hold it entry by entry; an edit re-joins one block, at the next search
TEXT_BLOCKS = 256


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
    unused_days: int | None = None  # only models not used in the last N days (never used included)
    # update checks (issue 14): the paths with a pending update come from the update view;
    # its version, not the set, keys the memo
    has_update: bool = False
    update_paths: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    update_version: int = 0

    @property
    def uses_usage(self) -> bool:
        return self.sort_key in USAGE_SORTS or self.unused_days is not None


class UsageRecord(Protocol):
    count: int
    last_used: float  # epoch seconds


class UsageSource(Protocol):
    """What the index reads of the usage history (``services.usage`` provides it): a
    ``version`` bumped on every change, and the records by lower-case SHA256."""

    version: int

    def all(self) -> Mapping[str, UsageRecord]: ...


class _NoUsage:
    version = 0

    @staticmethod
    def all() -> Mapping[str, UsageRecord]:
        return {}


NO_USAGE: UsageSource = _NoUsage()


def search_text(entry: ModelEntry) -> str:
    """The default search scope of an entry: file name, model name, tags (casefolded)."""
    return f"{entry.file_name.casefold()}\x00{entry.model_name.casefold()}\x00{' '.join(entry.tags).casefold()}"


def texts_of(entries: list[ModelEntry]) -> dict[str, str]:
    """Path -> search text of each entry (blocking: a worker thread's, for many)."""
    return {e.file_path: search_text(e) for e in entries}


def _field_text(entry: ModelEntry, name: str) -> str:
    if name == "filename":
        return entry.file_name.casefold()
    if name == "modelname":
        return entry.model_name.casefold()
    if name == "tags":
        return " ".join(entry.tags).casefold()
    if name == "creator":
        return entry.creator.casefold()
    return " ".join(entry.trigger_words + entry.civitai.trained_words).casefold()


# dict values of the multi-maps: one path (the common case, no container) or a list
def _multi_add(index: dict[str, Any], key: str, path: str) -> None:
    found = index.get(key)
    if found is None:
        index[key] = path
    elif isinstance(found, list):
        if path not in found:
            found.append(path)
    elif found != path:
        index[key] = [found, path]


def _multi_discard(index: dict[str, Any], key: str, path: str) -> None:
    found = index.get(key)
    if found is None:
        return
    if isinstance(found, list):
        if path in found:
            found.remove(path)
            if len(found) == 1:
                index[key] = found[0]
    elif found == path:
        del index[key]


def _multi_get(index: dict[str, Any], key: str) -> tuple[str, ...]:
    found = index.get(key)
    if found is None:
        return ()
    return tuple(found) if isinstance(found, list) else (found,)


def _multi_of(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A multi-map of (key, path) pairs, built in C when no key repeats (the common case)."""
    out: dict[str, Any] = dict_of_pairs(pairs)
    if len(out) == len(pairs):
        return out
    counts = Counter(key for key, _ in pairs)
    repeated = {key for key, n in counts.items() if n > 1}
    for key in repeated:
        del out[key]
    for key, path in pairs:
        if key in repeated:
            _multi_add(out, key, path)
    return out


def _discard(index: dict, key, path: str) -> None:
    paths = index.get(key)
    if paths is not None:
        paths.discard(path)
        if not paths:
            del index[key]


class HashLookup(Mapping[str, tuple[str, ...]]):
    """Read-only view: SHA256, AutoV2 or AutoV3 (lower-case) → the paths of that hash."""

    __slots__ = ("_index",)

    def __init__(self, index: "ModelIndex") -> None:
        self._index = index

    def __getitem__(self, key: str) -> tuple[str, ...]:
        paths = self._index.paths_by_hash(key)
        if not paths:
            raise KeyError(key)
        return paths

    def __iter__(self) -> Iterator[str]:
        index = self._index
        shas = dict.fromkeys(index._shas)
        yield from shas
        yield from dict.fromkeys(s[:10] for s in shas)
        yield from list(index._by_autov3)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(slots=True)
class PreparedChanges:
    """A batch of changes with everything expensive computed off the event loop."""

    version: int  # the index version the orders were computed against
    changed: list[ModelEntry]
    texts: list[str]
    removed: list[str]
    orders: dict[str, list[str]] = field(default_factory=dict)
    shas: list[str] | None = None


class ModelIndex:
    """Entries of one model type with the orders and counts listings and queries read."""

    def __init__(self) -> None:
        self.serial = next(_SERIALS)  # tells indexes apart (memos keyed on an index's version)
        self.entries: dict[str, ModelEntry] = {}
        # search texts by path; None until built (``build(texts=False)`` defers them past a
        # start-up, when the walk's child process no longer holds its memory beside ours)
        self._texts: dict[str, str] | None = {}
        self._texts_stale: set[str] = set()  # paths changed while the texts were not built
        self._blocks: list[list[str]] = [[] for _ in range(TEXT_BLOCKS)]  # paths by hash
        self._joined: list[str | None] = [None] * TEXT_BLOCKS  # their texts, joined when searched
        self._starts: list[array] = [array("l")] * TEXT_BLOCKS  # where each text begins in its join
        self._orders: dict[str, list[str]] = {name: [] for name in SORT_KEYS}
        self._by_sha: dict[str, Any] = {}
        self._shas: list[str] = []  # sorted, one per entry with a SHA256: AutoV2 is a prefix
        self._by_autov3: dict[str, Any] = {}
        self._by_stem: dict[str, Any] = {}  # casefolded file name -> path(s)
        self.tag_counts: Counter[str] = Counter()
        self.base_model_counts: Counter[str] = Counter()
        self.folder_counts: Counter[tuple[str, str]] = Counter()  # (root, folder)
        # inverted indexes: listing filters are set intersections, not per-entry checks
        self.by_tag: dict[str, set[str]] = {}
        self.by_base_model: dict[str, set[str]] = {}
        self.by_folder: dict[tuple[str, str], set[str]] = {}
        self.favorites: set[str] = set()
        self.excluded: set[str] = set()
        self.version = 0
        self._memo: OrderedDict[Any, list[str]] = OrderedDict()
        self._memo_size = 0
        # usage sorts: (index version, usage version) -> ascending order, per sort
        self._usage_orders: dict[str, tuple[tuple[int, int], list[str]]] = {}
        self._ext_cache: tuple[int, set[str]] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> ModelEntry | None:
        return self.entries.get(path)

    @property
    def hash_index(self) -> HashLookup:
        return HashLookup(self)

    # building ------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        entries: Iterable[ModelEntry],
        orders: Mapping[str, list[str]] | None = None,
        *,
        trusted: bool = False,
        texts: bool = True,
    ) -> "ModelIndex":
        """A new index of ``entries`` (blocking: run it in a worker thread for big batches).

        ``orders`` are sorted orders known to be right (a cache's), used as they are when
        they hold exactly the entries' paths; otherwise they are sorted here. ``trusted``:
        an order as long as ``entries`` is a permutation of their own path strings (the
        cache checked it), so it is taken without a lookup per path. ``texts=False`` leaves
        the search texts for later (``pending_texts`` / ``install_texts``; a search before
        that builds them on the spot).
        """
        index = cls()
        unique = {e.file_path: e for e in entries}
        index._bulk_insert(list(unique.values()), texts=texts)
        index._shas = sorted_strings(e.sha256 for e in unique.values() if e.sha256)
        for name, key_fn in SORT_KEYS.items():
            known = orders.get(name) if orders else None
            if trusted and known is not None and len(known) == len(unique):
                index._orders[name] = known
                continue
            if known is not None and len(known) <= len(unique) and all_of(unique.__contains__, known):
                # the cache's lists may hold copies of the path strings: use the entries' own
                order = map_list(_PATH_OF, map_list(unique.__getitem__, known))
                placed = set_of(known) if len(known) < len(unique) else unique
                missing = [p for p in index.entries if p not in placed] if placed is not unique else []
                if len(missing) <= max(_BISECT_LIMIT, len(unique) // 20):
                    for path in missing:  # entries the cache's journal changed since its snapshot
                        index._order_insert(order, unique[path], key_fn)
                    index._orders[name] = order
                    continue
            index._orders[name] = _sorted_paths(list(index.entries), index.entries, key_fn)
        return index

    def _bulk_insert(self, entries: list[ModelEntry], *, texts: bool = True) -> None:
        """``_insert_maps`` for many new entries at once (an empty index; distinct paths):
        the same maps, built column by column with C-level passes where possible."""
        paths = [e.file_path for e in entries]
        self.entries = dict_of(paths, entries)
        blocks = self._blocks
        for path in paths:
            blocks[_block_of(path)].append(path)
        self._by_sha = _multi_of([(e.sha256, p) for e, p in zip(entries, paths) if e.sha256])
        self._by_autov3 = _multi_of([(e.autov3, p) for e, p in zip(entries, paths) if e.autov3])
        if texts:
            made = [search_text(e) for e in entries]
            self._texts = dict_of(paths, made)
            self._by_stem = _multi_of([(t[: t.index("\x00")], p) for t, p in zip(made, paths)])
        else:
            self._texts = None
            self._by_stem = _multi_of([(e.file_name.casefold(), p) for e, p in zip(entries, paths)])
        folded: dict[str, str] = {}
        by_tag: dict[str, set[str]] = {}
        for e, path in zip(entries, paths):
            tags = e.tags
            if not tags:
                continue
            if len(tags) == 1:
                keys: Iterable[str] = (folded.get(tags[0]) or folded.setdefault(tags[0], tags[0].casefold()),)
            else:
                keys = {folded.get(t) or folded.setdefault(t, t.casefold()) for t in tags}
            for tag in keys:
                found = by_tag.get(tag)
                if found is None:
                    by_tag[tag] = {path}
                else:
                    found.add(path)
        self.by_tag = by_tag
        self.tag_counts = Counter({tag: len(found) for tag, found in by_tag.items()})
        by_base: dict[str, list[str]] = {}
        for e, path in zip(entries, paths):
            if e.base_model:
                by_base.setdefault(e.base_model, []).append(path)
        self.by_base_model = {b: set(found) for b, found in by_base.items()}
        self.base_model_counts = Counter({b: len(found) for b, found in by_base.items()})
        by_folder: dict[tuple[str, str], list[str]] = {}
        for key, path in zip(zip([e.root for e in entries], [e.folder for e in entries]), paths):
            found = by_folder.get(key)
            if found is None:
                by_folder[key] = [path]
            else:
                found.append(path)
        self.by_folder = {key: set(found) for key, found in by_folder.items()}
        self.folder_counts = Counter({key: len(found) for key, found in by_folder.items()})
        self.favorites = {p for e, p in zip(entries, paths) if e.favorite}
        self.excluded = {p for e, p in zip(entries, paths) if e.exclude}

    # search texts built later ------------------------------------------------------
    @property
    def texts_ready(self) -> bool:
        return self._texts is not None

    def pending_texts(self) -> list[ModelEntry]:
        """The entries whose search texts ``install_texts`` takes (on the loop); the paths
        that change from now on get theirs there, not from this list."""
        self._texts_stale = set()
        return list(self.entries.values())

    def install_texts(self, texts: dict[str, str]) -> None:
        """Take the search texts made off the loop (``texts_of(pending_texts())``); those of
        the entries changed since are made here (a few, on the loop)."""
        if self._texts is not None:
            return
        current = self.entries
        for path in self._texts_stale:
            entry = current.get(path)
            if entry is None:
                texts.pop(path, None)
            else:
                texts[path] = search_text(entry)
        self._texts_stale = set()
        self._texts = texts
        self._joined = [None] * TEXT_BLOCKS

    def _search_texts(self) -> dict[str, str]:
        texts = self._texts
        if texts is None:  # a search before ``install_texts``: made on the spot
            texts = texts_of(self.pending_texts())
            self.install_texts(texts)
        return texts

    # mutation ------------------------------------------------------------------
    def add_many(self, entries: Iterable[ModelEntry]) -> None:
        """Add or replace many entries (blocking: a batch re-sorts the orders)."""
        changed = list(entries)
        self.apply(self.prepare(changed, [], dict(self.entries), self.version))

    def upsert(self, entry: ModelEntry) -> None:
        """Add or replace one entry, keeping sorted orders by bisection."""
        path = entry.file_path
        old = self.entries.get(path)
        if old is not None:
            self._remove_maps(path)
        self._insert_maps(entry, search_text(entry))
        if entry.sha256:
            bisect.insort(self._shas, entry.sha256)
        for name, key_fn in SORT_KEYS.items():
            if old is not None and key_fn(old) == key_fn(entry):
                continue  # a tag or note edit: this order does not move
            order = self._orders[name]
            if old is not None:
                self._order_remove(order, key_fn(old), key_fn)
            self._order_insert(order, entry, key_fn)
        self._touch()

    def remove(self, path: str) -> ModelEntry | None:
        entry = self.entries.get(path)
        if entry is None:
            return None
        self._remove_maps(path)
        for name, key_fn in SORT_KEYS.items():
            self._order_remove(self._orders[name], key_fn(entry), key_fn)
        self._touch()
        return entry

    def _order_insert(self, order: list[str], entry: ModelEntry, key_fn: Callable[[ModelEntry], str]) -> None:
        entries = self.entries
        key = key_fn(entry)
        order.insert(bisect.bisect_left(order, key, key=lambda p: key_fn(entries[p])), entry.file_path)

    def _order_remove(self, order: list[str], key: str, key_fn: Callable[[ModelEntry], str]) -> None:
        path = key[key.rindex("\x00") + 1 :] if "\x00" in key else key
        entries = self.entries

        def key_of(p: str) -> str:
            # the entry being removed is no longer in ``entries``: its old key is ``key``
            e = entries.get(p)
            return key if e is None or p == path else key_fn(e)

        i = bisect.bisect_left(order, key, key=key_of)
        if i < len(order) and order[i] == path:
            del order[i]
        elif path in order:  # a key that sorts inconsistently: fall back to a scan
            order.remove(path)

    def prepare(
        self, changed: list[ModelEntry], removed: list[str], snapshot: dict[str, ModelEntry], version: int
    ) -> PreparedChanges:
        """Compute a batch's search texts and new orders from ``snapshot``, a copy of
        ``entries`` taken on the loop at ``version``. Runs in a worker thread: it reads the
        snapshot and the order lists; a change meanwhile shows as a newer ``version``,
        and ``apply`` refuses the batch."""
        gone = set(removed)
        changed_paths = {e.file_path for e in changed}
        touched = gone | changed_paths
        for path in removed:
            snapshot.pop(path, None)
        for entry in changed:
            snapshot[entry.file_path] = entry
        prepared = PreparedChanges(
            version=version, changed=changed, texts=[search_text(e) for e in changed], removed=removed
        )
        if len(touched) > _BISECT_LIMIT:
            placed = [p for p in changed_paths if p in snapshot]
            for name, key_fn in SORT_KEYS.items():
                keep = [p for p in self._orders[name] if p not in touched]
                prepared.orders[name] = _merged_order(keep, placed, snapshot, key_fn)
            prepared.shas = sorted_strings(e.sha256 for e in snapshot.values() if e.sha256)
        return prepared

    def apply(self, prepared: PreparedChanges) -> None:
        """Apply a prepared batch at once (cheap dict and set updates; on the event loop).

        Raises ``RuntimeError`` when the index changed since ``prepare`` (its orders are stale).
        """
        if prepared.version != self.version:
            raise RuntimeError("the index changed since the batch was prepared")
        if not prepared.orders:
            for path in prepared.removed:
                self.remove(path)
            for entry in prepared.changed:
                self.upsert(entry)
            return
        self.apply_maps(prepared.changed, prepared.texts, prepared.removed)
        self.apply_orders(prepared)

    def apply_maps(self, changed: list[ModelEntry], texts: list[str], removed: list[str]) -> None:
        """Part of a prepared batch's map updates; ``apply_orders`` completes the batch."""
        for path in removed:
            self._remove_maps(path, shas=False)
        for entry, text in zip(changed, texts):
            if entry.file_path in self.entries:
                self._remove_maps(entry.file_path, shas=False)
            self._insert_maps(entry, text)
        self._memo.clear()
        self._memo_size = 0

    def apply_orders(self, prepared: PreparedChanges) -> None:
        """Swap in a prepared batch's orders once its maps are applied (the caller keeps
        every other change out between ``prepare`` and this: ``TypeLibrary``'s index lock)."""
        self._orders = dict(prepared.orders)
        if prepared.shas is not None:
            self._shas = prepared.shas
        self._touch()

    def _insert_maps(self, entry: ModelEntry, text: str) -> None:
        path = entry.file_path
        block = _block_of(path)
        if path not in self.entries:
            self._blocks[block].append(path)
        self.entries[path] = entry
        self._joined[block] = None
        if self._texts is not None:
            self._texts[path] = text
        else:
            self._texts_stale.add(path)
        if entry.sha256:
            _multi_add(self._by_sha, entry.sha256, path)  # ``_shas`` is the caller's
        if entry.autov3:
            _multi_add(self._by_autov3, entry.autov3, path)
        _multi_add(self._by_stem, text[: text.index("\x00")], path)
        tags = entry.tags
        if tags:
            for tag in (set(t.casefold() for t in tags) if len(tags) > 1 else (tags[0].casefold(),)):
                self.tag_counts[tag] += 1
                found = self.by_tag.get(tag)
                if found is None:
                    self.by_tag[tag] = {path}
                else:
                    found.add(path)
        if entry.base_model:
            self.base_model_counts[entry.base_model] += 1
            self.by_base_model.setdefault(entry.base_model, set()).add(path)
        key = (entry.root, entry.folder)
        self.folder_counts[key] += 1
        self.by_folder.setdefault(key, set()).add(path)
        if entry.favorite:
            self.favorites.add(path)
        if entry.exclude:
            self.excluded.add(path)

    def _remove_maps(self, path: str, *, shas: bool = True) -> ModelEntry | None:
        """Take ``path`` out of every map (its SHA out of ``_shas`` unless the caller replaces
        that list); orders are the caller's."""
        entry = self.entries.pop(path, None)
        if entry is None:
            return None
        if self._texts is not None:
            self._texts.pop(path, None)
        else:
            self._texts_stale.add(path)
        block = _block_of(path)
        with contextlib.suppress(ValueError):
            self._blocks[block].remove(path)
        self._joined[block] = None
        self.favorites.discard(path)
        self.excluded.discard(path)
        if entry.sha256:
            _multi_discard(self._by_sha, entry.sha256, path)
            i = bisect.bisect_left(self._shas, entry.sha256) if shas else -1
            if 0 <= i < len(self._shas) and self._shas[i] == entry.sha256:
                del self._shas[i]
        if entry.autov3:
            _multi_discard(self._by_autov3, entry.autov3, path)
        _multi_discard(self._by_stem, entry.file_name.casefold(), path)
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
        return entry

    def _touch(self) -> None:
        self.version += 1
        self._memo.clear()
        self._memo_size = 0

    # reading -------------------------------------------------------------------
    def order(self, sort_key: str) -> list[str]:
        """Paths ascending by ``sort_key`` (do not mutate)."""
        return self._orders[sort_key]

    def orders(self) -> dict[str, list[str]]:
        """Every order (for the cache's snapshot; do not mutate)."""
        return dict(self._orders)

    def paths_by_hash(self, value: str) -> tuple[str, ...]:
        """Paths whose SHA256 (64 hex), AutoV2 (10) or AutoV3 (12) is ``value`` (lower-case)."""
        if len(value) == 10:
            shas = self._shas
            i = bisect.bisect_left(shas, value)
            out: list[str] = []
            while i < len(shas) and shas[i].startswith(value):
                if not out or shas[i] != shas[i - 1]:
                    out.extend(_multi_get(self._by_sha, shas[i]))
                i += 1
            return tuple(out)
        if len(value) == 12:
            return _multi_get(self._by_autov3, value)
        return _multi_get(self._by_sha, value)

    def paths_by_stem(self, stem: str) -> tuple[str, ...]:
        """Paths whose file name (without extension) is ``stem``, case-insensitively."""
        return _multi_get(self._by_stem, stem.casefold())

    def stems(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """(casefolded file name, its paths) for every file name."""
        for stem, found in self._by_stem.items():
            yield stem, (tuple(found) if isinstance(found, list) else (found,))

    def relative_path_candidates(self, needle: str) -> set[str] | None:
        """Paths whose path below their root contains ``needle`` (casefolded), found through
        the file names in the joined search texts and the folder keys instead of a pass over
        every entry; None when ``needle`` may span a folder and a name or a name and its
        extension (it holds '/' or '.'), lies inside an extension, or holds white space or
        NUL (the joined texts cannot tell those), where the caller checks each path itself."""
        if not needle or "/" in needle or "." in needle or "\x00" in needle or any(ch.isspace() for ch in needle):
            return None
        if any(needle in ext.casefold() for ext in self._extensions()):
            return None
        found: set[str] = set()
        for b, block in enumerate(self._blocks):  # the file names, through the joined texts
            if block:
                found.update(self._block_hits(b, block, needle, name_only=True))
        for (_, folder), paths in self.by_folder.items():
            if folder and needle in folder.casefold():
                found |= paths
        return found

    def _extensions(self) -> set[str]:
        known = self._ext_cache
        if known is None or known[0] != self.version:
            known = self._ext_cache = (self.version, {e.extension for e in self.entries.values()})
        return known[1]

    def first_by_name(self, paths: Collection[str], limit: int) -> list[str]:
        """The first ``limit`` of ``paths`` in name order."""
        if limit <= 0 or not paths:
            return []
        order = self._orders["name"]
        # few paths: sort them by their keys (a few microseconds each); many: walk the order
        # until ``limit`` are met (about len(order) * limit / len(paths) steps of ~50 ns)
        if len(paths) * len(paths) * 80 < limit * len(order):
            entries = self.entries
            return heapq.nsmallest(limit, paths, key=lambda p: _name_key(entries[p]))
        out: list[str] = []
        for path in order:
            if path in paths:
                out.append(path)
                if len(out) >= limit:
                    break
        return out

    def duplicate_hashes(self) -> list[str]:
        """SHA256s that more than one file has (sorted)."""
        return sorted(sha for sha, found in self._by_sha.items() if isinstance(found, list) and len(found) > 1)

    def query(self, q: ListQuery, usage: UsageSource | None = None) -> list[str]:
        """Paths matching ``q`` in its sort order (memoised until the next change, of the
        index or, for the usage sorts and filter, of ``usage``).

        Structured filters are set intersections over inverted indexes (C speed); only
        the text search looks at each remaining entry, through a tight comprehension.
        A descending result is the ascending one read backwards (see ``page``).
        """
        paths = self._ascending(q, usage)
        return paths[::-1] if q.descending else paths

    def page(self, q: ListQuery, start: int, size: int, usage: UsageSource | None = None) -> tuple[list[str], int]:
        """The paths of one page of ``q`` and the total, without copying the whole result."""
        paths = self._ascending(q, usage)
        total = len(paths)
        if not q.descending:
            return paths[start : start + size], total
        hi = max(0, total - start)
        return paths[max(0, hi - size) : hi][::-1], total

    def _ascending(self, q: ListQuery, usage: UsageSource | None = None) -> list[str]:
        key: Any = q if not q.descending else _ascending_query(q)
        cutoff = 0.0
        if q.uses_usage:
            usage = usage or NO_USAGE
            if q.unused_days is not None:
                # "the last N days" moves with the clock: a memoised answer lasts a minute
                cutoff = time.time() - q.unused_days * DAY_SECONDS
                key = (key, usage.version, int(cutoff // 60))
            else:
                key = (key, usage.version)
        hit = self._memo.get(key)
        if hit is not None:
            self._memo.move_to_end(key)
            return hit
        order = self._usage_order(q.sort_key, usage) if q.sort_key in USAGE_SORTS else self.order(q.sort_key)
        candidates, exclude = self._candidates(q)
        if q.unused_days is not None:
            recent = self._used_since(usage, cutoff)
            if recent:
                exclude = (set(exclude) | recent) if exclude else recent
        if candidates is None and q.search.strip():
            hits = self._search_everything(q)
            if hits is not None:
                # the search first, over the texts as they lie (no per-path look-up), then
                # the few hits put in order
                if exclude:
                    hits = [p for p in hits if p not in exclude]
                paths = self._in_order(hits, order, q.sort_key)
                self._remember(key, paths)
                return paths
        if candidates is None:
            paths = [p for p in order if p not in exclude] if exclude else order
        else:
            if exclude:
                candidates = candidates - exclude
            # few (a tag, a folder, the favourites): sorted by their keys, not a pass over all
            paths = self._in_order(candidates, order, q.sort_key) if candidates else []
        if q.search.strip():
            paths = self._search_filter(q, paths)
        if paths is not order:
            self._remember(key, paths)
        return paths

    def _paths_of_hashes(self, shas: Iterable[str]) -> Iterator[str]:
        by_sha = self._by_sha
        for sha in shas:
            found = by_sha.get(sha)
            if found is None:
                continue
            if isinstance(found, list):
                yield from found
            else:
                yield found

    def _used_since(self, usage: UsageSource, cutoff: float) -> set[str]:
        """Paths of the models used at or after ``cutoff`` (epoch seconds)."""
        return set(self._paths_of_hashes(sha for sha, u in usage.all().items() if u.last_used >= cutoff))

    def _usage_order(self, sort_key: str, usage: UsageSource) -> list[str]:
        """Paths ascending by use (``usage``: count, ``last_used``: time), so that read
        backwards (the default, descending) the most used / most recent come first, ties and
        the never-used after them by name. Built from the used models only plus one pass
        over the name order, memoised per index and usage version."""
        stamp = (self.version, usage.version)
        known = self._usage_orders.get(sort_key)
        if known is not None and known[0] == stamp:
            return known[1]
        records = usage.all()
        entries = self.entries
        used: list[tuple[float, str, str]] = []
        for sha, record in records.items():
            value = record.count if sort_key == "usage" else record.last_used
            if not value:
                continue
            for path in self._paths_of_hashes((sha,)):
                entry = entries.get(path)
                if entry is not None:
                    used.append((-value, _name_key(entry), path))
        used.sort()
        names = self._orders["name"]
        if used:
            placed = {path for _, _, path in used}
            first = [path for _, _, path in used]
            first += [p for p in names if p not in placed]
        else:
            first = list(names)
        first.reverse()
        self._usage_orders[sort_key] = (stamp, first)
        return first

    def _remember(self, key: Any, paths: list[str]) -> None:
        if len(paths) > MEMO_BUDGET // 4:
            return
        self._memo[key] = paths
        self._memo_size += len(paths)
        while self._memo_size > MEMO_BUDGET or len(self._memo) > 64:
            _, dropped = self._memo.popitem(last=False)
            self._memo_size -= len(dropped)

    def _candidates(self, q: ListQuery) -> tuple[set[str] | None, Collection[str]]:
        """The paths passing every structured filter (None for "all"), and those to leave out."""
        sets: list[set[str]] = []
        if q.hash:
            sets.append(set(self.paths_by_hash(q.hash.casefold())))
        if q.favorites_only:
            sets.append(self.favorites)
        if q.has_update:
            sets.append(q.update_paths)  # type: ignore[arg-type]
        if q.base_models:
            found = [self.by_base_model.get(b, set()) for b in q.base_models]
            sets.append(found[0] if len(found) == 1 else set().union(*found))
        if q.model_root is not None or (q.folder is not None and (q.folder != "" or not q.recursive)):
            sets.append(self._folder_set(q))
        if q.tags_include:
            tag_sets = [self.by_tag.get(t.casefold(), set()) for t in q.tags_include]
            if len(tag_sets) == 1:
                sets.append(tag_sets[0])
            else:
                sets.append(set.intersection(*tag_sets) if q.tag_logic_all else set().union(*tag_sets))
        exclude: Collection[str] = ()
        if q.tags_exclude:
            exclude = set().union(*(self.by_tag.get(t.casefold(), set()) for t in q.tags_exclude))
        if not q.include_excluded and self.excluded:
            exclude = (exclude | self.excluded) if exclude else self.excluded
        if not sets:
            return None, exclude
        sets.sort(key=len)
        result = sets[0]
        for other in sets[1:]:
            result = result & other
        return result, exclude

    def _folder_set(self, q: ListQuery) -> set[str]:
        folder = (q.folder or "").strip("/")
        prefix = folder + "/"
        found: list[set[str]] = []
        for (root, name), paths in self.by_folder.items():
            if q.model_root is not None and root != q.model_root:
                continue
            if q.folder is None or name == folder or (q.recursive and (folder == "" or name.startswith(prefix))):
                found.append(paths)
        if len(found) == 1:
            return found[0]
        return set().union(*found) if found else set()

    def _search_everything(self, q: ListQuery) -> list[str] | None:
        """Paths whose default search text matches every token of ``q`` (any order), or
        None when ``q`` searches other fields (``_search_filter`` does those)."""
        if not (q.search_filename and q.search_modelname and q.search_tags) or q.search_creator or q.search_trigger_words:
            return None
        tokens = q.search.casefold().split()
        texts = self._search_texts()
        if q.fuzzy:  # a pattern over a whole block is slower than over each text
            matches = [_fuzzy_pattern(t).search for t in tokens]
            first_match = matches[0]
            hits = [p for p, text in texts.items() if first_match(text)]
            for match in matches[1:]:
                hits = [p for p in hits if match(texts[p])]
            return hits
        first = tokens[0]
        hits = []
        for b, block in enumerate(self._blocks):
            if block:
                hits += self._block_hits(b, block, first)
        for token in tokens[1:]:
            hits = [p for p in hits if token in texts[p]]
        return hits

    def _block_hits(self, b: int, block: list[str], token: str, *, name_only: bool = False) -> list[str]:
        """The paths of block ``b`` whose text (``name_only``: its file name) holds ``token``
        (no white space or NUL in it: no match spans two texts of the join, or two fields)."""
        joined = self._joined[b]
        if joined is None:
            joined = self._join(b)
        i = joined.find(token)
        if i < 0:
            return []
        starts = self._starts[b]
        found: list[str] = []
        find, locate, last = joined.find, bisect.bisect_right, len(starts) - 1
        while i >= 0:
            k = locate(starts, i) - 1
            # the first match in a text is its earliest: past the name, the name has none
            if not name_only or i < find("\x00", starts[k]):
                found.append(block[k])
            i = find(token, starts[k + 1]) if k < last else -1
        return found

    def _join(self, b: int) -> str:
        texts = self._search_texts()
        parts = [texts[p] for p in self._blocks[b]]
        starts = array("l")
        at = 0
        for part in parts:
            starts.append(at)
            at += len(part) + 1
        self._starts[b] = starts
        joined = self._joined[b] = "\n".join(parts)
        return joined

    def _in_order(self, paths: Collection[str], order: list[str], sort_key: str) -> list[str]:
        """``paths`` (distinct) in the order of ``order`` (the ascending order of ``sort_key``)."""
        if not paths:
            return []
        key_fn = SORT_KEYS.get(sort_key)
        if key_fn is not None and len(paths) * 40 < len(order):
            # few: their keys (microseconds each) beat a pass over the whole order
            entries = self.entries
            return sorted(paths, key=lambda p: key_fn(entries[p]))
        wanted = paths if isinstance(paths, (set, frozenset)) else set(paths)
        return [p for p in order if p in wanted]

    def _search_filter(self, q: ListQuery, paths: list[str]) -> list[str]:
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
            texts = self._search_texts()
        else:
            entries = self.entries
            texts = {p: "\x00".join(_field_text(entries[p], f) for f in fields) for p in paths}
        if q.fuzzy:
            # every token's letters in order, possibly apart, within one word
            patterns = [_fuzzy_pattern(t) for t in tokens]
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


def _fuzzy_pattern(token: str) -> re.Pattern[str]:
    """Every letter of ``token`` in order, possibly apart, within one word."""
    return re.compile("[^\\x00\\s]*?".join(re.escape(ch) for ch in token))


def _ascending_query(q: ListQuery) -> ListQuery:
    from dataclasses import replace

    return replace(q, descending=False)


def _block_of(path: str) -> int:
    """The text block of ``path`` (its hash: a path stays in one block for the process's life)."""
    return hash(path) % TEXT_BLOCKS


def _merged_order(
    kept: list[str], extra: list[str], entries: Mapping[str, ModelEntry], key_fn: Callable[[ModelEntry], str]
) -> list[str]:
    """``kept`` (in ``key_fn`` order) with ``extra`` placed in it, as sorting them all would
    (keys are unique). Keys are made for ``extra`` and the kept paths a binary search probes,
    where a sort of all made one per path (20 MiB at 100,000 models, the peak of a reconcile
    of 5,000 changes); an ``extra`` past a quarter of ``kept`` is sorted with it."""
    if len(extra) * _MERGE_SHARE > len(kept):
        return _sorted_paths(kept + extra, entries, key_fn)
    key_of: Callable[[str], str] = lambda p: key_fn(entries[p])  # noqa: E731
    out: list[str] = []
    start = 0
    for key, path in sorted(zip(map(key_of, extra), extra)):
        at = bisect.bisect_right(kept, key, start, key=key_of)
        out += kept[start:at]
        out.append(path)
        start = at
    out += kept[start:]
    return out


def _sorted_paths(paths: list[str], entries: Mapping[str, ModelEntry], key_fn: Callable[[ModelEntry], str]) -> list[str]:
    """``paths`` (the entries' own string objects, which the result shares) sorted by
    ``key_fn``: the Python keys are built first, then sorted in slices and merged, so the
    GIL can switch throughout (one C sort of 100,000 strings held it for 100 ms or more)."""
    return sorted_by(paths, [key_fn(entries[p]) for p in paths])
