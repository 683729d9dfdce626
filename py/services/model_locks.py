"""Per-model locks: one writer at a time for a model's files and sidecar.

Every service that rewrites a model's sidecar or moves its files takes the lock of
that model's path, so parallel edits (tags, rename, CivitAI refresh) never lose updates.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable


class ModelLocks:
    """Async locks keyed by model path, created on demand and dropped when idle."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, *paths: str) -> AsyncIterator[None]:
        """Hold the locks of every path (in sorted order, so two holders never deadlock)."""
        keys = sorted(set(paths))
        for key in keys:
            self._users[key] = self._users.get(key, 0) + 1
            self._locks.setdefault(key, asyncio.Lock())
        acquired: list[asyncio.Lock] = []
        try:
            for key in keys:
                lock = self._locks[key]
                await lock.acquire()
                acquired.append(lock)
            yield
        finally:
            for lock in reversed(acquired):
                lock.release()
            for key in keys:
                self._users[key] -= 1
                if self._users[key] == 0:
                    del self._users[key]
                    self._locks.pop(key, None)

    def hold_many(self, paths: Iterable[str]):
        return self.hold(*paths)
