"""Persists the CivitAI "not found" cache in the SQLite key/value table across restarts.

Owns the namespace and the write-behind of changes (coalesced into one flush task); it must
not decide what is "not found" (``NotFoundCache`` does) nor talk to CivitAI.
"""
from __future__ import annotations

import asyncio
import logging

from ..library.index_cache import IndexCache
from .civitai_not_found_cache import NotFoundCache

_log = logging.getLogger(__name__)

NAMESPACE = "civitai_not_found"


class NotFoundStore:
    """Loads the cache at start, queues every change, writes them in the background."""

    def __init__(self, *, cache: IndexCache, namespace: str = NAMESPACE) -> None:
        self._cache = cache
        self._namespace = namespace
        self._added: dict[str, float] = {}
        self._removed: set[str] = set()
        self._flush_task: asyncio.Task[None] | None = None
        self._open = False

    def on_change(self, added: dict[str, float], removed: list[str]) -> None:
        """``NotFoundCache`` hook: remember the change and schedule a flush (event loop thread)."""
        for key, recorded in added.items():
            self._added[key] = recorded
            self._removed.discard(key)
        for key in removed:
            self._added.pop(key, None)
            self._removed.add(key)
        if self._open and (self._flush_task is None or self._flush_task.done()):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (tests calling the cache directly): flushed at close
            self._flush_task = loop.create_task(self._flush(), name="lm-civitai-not-found-flush")

    async def load_into(self, target: NotFoundCache) -> None:
        """Merge the persisted entries into ``target`` (expired ones dropped) and start writing."""
        try:
            stored = await self._cache.kv_get_all(self._namespace)
        except Exception:  # a broken table must not stop the library from starting
            _log.exception("cannot load the CivitAI not-found cache")
            stored = {}
        target.load({k: float(v) for k, v in stored.items() if isinstance(v, (int, float))})
        self._open = True
        if self._added or self._removed:
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._added or self._removed:
            added, removed = self._added, self._removed
            self._added, self._removed = {}, set()
            try:
                for key, recorded in added.items():
                    await self._cache.kv_put(self._namespace, key, recorded)
                for key in removed:
                    await self._cache.kv_delete(self._namespace, key)
            except Exception:
                _log.exception("cannot persist the CivitAI not-found cache")
                return

    async def close(self) -> None:
        """Write what is still queued (call before the SQLite cache closes)."""
        task = self._flush_task
        if task is not None and not task.done():
            await task
        if self._open:
            await self._flush()
        self._open = False
