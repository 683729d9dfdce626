"""How often, and when last, each model was used: one row per SHA256 in ``usage.sqlite3``
beside the index cache, and all of it in memory for listings (100k rows are a few MB).

Owns that table and its one writer thread; it must not decide what a prompt used (the prompt
hook does) nor touch the user's folders. Its own file, not a table of the index cache: the
index cache is thrown away when its schema changes, and this history must not be.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, TypeVar

from ..shared.private_files import create_private_file

__all__ = ["Usage", "UsageHistory"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    sha256 TEXT PRIMARY KEY, count INTEGER NOT NULL, first_used REAL NOT NULL, last_used REAL NOT NULL);
"""


@dataclass(slots=True, frozen=True)
class Usage:
    count: int
    first_used: float  # epoch seconds
    last_used: float


class UsageHistory:
    """The usage of every model ever used here, by SHA256."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-usage")
        self._conn: sqlite3.Connection | None = None
        self._usage: dict[str, Usage] = {}
        self.version = 0  # bumped on every change: listings memoised on it see new usage

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        try:
            self._usage = await self._run(self._open)
        except (sqlite3.Error, OSError) as exc:
            _log.warning("usage history %s cannot be read (%s); usage is counted in memory only", self.path, exc)
        self.version += 1

    def _open(self) -> dict[str, Usage]:
        create_private_file(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        self._conn = conn
        rows = conn.execute("SELECT sha256, count, first_used, last_used FROM usage")
        return {sha: Usage(count, first, last) for sha, count, first, last in rows}

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)
        self._executor.shutdown(wait=True)

    # reading ------------------------------------------------------------------------
    def of(self, sha256: str) -> Usage | None:
        return self._usage.get(sha256) if sha256 else None

    def all(self) -> Mapping[str, Usage]:
        return MappingProxyType(self._usage)

    # recording ----------------------------------------------------------------------
    async def record(self, hashes: Iterable[str], *, when: float | None = None) -> None:
        """One use of each model (a hash named twice in one prompt counts once)."""
        now = time.time() if when is None else when
        changed = []
        for sha in dict.fromkeys(h.lower() for h in hashes if h):
            old = self._usage.get(sha)
            usage = Usage(old.count + 1, old.first_used, now) if old else Usage(1, now, now)
            self._usage[sha] = usage
            changed.append((sha, usage))
        if not changed:
            return
        self.version += 1
        try:
            await self._run(self._store, changed)
        except (sqlite3.Error, OSError) as exc:  # the counts stay in memory until the next start
            _log.warning("usage history %s: could not store %d uses (%s)", self.path, len(changed), exc)

    def _store(self, changed: list[tuple[str, Usage]]) -> None:
        if self._conn is None:
            return
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany(
                "INSERT OR REPLACE INTO usage (sha256, count, first_used, last_used) VALUES (?, ?, ?, ?)",
                [(sha, u.count, u.first_used, u.last_used) for sha, u in changed],
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
