"""The persistent cache: last known entries and computed hashes, in one SQLite file.

Owns the schema and every SQL statement; all of them run on one dedicated worker thread
(SQLite connections are thread-bound), so nothing here blocks the event loop. A cache
whose schema version differs from ours is discarded, never migrated: it is only a cache.
"""
from __future__ import annotations

import asyncio
import gc
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
FLUSH_DELAY = 0.25  # seconds a deferred write may wait for company
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


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it copies the database file's
    mode to its -wal and -shm files), and tighten a cache an older version left 0644."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.close(fd)
    if os.name != "nt":
        os.chmod(path, 0o600)


class IndexCache:
    """SQLite-backed store of entries (per model type), hashes and small key/value data."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-sqlite")
        self._conn: sqlite3.Connection | None = None
        # write-behind for the background hasher: one transaction per burst, not per file
        self._pending_entries: dict[str, ModelEntry] = {}
        self._pending_hashes: list[tuple[int, int, int, str, str]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _write(self, fn: Callable[[], None], what: str) -> None:
        """Run a write; a failure (disk full, locked, read-only) is logged, never raised.

        The files are the truth and a warm start reconciles with them, so a cache that
        missed a write is only slower, while failing the edit that caused it would be wrong.
        """
        try:
            await self._run(fn)
        except (sqlite3.Error, OSError) as exc:
            _log.warning("index cache %s: could not %s (%s); the next start re-reads those files", self.path, what, exc)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        # the cache names every model file and keeps download history: the owner's only
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_private(self.path)
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
        await self.flush()

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
        await self.flush()  # a reader sees every write made so far, deferred ones included
        def _load() -> dict[str, ModelEntry]:
            out: dict[str, ModelEntry] = {}
            rows = self.conn.execute("SELECT data FROM entries WHERE model_type=?", (model_type.value,))
            for n, (data,) in enumerate(rows, 1):
                try:
                    entry = entry_from_row(data)
                except (ValueError, KeyError, TypeError):
                    continue  # a row we cannot read is simply re-scanned
                out[entry.file_path] = entry
                if n % 2000 == 0:
                    # these entries live as long as the index: keep full GC passes
                    # (which stop every thread, the event loop's too) from walking them
                    gc.freeze()
            return out

        return await self._run(_load)

    # deferred writes -----------------------------------------------------------
    def defer_upsert(self, entry: ModelEntry) -> None:
        """Store ``entry`` within a fraction of a second, batched with its neighbours."""
        self._pending_entries[entry.file_path] = entry
        self._schedule_flush()

    def defer_hash(self, stamp: FileStamp, sha256: str, autov2: str) -> None:
        self._pending_hashes.append((stamp.inode, stamp.size, stamp.mtime_ns, sha256, autov2))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(FLUSH_DELAY, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        self._flush_task = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        """Write every deferred entry and hash now (one transaction)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        entries, self._pending_entries = list(self._pending_entries.values()), {}
        hashes, self._pending_hashes = self._pending_hashes, []
        if not entries and not hashes or self._conn is None:
            return

        def _write() -> None:
            rows = [entry_to_row(e) for e in entries]
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
                self.conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", hashes)

        await self._write(_write, "store hashes")

    def _drop_pending(self, paths: Iterable[str]) -> None:
        # a direct write is newer than anything deferred for the same path
        if self._pending_entries:
            for path in paths:
                self._pending_entries.pop(path, None)

    async def upsert_entries(self, entries: Iterable[ModelEntry]) -> None:
        items = list(entries)
        if not items:
            return
        self._drop_pending(e.file_path for e in items)

        def _write() -> None:
            rows = [entry_to_row(e) for e in items]  # JSON encoding off the event loop
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)

        await self._write(_write, "store entries")

    async def delete_entries(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        self._drop_pending(paths)
        keys = [(row_key(p),) for p in paths]
        if not keys:
            return

        def _delete() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("DELETE FROM entries WHERE path=?", keys)

        await self._write(_delete, "delete entries")

    async def replace_entries(self, model_type: ModelType, entries: Iterable[ModelEntry]) -> None:
        """Make the stored entries of one type exactly ``entries`` (after a full scan)."""
        items = list(entries)

        def _replace() -> None:
            rows = [entry_to_row(e) for e in items]
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute("DELETE FROM entries WHERE model_type=?", (model_type.value,))
                self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)

        await self._run(_replace)

    # hashes ------------------------------------------------------------------
    async def load_hashes(self) -> dict[tuple[int, int, int], tuple[str, str]]:
        await self.flush()
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
