"""What update checks learnt and what the user ignores: ``updates.sqlite3`` beside the index
cache, all of it in memory for listings (one row per CivitAI model the library has).

Owns that file and its one writer thread; it must not decide what counts as an update (the
update check service does) nor touch the user's folders. Its own file, not a table of the
index cache: the index cache is thrown away when its schema changes, and an ignore list the
user built must not be.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, TypeVar

from ..shared.private_files import create_private_file
from .update_records import RemoteModel, RemoteVersion

__all__ = ["UpdateStore"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_models (
    model_id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
    checked_at REAL NOT NULL, versions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ignored_models (model_id INTEGER PRIMARY KEY, ignored_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ignored_versions (
    version_id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, ignored_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class UpdateStore:
    """Remote versions per model, the ignore lists and the time of the last full check.

    Reads are from memory; every change bumps ``version`` and is written through one thread.
    A file that cannot be opened leaves the store working in memory (logged).
    """

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-updates")
        self._conn: sqlite3.Connection | None = None
        self._models: dict[int, RemoteModel] = {}
        self._ignored_models: set[int] = set()
        self._ignored_versions: dict[int, int] = {}  # version id -> model id
        self._meta: dict[str, str] = {}
        self.version = 0

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # lifetime -----------------------------------------------------------------------
    async def open(self) -> None:
        try:
            await self._run(self._open)
        except (sqlite3.Error, OSError, ValueError) as exc:
            _log.warning("update store %s cannot be read (%s); update checks are kept in memory only", self.path, exc)
        self.version += 1

    def _open(self) -> None:
        create_private_file(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        self._conn = conn
        for mid, name, kind, checked_at, versions in conn.execute(
            "SELECT model_id, name, type, checked_at, versions FROM remote_models"
        ):
            try:
                rows = json.loads(versions)
                parsed = tuple(RemoteVersion.from_row(mid, row) for row in rows if isinstance(row, dict))
            except (ValueError, KeyError, TypeError):
                _log.warning("update store: unreadable versions of model %s skipped", mid)
                continue
            self._models[mid] = RemoteModel(model_id=mid, name=name, type=kind, versions=parsed, checked_at=checked_at)
        self._ignored_models = {mid for (mid,) in conn.execute("SELECT model_id FROM ignored_models")}
        self._ignored_versions = dict(conn.execute("SELECT version_id, model_id FROM ignored_versions"))
        self._meta = dict(conn.execute("SELECT key, value FROM meta"))

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)
        self._executor.shutdown(wait=True)

    # reading ------------------------------------------------------------------------
    def models(self) -> Mapping[int, RemoteModel]:
        return MappingProxyType(self._models)

    def model(self, model_id: int) -> RemoteModel | None:
        return self._models.get(model_id)

    def is_model_ignored(self, model_id: int) -> bool:
        return model_id in self._ignored_models

    def ignored_versions(self) -> Mapping[int, int]:
        return MappingProxyType(self._ignored_versions)

    def ignored_models(self) -> frozenset[int]:
        return frozenset(self._ignored_models)

    @property
    def last_check_at(self) -> float | None:
        raw = self._meta.get("last_check_at")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    # writing ------------------------------------------------------------------------
    async def save_models(self, models: Iterable[RemoteModel]) -> None:
        """Replace what is known of these models (each with its ``checked_at``)."""
        batch = list(models)
        if not batch:
            return
        for model in batch:
            self._models[model.model_id] = model
        self.version += 1
        await self._write(
            "INSERT OR REPLACE INTO remote_models (model_id, name, type, checked_at, versions) VALUES (?, ?, ?, ?, ?)",
            [(m.model_id, m.name, m.type, m.checked_at, m.versions_json()) for m in batch],
        )

    async def set_model_ignored(self, model_id: int, ignored: bool) -> bool:
        """Ignore (or stop ignoring) every update of a model; True when that changed anything."""
        if ignored == (model_id in self._ignored_models):
            return False
        if ignored:
            self._ignored_models.add(model_id)
            sql, rows = "INSERT OR REPLACE INTO ignored_models (model_id, ignored_at) VALUES (?, ?)", [(model_id, time.time())]
        else:
            self._ignored_models.discard(model_id)
            sql, rows = "DELETE FROM ignored_models WHERE model_id = ?", [(model_id,)]
        self.version += 1
        await self._write(sql, rows)
        return True

    async def set_version_ignored(self, version_id: int, model_id: int, ignored: bool) -> bool:
        if ignored == (version_id in self._ignored_versions):
            return False
        if ignored:
            self._ignored_versions[version_id] = model_id
            sql = "INSERT OR REPLACE INTO ignored_versions (version_id, model_id, ignored_at) VALUES (?, ?, ?)"
            rows: list[tuple[Any, ...]] = [(version_id, model_id, time.time())]
        else:
            self._ignored_versions.pop(version_id, None)
            sql, rows = "DELETE FROM ignored_versions WHERE version_id = ?", [(version_id,)]
        self.version += 1
        await self._write(sql, rows)
        return True

    async def set_last_check(self, when: float) -> None:
        self._meta["last_check_at"] = repr(float(when))
        await self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [("last_check_at", repr(float(when)))])

    async def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            await self._run(self._execute, sql, rows)
        except (sqlite3.Error, OSError) as exc:  # kept in memory until the next start
            _log.warning("update store %s: could not write (%s)", self.path, exc)

    def _execute(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self._conn is None:
            return
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany(sql, rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
