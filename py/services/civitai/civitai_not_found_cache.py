"""A TTL memory of "CivitAI does not know this" answers, so unknown models are not asked again.

Owns the keys (``hash:<lowercase hash>``, ``version:<id>``, ``model:<id>``) and their
expiry; persistence is the owner's job through ``load``/``export`` and the ``on_change`` hook.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

DEFAULT_NOT_FOUND_TTL = 24 * 3600.0


def hash_key(value: str) -> str:
    return "hash:" + value.strip().lower()


def version_key(version_id: int) -> str:
    return f"version:{int(version_id)}"


def model_key(model_id: int) -> str:
    return f"model:{int(model_id)}"


class NotFoundCache:
    """Remembers when each key was last answered "not found"; an entry lives ``ttl`` seconds.

    Values are wall-clock times (``clock``, default ``time.time``) so an exported dict stays
    meaningful after a restart. ``on_change(added, removed)`` is called after every change
    with the entries added (key → time) and the keys removed, e.g. to upsert into SQLite.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_NOT_FOUND_TTL,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[dict[str, float], list[str]], None] | None = None,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._on_change = on_change
        self._items: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        recorded = self._items.get(key)
        if recorded is None:
            return False
        if self._clock() - recorded >= self.ttl:
            del self._items[key]
            return False
        return True

    def add(self, key: str) -> None:
        self.add_many([key])

    def add_many(self, keys: Iterable[str]) -> None:
        now = self._clock()
        added = {key: now for key in keys}
        if not added:
            return
        self._items.update(added)
        if self._on_change:
            self._on_change(added, [])

    def discard(self, key: str) -> None:
        if self._items.pop(key, None) is not None and self._on_change:
            self._on_change({}, [key])

    def clear(self) -> None:
        removed = list(self._items)
        self._items.clear()
        if removed and self._on_change:
            self._on_change({}, removed)

    def load(self, items: dict[str, float]) -> None:
        """Merge persisted entries (key → time recorded); expired ones are dropped."""
        now = self._clock()
        for key, recorded in items.items():
            if now - float(recorded) < self.ttl:
                self._items[key] = max(float(recorded), self._items.get(key, float("-inf")))

    def export(self) -> dict[str, float]:
        """The live entries (key → time recorded), expired ones pruned."""
        now = self._clock()
        self._items = {k: t for k, t in self._items.items() if now - t < self.ttl}
        return dict(self._items)
