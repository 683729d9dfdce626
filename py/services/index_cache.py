"""The persistent cache: last known entries and computed hashes, in one SQLite file.

Owns the schema and every SQL statement; all of them run on one dedicated worker thread
(SQLite connections are thread-bound), so nothing here blocks the event loop. A cache
whose schema version differs from ours is discarded, never migrated: it is only a cache.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from .model_records import FileStamp, HashStatus, MetadataStatus, ModelEntry, ModelType

_log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = "3"
_ENTRY_FIELDS = (
    "model_type", "file_path", "root", "folder", "file_name", "extension", "sub_type",
    "model_name", "sha256", "autov2", "autov3", "hash_status", "base_model", "preview_path",
    "preview_nsfw_level", "tags", "trigger_words", "favorite", "notes", "exclude",
    "from_civitai", "civitai", "creator", "usage_tips", "metadata_status", "sidecar_mtime_ns",
)


def default_cache_dir() -> Path:
    env = os.environ.get("LM_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("comfyui-model-library", appauthor=False))


def entry_to_row(entry: ModelEntry) -> tuple[str, str, str]:
    values: list[Any] = []
    for name in _ENTRY_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, (ModelType, HashStatus, MetadataStatus)):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        values.append(value)
    values.append([entry.stamp.size, entry.stamp.mtime_ns, entry.stamp.inode])
    # ASCII JSON: a file name that is not valid UTF-8 (surrogate-escaped by os.fsdecode)
    # survives the round trip; SQLite text must be valid UTF-8
    return row_key(entry.file_path), entry.model_type.value, json.dumps(values, separators=(",", ":"))


def row_key(path: str) -> str:
    """The primary key of a path: itself, or an escaped form when it is not valid UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(path)
    return path


def entry_from_row(data: str) -> ModelEntry:
    values = json.loads(data)
    fields = dict(zip(_ENTRY_FIELDS, values))
    size, mtime_ns, inode = values[len(_ENTRY_FIELDS)]
    fields["model_type"] = ModelType(fields["model_type"])
    fields["hash_status"] = HashStatus(fields["hash_status"])
    fields["metadata_status"] = MetadataStatus(fields["metadata_status"])
    fields["tags"] = tuple(fields["tags"])
    fields["trigger_words"] = tuple(fields["trigger_words"])
    return ModelEntry(stamp=FileStamp(size=size, mtime_ns=mtime_ns, inode=inode), **fields)


class IndexCache:
    """SQLite-backed store of entries (per model type), hashes and small key/value data."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError:
            _log.warning("index cache %s is corrupt; starting a new one", self.path)
            self.path.unlink(missing_ok=True)
            self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            conn.executescript(
                """
                DROP TABLE IF EXISTS entries;
                DROP TABLE IF EXISTS hashes;
                DROP TABLE IF EXISTS kv;
                """
            )
        conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                path TEXT PRIMARY KEY, model_type TEXT NOT NULL, data TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS entries_type ON entries(model_type);
            CREATE TABLE IF NOT EXISTS hashes (
                inode INTEGER, size INTEGER, mtime_ns INTEGER, sha256 TEXT NOT NULL,
                autov2 TEXT NOT NULL, PRIMARY KEY (inode, size, mtime_ns));
            CREATE TABLE IF NOT EXISTS kv (
                namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key));
            """
        )
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        return conn

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(_close)
        self._executor.shutdown(wait=True)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "IndexCache.open() was not awaited"
        return self._conn

    # entries -----------------------------------------------------------------
    async def load_entries(self, model_type: ModelType) -> dict[str, ModelEntry]:
        def _load() -> dict[str, ModelEntry]:
            out: dict[str, ModelEntry] = {}
            rows = self.conn.execute("SELECT data FROM entries WHERE model_type=?", (model_type.value,))
            for (data,) in rows:
                try:
                    entry = entry_from_row(data)
                except (ValueError, KeyError, TypeError):
                    continue  # a row we cannot read is simply re-scanned
                out[entry.file_path] = entry
            return out

        return await self._run(_load)

    async def upsert_entries(self, entries: Iterable[ModelEntry]) -> None:
        rows = [entry_to_row(e) for e in entries]
        if not rows:
            return

        def _write() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)

        await self._run(_write)

    async def delete_entries(self, paths: Iterable[str]) -> None:
        keys = [(row_key(p),) for p in paths]
        if not keys:
            return

        def _delete() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("DELETE FROM entries WHERE path=?", keys)

        await self._run(_delete)

    async def replace_entries(self, model_type: ModelType, entries: Iterable[ModelEntry]) -> None:
        """Make the stored entries of one type exactly ``entries`` (after a full scan)."""
        rows = [entry_to_row(e) for e in entries]

        def _replace() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute("DELETE FROM entries WHERE model_type=?", (model_type.value,))
                self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)

        await self._run(_replace)

    # hashes ------------------------------------------------------------------
    async def load_hashes(self) -> dict[tuple[int, int, int], tuple[str, str]]:
        def _load() -> dict[tuple[int, int, int], tuple[str, str]]:
            rows = self.conn.execute("SELECT inode, size, mtime_ns, sha256, autov2 FROM hashes")
            return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}

        return await self._run(_load)

    async def put_hash(self, stamp: FileStamp, sha256: str, autov2: str) -> None:
        def _put() -> None:
            self.conn.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                (stamp.inode, stamp.size, stamp.mtime_ns, sha256, autov2),
            )

        await self._run(_put)

    # small key/value data (negative caches, download history, ...) ------------
    async def kv_get_all(self, namespace: str) -> dict[str, Any]:
        def _get() -> dict[str, Any]:
            rows = self.conn.execute("SELECT key, value FROM kv WHERE namespace=?", (namespace,))
            return {k: json.loads(v) for k, v in rows}

        return await self._run(_get)

    async def kv_put(self, namespace: str, key: str, value: Any) -> None:
        text = json.dumps(value)

        def _put() -> None:
            self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?)", (namespace, key, text))

        await self._run(_put)

    async def kv_delete(self, namespace: str, key: str) -> None:
        def _delete() -> None:
            self.conn.execute("DELETE FROM kv WHERE namespace=? AND key=?", (namespace, key))

        await self._run(_delete)
