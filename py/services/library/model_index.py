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
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model_records import ModelEntry

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
DEFAULT_DIRECTION = {"name": "asc", "date": "desc", "size": "desc"}
# below this many changed entries an order is updated by bisection, above it re-sorted
_BISECT_LIMIT = 64
# memoised results may hold this many paths in all (8 bytes each)
MEMO_BUDGET = 1_000_000


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


def search_text(entry: ModelEntry) -> str:
    """The default search scope of an entry: file name, model name, tags (casefolded)."""
    return f"{entry.file_name.casefold()}\x00{entry.model_name.casefold()}\x00{' '.join(entry.tags).casefold()}"


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
        self.entries: dict[str, ModelEntry] = {}
        self._texts: dict[str, str] = {}
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
        self._memo: OrderedDict[ListQuery, list[str]] = OrderedDict()
        self._memo_size = 0

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> ModelEntry | None:
        return self.entries.get(path)

    @property
    def hash_index(self) -> HashLookup:
        return HashLookup(self)

    # building ------------------------------------------------------------------
    @classmethod
    def build(cls, entries: Iterable[ModelEntry], orders: Mapping[str, list[str]] | None = None) -> "ModelIndex":
        """A new index of ``entries`` (blocking: run it in a worker thread for big batches).

        ``orders`` are sorted orders known to be right (a cache's), used as they are when
        they hold exactly the entries' paths; otherwise they are sorted here.
        """
        index = cls()
        unique = {e.file_path: e for e in entries}
        for entry in unique.values():
            index._insert_maps(entry, search_text(entry))
        index._shas = sorted(e.sha256 for e in unique.values() if e.sha256)
        for name, key_fn in SORT_KEYS.items():
            known = orders.get(name) if orders else None
            if known is not None and len(known) <= len(unique) and all(p in unique for p in known):
                # the cache's lists hold copies of the path strings: use the entries' own
                order = [unique[p].file_path for p in known]
                placed = set(known) if len(known) < len(unique) else unique
                missing = [p for p in index.entries if p not in placed]
                if len(missing) <= max(_BISECT_LIMIT, len(unique) // 20):
                    for path in missing:  # entries the cache's journal changed since its snapshot
                        index._order_insert(order, unique[path], key_fn)
                    index._orders[name] = order
                    continue
            index._orders[name] = _sorted_paths(list(index.entries), index.entries, key_fn)
        return index

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
            for name, key_fn in SORT_KEYS.items():
                keep = [p for p in self._orders[name] if p not in touched]
                keep += [p for p in changed_paths if p in snapshot]
                prepared.orders[name] = _sorted_paths(keep, snapshot, key_fn)
            prepared.shas = sorted(e.sha256 for e in snapshot.values() if e.sha256)
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
        self.entries[path] = entry
        self._texts[path] = text
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
        text = self._texts.pop(path, "")
        self.favorites.discard(path)
        self.excluded.discard(path)
        if entry.sha256:
            _multi_discard(self._by_sha, entry.sha256, path)
            i = bisect.bisect_left(self._shas, entry.sha256) if shas else -1
            if 0 <= i < len(self._shas) and self._shas[i] == entry.sha256:
                del self._shas[i]
        if entry.autov3:
            _multi_discard(self._by_autov3, entry.autov3, path)
        _multi_discard(self._by_stem, text[: text.find("\x00")] if text else entry.file_name.casefold(), path)
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

    def duplicate_hashes(self) -> list[str]:
        """SHA256s that more than one file has (sorted)."""
        return sorted(sha for sha, found in self._by_sha.items() if isinstance(found, list) and len(found) > 1)

    def query(self, q: ListQuery) -> list[str]:
        """Paths matching ``q`` in its sort order (memoised until the next change).

        Structured filters are set intersections over inverted indexes (C speed); only
        the text search looks at each remaining entry, through a tight comprehension.
        A descending result is the ascending one read backwards (see ``page``).
        """
        paths = self._ascending(q)
        return paths[::-1] if q.descending else paths

    def page(self, q: ListQuery, start: int, size: int) -> tuple[list[str], int]:
        """The paths of one page of ``q`` and the total, without copying the whole result."""
        paths = self._ascending(q)
        total = len(paths)
        if not q.descending:
            return paths[start : start + size], total
        hi = max(0, total - start)
        return paths[max(0, hi - size) : hi][::-1], total

    def _ascending(self, q: ListQuery) -> list[str]:
        key = q if not q.descending else _ascending_query(q)
        hit = self._memo.get(key)
        if hit is not None:
            self._memo.move_to_end(key)
            return hit
        order = self.order(q.sort_key)
        candidates, exclude = self._candidates(q)
        if candidates is None:
            paths = [p for p in order if p not in exclude] if exclude else order
        else:
            if exclude:
                candidates = candidates - exclude
            paths = [p for p in order if p in candidates] if candidates else []
        if q.search.strip():
            paths = self._search_filter(q, paths)
        if paths is not order:
            self._remember(key, paths)
        return paths

    def _remember(self, key: ListQuery, paths: list[str]) -> None:
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
            texts = self._texts
        else:
            entries = self.entries
            texts = {p: "\x00".join(_field_text(entries[p], f) for f in fields) for p in paths}
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


def _ascending_query(q: ListQuery) -> ListQuery:
    from dataclasses import replace

    return replace(q, descending=False)


def _sorted_paths(paths: list[str], entries: Mapping[str, ModelEntry], key_fn: Callable[[ModelEntry], str]) -> list[str]:
    """``paths`` (the entries' own string objects, which the result shares) sorted by
    ``key_fn``: the Python keys are built first, where the GIL can switch, then one C sort
    of strings through ``list.__getitem__`` holds it only for the sort itself."""
    keys = [key_fn(entries[p]) for p in paths]
    return [paths[i] for i in sorted(range(len(paths)), key=keys.__getitem__)]
