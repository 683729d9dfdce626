"""The in-memory index of one model type: entries, sorted orders, counts and filters.

Owns everything a listing needs so a request costs one filter pass plus the page:
sorted orders are kept per sort key (re-sorted only after a batch of changes, updated
by bisection for single changes), search text is lower-cased once, filter results are
memoised per index version. Pure data structure: no I/O, no asyncio.
"""
from __future__ import annotations

import bisect
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .model_records import ModelEntry

_NATURAL_SPLIT = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """'lora10' sorts after 'lora9'; case-insensitive."""
    parts = _NATURAL_SPLIT.split(text.casefold())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")


SORT_KEYS: dict[str, Callable[[ModelEntry], tuple]] = {
    "name": lambda e: (natural_key(e.display_name), e.file_path),
    "date": lambda e: (e.stamp.mtime_ns, e.file_path),
    "size": lambda e: (e.stamp.size, e.file_path),
}
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
    keys: list[tuple] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    dirty: bool = True


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
        self.version = 0
        self._memo: OrderedDict[tuple, list[str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> ModelEntry | None:
        return self.entries.get(path)

    # mutation ------------------------------------------------------------------
    def add_many(self, entries: Iterable[ModelEntry]) -> None:
        """Add or replace many entries; orders are re-sorted lazily, once."""
        for entry in entries:
            self._remove(entry.file_path, keep_orders=True)
            self._insert(entry)
        for order in self._orders.values():
            order.dirty = True
        self._touch()

    def upsert(self, entry: ModelEntry) -> None:
        """Add or replace one entry, keeping sorted orders by bisection."""
        self._remove(entry.file_path, keep_orders=False)
        self._insert(entry)
        for name, order in self._orders.items():
            if order.dirty:
                continue
            key = SORT_KEYS[name](entry)
            i = bisect.bisect_left(order.keys, key)
            order.keys.insert(i, key)
            order.paths.insert(i, entry.file_path)
        self._touch()

    def remove(self, path: str) -> ModelEntry | None:
        entry = self._remove(path, keep_orders=False)
        self._touch()
        return entry

    def replace_all(self, entries: Iterable[ModelEntry]) -> None:
        self.__init__()  # type: ignore[misc]
        self.add_many(entries)

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
        for h in (entry.sha256, entry.autov2, entry.autov3):
            if h:
                self.hash_index.setdefault(h, set()).add(path)
        for tag in set(t.casefold() for t in entry.tags):
            self.tag_counts[tag] += 1
        if entry.base_model:
            self.base_model_counts[entry.base_model] += 1
        self.folder_counts[(entry.root, entry.folder)] += 1

    def _remove(self, path: str, *, keep_orders: bool) -> ModelEntry | None:
        entry = self.entries.pop(path, None)
        if entry is None:
            return None
        self._search.pop(path, None)
        for h in (entry.sha256, entry.autov2, entry.autov3):
            if h and h in self.hash_index:
                self.hash_index[h].discard(path)
                if not self.hash_index[h]:
                    del self.hash_index[h]
        for tag in set(t.casefold() for t in entry.tags):
            self.tag_counts[tag] -= 1
            if self.tag_counts[tag] <= 0:
                del self.tag_counts[tag]
        if entry.base_model:
            self.base_model_counts[entry.base_model] -= 1
            if self.base_model_counts[entry.base_model] <= 0:
                del self.base_model_counts[entry.base_model]
        key = (entry.root, entry.folder)
        self.folder_counts[key] -= 1
        if self.folder_counts[key] <= 0:
            del self.folder_counts[key]
        if not keep_orders:
            for name, order in self._orders.items():
                if order.dirty:
                    continue
                sort_key = SORT_KEYS[name](entry)
                i = bisect.bisect_left(order.keys, sort_key)
                if i < len(order.keys) and order.paths[i] == path:
                    del order.keys[i]
                    del order.paths[i]
                else:  # should not happen; fall back to a lazy re-sort
                    order.dirty = True
        return entry

    def _touch(self) -> None:
        self.version += 1
        self._memo.clear()

    # reading -------------------------------------------------------------------
    def order(self, sort_key: str) -> list[str]:
        order = self._orders[sort_key]
        if order.dirty:
            key_fn = SORT_KEYS[sort_key]
            pairs = sorted((key_fn(e), p) for p, e in self.entries.items())
            order.keys = [k for k, _ in pairs]
            order.paths = [p for _, p in pairs]
            order.dirty = False
        return order.paths

    def query(self, q: ListQuery) -> list[str]:
        """Paths matching ``q`` in its sort order (memoised until the next change)."""
        memo_key = (q,)
        hit = self._memo.get(memo_key)
        if hit is not None:
            self._memo.move_to_end(memo_key)
            return hit
        paths = self.order(q.sort_key)
        predicate = self._predicate(q)
        if predicate is None:
            result = paths
        else:
            entries = self.entries
            search = self._search
            result = [p for p in paths if predicate(entries[p], search[p])]
        if q.descending:
            result = result[::-1]
        self._memo[memo_key] = result
        if len(self._memo) > 64:
            self._memo.popitem(last=False)
        return result

    def _predicate(self, q: ListQuery) -> Callable[[ModelEntry, _SearchText], bool] | None:
        checks: list[Callable[[ModelEntry, _SearchText], bool]] = []
        if not q.include_excluded:
            checks.append(lambda e, s: not e.exclude)
        if q.hash:
            wanted = self.hash_index.get(q.hash.casefold(), set())
            checks.append(lambda e, s: e.file_path in wanted)
        if q.model_root is not None:
            root = q.model_root
            checks.append(lambda e, s: e.root == root)
        if q.folder is not None and q.folder != "":
            folder = q.folder.strip("/")
            prefix = folder + "/"
            if q.recursive:
                checks.append(lambda e, s: e.folder == folder or e.folder.startswith(prefix))
            else:
                checks.append(lambda e, s: e.folder == folder)
        elif q.folder == "" and not q.recursive:
            checks.append(lambda e, s: e.folder == "")
        if q.base_models:
            bases = frozenset(q.base_models)
            checks.append(lambda e, s: e.base_model in bases)
        if q.favorites_only:
            checks.append(lambda e, s: e.favorite)
        if q.tags_include:
            wanted_tags = frozenset(t.casefold() for t in q.tags_include)
            if q.tag_logic_all:
                checks.append(lambda e, s: wanted_tags <= {t.casefold() for t in e.tags})
            else:
                checks.append(lambda e, s: any(t.casefold() in wanted_tags for t in e.tags))
        if q.tags_exclude:
            unwanted = frozenset(t.casefold() for t in q.tags_exclude)
            checks.append(lambda e, s: not any(t.casefold() in unwanted for t in e.tags))
        if q.search.strip():
            checks.append(self._search_check(q))
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]
        return lambda e, s: all(check(e, s) for check in checks)

    @staticmethod
    def _search_check(q: ListQuery) -> Callable[[ModelEntry, _SearchText], bool]:
        default_scope = q.search_filename and q.search_modelname and q.search_tags and not (
            q.search_creator or q.search_trigger_words
        )
        fields: list[str] = []
        for flag, name in (
            (q.search_filename, "filename"),
            (q.search_modelname, "modelname"),
            (q.search_tags, "tags"),
            (q.search_creator, "creator"),
            (q.search_trigger_words, "triggers"),
        ):
            if flag:
                fields.append(name)
        if not fields:
            return lambda e, s: False

        def text_of(s: _SearchText) -> str:
            if default_scope:
                return s.default
            return "\x00".join(getattr(s, f) for f in fields)

        tokens = q.search.casefold().split()
        if q.fuzzy:
            # every token must appear in order, letters possibly apart, within one word
            patterns = [
                re.compile("[^\\x00\\s]*?".join(re.escape(ch) for ch in token)) for token in tokens
            ]
            return lambda e, s: all(p.search(text_of(s)) for p in patterns)
        if len(tokens) == 1:
            needle = tokens[0]
            return lambda e, s: needle in text_of(s)
        return lambda e, s: all(t in text_of(s) for t in tokens)

    def top_tags(self, limit: int) -> list[tuple[str, int]]:
        return sorted(self.tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    def folders(self) -> list[str]:
        return sorted({folder for (_, folder) in self.folder_counts if folder}, key=natural_key)
