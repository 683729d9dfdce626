"""Per-model locks: one writer at a time for a model's files and sidecar, across processes.

Every service that rewrites a model's sidecar or moves its files takes the lock of that
model's path, so parallel edits (tags, rename, CivitAI refresh) never lose updates: first
an asyncio lock per path (tasks of this process queue fairly), then the model's byte of
its folder's ``.lm-lock`` (other processes and hosts sharing the library). It must not
read or write sidecars itself; callers re-read what they change inside ``hold``.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterable

from ...errors import ConflictError
from .cross_process_locks import CrossProcessLocks, Grant, LockSlot

# Another process's edit lasts milliseconds (a sidecar rewrite) to seconds (a move across
# disks on a slow share); past this the holder is presumed stuck and the caller told so.
DEFAULT_WAIT_SECONDS = 30.0
_FIRST_BACKOFF = 0.005
_MAX_BACKOFF = 0.25


class ModelLocks:
    """Locks keyed by model path, created on demand and dropped when idle."""

    def __init__(self, *, shared: CrossProcessLocks | None = None, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._shared = shared or CrossProcessLocks.of_process()
        self._wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self, *paths: str) -> AsyncIterator[None]:
        """Hold the locks of every path (in sorted order, so two holders never deadlock).

        Raises ``ConflictError`` when another process keeps a model locked for longer than
        ``wait_seconds``. Creates ``<folder>/.lm-lock`` while held (removed again when idle).
        """
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
            grant = await self._acquire_shared(keys) if keys else Grant(slots=())
            try:
                yield
            finally:
                if grant.slots:
                    # shielded: a cancelled holder still gives the other hosts their models back
                    await asyncio.shield(asyncio.ensure_future(asyncio.to_thread(self._shared.release, grant)))
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

    async def _acquire_shared(self, paths: list[str]) -> Grant:
        """All slots or none, retried with jittered back-off: holders that want the same
        models in different orders (on different hosts) never wait for each other forever."""
        deadline = time.monotonic() + self._wait_seconds
        delay = _FIRST_BACKOFF
        while True:
            attempt = asyncio.ensure_future(asyncio.to_thread(self._shared.try_acquire, paths))
            try:
                result = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                attempt.add_done_callback(self._release_abandoned)
                raise
            if isinstance(result, Grant):
                return result
            if time.monotonic() >= deadline:
                raise ConflictError(_busy_message(result))
            await asyncio.sleep(random.uniform(delay / 2, delay * 1.5))
            delay = min(delay * 2, _MAX_BACKOFF)

    def _release_abandoned(self, attempt: asyncio.Future) -> None:
        """A cancelled holder's attempt that succeeded after all: give the slots back."""
        if attempt.cancelled() or attempt.exception() is not None:
            return
        result = attempt.result()
        if isinstance(result, Grant):
            asyncio.get_running_loop().run_in_executor(None, self._shared.release, result)


def _busy_message(slot: LockSlot) -> str:
    folder = os.path.basename(os.path.dirname(slot.lock_file)) or os.path.dirname(slot.lock_file)
    return f"'{slot.label}' (in '{folder}') is being changed by another process; try again in a moment"
