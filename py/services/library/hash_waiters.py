"""Futures that resolve when the background hash queue finishes a given key.

Owns only the waiting side ("tell me when this file is hashed"), so a request that needs a
hash now can bump the file in the one hash queue and await it instead of hashing it twice;
it must not hash, nor decide where hashes are stored.
"""
from __future__ import annotations

import asyncio


class HashWaiters:
    """Key → futures; ``resolve(key)`` (called from the queue's ``on_done``) wakes every waiter."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._finishing: set[str] = set()

    def mark_finishing(self, key: str) -> None:
        """The queue hashed ``key`` and is recording the result (the index is not updated yet)."""
        self._finishing.add(key)

    def is_finishing(self, key: str) -> bool:
        """True between ``mark_finishing`` and ``resolve``: wait, do not submit the file again."""
        return key in self._finishing

    def register(self, key: str) -> asyncio.Future[bool]:
        """A future that becomes True (hashed) or False (hashing failed) for ``key``.

        Register before submitting the file, so a fast hash cannot finish unseen.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        return future

    def forget(self, key: str, future: asyncio.Future[bool]) -> None:
        """Drop a waiter that gave up (timeout, cancellation)."""
        futures = self._waiting.get(key)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiting[key]

    def resolve(self, key: str, ok: bool) -> None:
        self._finishing.discard(key)
        for future in self._waiting.pop(key, []):
            if not future.done():
                future.set_result(ok)

    def __len__(self) -> int:
        return sum(len(v) for v in self._waiting.values())
