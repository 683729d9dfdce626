"""The persistent cache: last known entries and computed hashes, in one SQLite file.

Owns the schema, its migration and every SQL statement; all of them run on one dedicated
worker thread (SQLite connections are thread-bound), so nothing here blocks the event loop.
The cache is only a cache (user data lives in sidecars): a cache it cannot read is rebuilt
by the next scan; the download history and CivitAI answers in ``kv`` are kept across
schema changes.

Entries are stored as a snapshot per model type (chunks of marshalled columns, see
``encode_chunk``, so a warm start builds its records in C; plus the sorted orders as row
positions, so it sorts nothing) and a journal of changes since it (one marshalled row per
changed or removed path; a change that keeps a model's place in the orders, a hash or a
tag, keeps the stored orders whole); ``load_entries`` is the snapshot with the journal
applied, and the journal is folded into a new snapshot once it has grown. Schema 4 (rows
in the snapshot too) is migrated on first open. marshal is the
fastest reader the standard library has; its format belongs to one Python version, so a
snapshot written by another version is dropped (and rebuilt by a scan), never misread.
"""
from __future__ import annotations

import asyncio
import json
import logging
import marshal
import os
import sqlite3
import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .gil_slices import map_list, set_of
from .model_records import (
    CivitaiSummary,
    FileStamp,
    HashStatus,
    MetadataStatus,
    ModelEntry,
    ModelType,
    civitai_summary,
    shared,
)
from .snapshot_chunks import (  # noqa: F401 - the row forms are index_cache's API too
    JOURNAL_SQL,
    SNAPSHOT_SQL,
    decode_chunk,
    encode_chunk,
    entry_from_row,
    entry_to_row,
    path_of_key,
    row_key,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = "5"
FLUSH_DELAY = 0.25  # seconds a deferred write may wait for company
CHUNK_ROWS = 2000  # rows per snapshot chunk: one marshal call holds the GIL for a few ms
# the journal is folded into a new snapshot past this many rows (or a tenth of the snapshot)
COMPACT_AFTER = 2000
_MARSHAL_TAG = f"{marshal.version}:{sys.version_info[0]}.{sys.version_info[1]}"
_MODEL_TYPES = {t.value: t for t in ModelType}
_SORT_NAMES = ("name", "date", "size")

# schema 3 stored one JSON row per entry, fields in this order (read by the migration only)
_V3_FIELDS = (
    "model_type", "file_path", "root", "folder", "file_name", "extension", "sub_type",
    "model_name", "sha256", "autov2", "autov3", "hash_status", "base_model", "preview_path",
    "preview_nsfw_level", "tags", "trigger_words", "favorite", "notes", "exclude",
    "from_civitai", "civitai", "creator", "usage_tips", "metadata_status", "sidecar_mtime_ns",
)
_KEPT_TABLES = {
    "hashes": ["inode", "size", "mtime_ns", "sha256", "autov2"],
    "kv": ["namespace", "key", "value"],
}


def default_cache_dir() -> Path:
    env = os.environ.get("LM_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("comfyui-model-library", appauthor=False))


def _entry_from_v3(data: str) -> ModelEntry:
    values = json.loads(data)
    fields = dict(zip(_V3_FIELDS, values))
    size, mtime_ns, inode = values[len(_V3_FIELDS)]
    path, extension = fields["file_path"], fields["extension"]
    preview = fields["preview_path"] or ""
    stem_path = path[: len(path) - len(extension)]
    suffix = preview[len(stem_path):] if preview.startswith(stem_path) else ""
    return ModelEntry(
        ModelType(fields["model_type"]), path, shared(fields["root"]), shared(fields["folder"]), shared(extension),
        FileStamp(size, mtime_ns, inode), shared(fields["sub_type"]), fields["model_name"], fields["sha256"],
        fields["autov3"], HashStatus(fields["hash_status"]), shared(fields["base_model"]), shared(suffix),
        fields["preview_nsfw_level"], tuple(map(shared, fields["tags"])), tuple(fields["trigger_words"]),
        fields["favorite"], fields["notes"], fields["exclude"], fields["from_civitai"],
        _summary_from_v3(fields["civitai"] or {}, fields["model_name"]), shared(fields["creator"]),
        shared(fields["usage_tips"]), MetadataStatus(fields["metadata_status"]), fields["sidecar_mtime_ns"],
    )


def _summary_from_v3(summary: dict[str, Any], model_name: str) -> CivitaiSummary:
    if not summary:
        return civitai_summary({})
    return CivitaiSummary.of_values((
        summary.get("id"), summary.get("modelId"), summary.get("name"), tuple(summary.get("trainedWords") or ()),
        model_name if summary.get("model_name") == model_name else summary.get("model_name"), summary.get("type"),
    ))


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it copies the database file's
    mode to its -wal and -shm files), and tighten a cache an older version left 0644."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.close(fd)
    if os.name != "nt":
        os.chmod(path, 0o600)


def _hash_key(inode: int, size: int, mtime_ns: int) -> bytes:
    # 57 bytes as one bytes object, where a tuple of three ints takes about 150
    return struct.pack("<qqq", inode, size, mtime_ns)


class IndexCache:
    """SQLite-backed store of entries (per model type), hashes and small key/value data."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-sqlite")
        self._conn: sqlite3.Connection | None = None
        # write-behind for the background hasher: one transaction per burst, not per file
        self._pending_entries: dict[str, ModelEntry] = {}
        self._pending_deletes: dict[str, str] = {}  # path -> model type
        self._pending_hashes: list[tuple[int, int, int, str, str]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None
        self._journal_rows: dict[str, int] = {}  # model type -> rows in the journal
        self._snapshot_rows: dict[str, int] = {}
        self.migrated_from: str | None = None  # the schema an old cache was migrated from

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
        except sqlite3.DatabaseError as exc:
            _log.warning("index cache %s is corrupt (%s); starting a new one", self.path, exc)
            self._reset_file()
            self._conn = self._connect()

    def _reset_file(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        _create_private(self.path)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            old = row[0] if row else None
            if old != SCHEMA_VERSION:
                self._migrate(conn, old)
            conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS snapshot (
                    model_type TEXT NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY (model_type, chunk));
                CREATE TABLE IF NOT EXISTS journal (
                    path TEXT PRIMARY KEY, model_type TEXT NOT NULL, data BLOB);
                CREATE TABLE IF NOT EXISTS hashes (
                    inode INTEGER, size INTEGER, mtime_ns INTEGER, sha256 TEXT NOT NULL,
                    autov2 TEXT NOT NULL, PRIMARY KEY (inode, size, mtime_ns));
                CREATE TABLE IF NOT EXISTS kv (
                    namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key));
                """
            )
            tag = conn.execute("SELECT value FROM meta WHERE key='marshal'").fetchone()
            if old == SCHEMA_VERSION and (tag is None or tag[0] != _MARSHAL_TAG):
                # written by another Python: its rows are not ours to read
                conn.execute("DELETE FROM snapshot")
                conn.execute("DELETE FROM journal")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('marshal', ?)", (_MARSHAL_TAG,))
            self._journal_rows = dict(conn.execute("SELECT model_type, COUNT(*) FROM journal GROUP BY model_type"))
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection, old: str | None) -> None:
        """Bring a cache of another schema to ours: schema 3's entries become a snapshot;
        any other version's entries are dropped (a scan rebuilds them). Hashes and ``kv``
        stay wherever their columns are the ones we read."""
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, columns in _KEPT_TABLES.items():
            if table in tables and [r[1] for r in conn.execute(f"PRAGMA table_info({table})")] != columns:
                conn.execute(f"DROP TABLE {table}")
        converted: dict[str, list[ModelEntry]] = {}
        if old == "3" and "entries" in tables:
            skipped = 0
            for (data,) in conn.execute("SELECT data FROM entries"):
                try:
                    entry = _entry_from_v3(data)
                except (ValueError, KeyError, TypeError, IndexError):
                    skipped += 1  # a row we cannot read is simply re-scanned
                    continue
                converted.setdefault(entry.model_type.value, []).append(entry)
            _log.info(
                "index cache %s: migrated %d entries from schema 3 (%d unreadable rows left to the scan)",
                self.path, sum(map(len, converted.values())), skipped,
            )
        elif old == "4" and "snapshot" in tables:
            # schema 4: the same snapshot, its chunks lists of rows (``entry_to_row``); the
            # journal's rows are unchanged and stay. Written by another Python: dropped.
            tag = conn.execute("SELECT value FROM meta WHERE key='marshal'").fetchone()
            bad: set[str] = set()
            if tag is not None and tag[0] == _MARSHAL_TAG:
                for model_type, data in conn.execute("SELECT model_type, data FROM snapshot WHERE chunk >= 0 ORDER BY chunk"):
                    try:
                        kind = _MODEL_TYPES[model_type]
                        rows = [entry_from_row(kind, row) for row in marshal.loads(data)]
                    except (ValueError, EOFError, KeyError, TypeError, IndexError):
                        bad.add(model_type)  # an unreadable chunk: that type is scanned again
                        continue
                    converted.setdefault(model_type, []).extend(rows)
            for model_type in bad:
                converted.pop(model_type, None)
        elif old is not None:
            _log.info("index cache %s: schema %s is not ours; its entries are rebuilt by a scan", self.path, old)
        conn.execute("DROP TABLE IF EXISTS entries")
        conn.execute("DROP TABLE IF EXISTS snapshot")
        if old != "4":
            conn.execute("DROP TABLE IF EXISTS journal")
        conn.execute(
            "CREATE TABLE snapshot (model_type TEXT NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL, "
            "PRIMARY KEY (model_type, chunk))"
        )
        for model_type, entries in converted.items():
            self._write_snapshot(conn, model_type, entries, None)
        self.migrated_from = old

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
        """Every stored entry of ``model_type`` by path (the snapshot with the journal applied)."""
        entries, _ = await self.load_snapshot(model_type)
        return {e.file_path: e for e in entries}

    async def load_snapshot(self, model_type: ModelType) -> tuple[list[ModelEntry], dict[str, list[str]]]:
        """The stored entries of ``model_type`` and the sorted orders that still hold for them
        (paths the journal touched are left out of the orders: ``ModelIndex.build`` places them).
        An order as long as the entries is a permutation of their own path strings.

        A cache whose file turns out to be damaged is replaced by an empty one (logged).
        """
        await self.flush()  # a reader sees every write made so far, deferred ones included
        try:
            return await self._run(self._load_snapshot, model_type.value)
        except sqlite3.DatabaseError as exc:
            _log.warning("index cache %s cannot be read (%s); starting a new one", self.path, exc)
            await self._run(self._rebuild)
            return [], {}

    async def stored_rows(self, model_type: ModelType) -> int:
        """At least how many entries of ``model_type`` the snapshot holds, from the number of
        its chunks (all but the last hold ``CHUNK_ROWS``; 0 when unreadable): known before
        loading them."""
        def _count() -> int:
            (chunks,) = self.conn.execute(
                "SELECT count(*) FROM snapshot WHERE model_type=? AND chunk >= 0", (model_type.value,)
            ).fetchone()
            return (int(chunks) - 1) * CHUNK_ROWS + 1 if chunks else 0

        try:
            return await self._run(_count)
        except sqlite3.DatabaseError:
            return 0

    def _rebuild(self) -> None:
        self._reset_file()
        self._conn = self._connect()

    def _load_snapshot(self, model_type: str) -> tuple[list[ModelEntry], dict[str, list[str]]]:
        kind = _MODEL_TYPES[model_type]
        entries: list[ModelEntry] = []
        orders: dict[str, list[str]] = {}
        positions: dict[str, bytes] = {}
        try:
            for chunk, data in self.conn.execute(SNAPSHOT_SQL, (model_type,)):
                if chunk < 0:  # the orders, as row positions
                    positions[_SORT_NAMES[-chunk - 1]] = data
                    continue
                entries.extend(decode_chunk(kind, data))
        except (ValueError, EOFError, TypeError, KeyError, IndexError) as exc:
            _log.warning("index cache %s: the %s snapshot is unreadable (%s); a scan rebuilds it", self.path, model_type, exc)
            return [], {}
        self._snapshot_rows[model_type] = len(entries)
        paths = [e.file_path for e in entries]
        for name, raw in positions.items():
            rows = array("I")
            rows.frombytes(raw)
            # a permutation of the rows, or not used (``ModelIndex.build`` trusts these)
            if len(rows) == len(paths) and (not rows or max(rows) < len(rows)) and len(set_of(rows)) == len(rows):
                orders[name] = map_list(paths.__getitem__, rows)
        journal = list(self.conn.execute(JOURNAL_SQL, (model_type,)))
        if journal:
            by_path = dict(zip(paths, entries))
            touched = set()
            for key, data in journal:
                try:
                    entry = entry_from_row(kind, marshal.loads(data)) if data is not None else None
                except (ValueError, EOFError, TypeError, KeyError):
                    entry = None  # unreadable: the scan builds it again
                path = entry.file_path if entry is not None else path_of_key(key)
                before = by_path.get(path)
                if entry is None or before is None or before.model_name != entry.model_name or before.stamp != entry.stamp:
                    touched.add(path)  # its place in an order may differ (a hash or tag edit keeps it)
                if entry is None:
                    by_path.pop(path, None)
                else:
                    by_path[path] = entry
            entries = list(by_path.values())
            if touched:
                orders = {name: [p for p in order if p not in touched] for name, order in orders.items()}
        return entries, orders

    async def store_snapshot(
        self, model_type: ModelType, entries: list[ModelEntry], orders: Mapping[str, list[str]] | None = None
    ) -> None:
        """Make the stored entries of one type exactly ``entries`` (and clear its journal).

        ``orders`` (paths by sort key, as the index keeps them) are stored as row positions.
        """
        self._drop_pending(e.file_path for e in entries)
        rows = list(entries)
        kept = {name: list(order) for name, order in (orders or {}).items()}

        def _store() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self._write_snapshot(self.conn, model_type.value, rows, kept)
                self.conn.execute("DELETE FROM journal WHERE model_type=?", (model_type.value,))
            self._journal_rows[model_type.value] = 0

        await self._write(_store, "store the snapshot")

    def _write_snapshot(
        self, conn: sqlite3.Connection, model_type: str, entries: list[ModelEntry], orders: Mapping[str, list[str]] | None
    ) -> None:
        conn.execute("DELETE FROM snapshot WHERE model_type=?", (model_type,))
        for chunk, start in enumerate(range(0, len(entries), CHUNK_ROWS)):
            data = encode_chunk(entries[start : start + CHUNK_ROWS])
            conn.execute("INSERT INTO snapshot VALUES (?, ?, ?)", (model_type, chunk, data))
            # the GIL goes to the event loop between chunks: a compaction of 100,000 rows
            # (a third of a second of encoding) must not queue every request behind it
            time.sleep(0)
        if orders:
            position = {e.file_path: i for i, e in enumerate(entries)}
            for n, name in enumerate(_SORT_NAMES):
                order = orders.get(name)
                if order is None or len(order) != len(entries):
                    continue
                try:
                    rows = array("I", [position[p] for p in order])
                except KeyError:
                    continue  # not the same paths: the next warm start sorts instead
                conn.execute("INSERT INTO snapshot VALUES (?, ?, ?)", (model_type, -n - 1, rows.tobytes()))
        self._snapshot_rows[model_type] = len(entries)

    def needs_compaction(self, model_type: ModelType) -> bool:
        """True once the journal of ``model_type`` is worth folding into a new snapshot."""
        rows = self._journal_rows.get(model_type.value, 0)
        return rows > max(COMPACT_AFTER, self._snapshot_rows.get(model_type.value, 0) // 10)

    # deferred writes -----------------------------------------------------------
    def defer_upsert(self, entry: ModelEntry) -> None:
        """Store ``entry`` within a fraction of a second, batched with its neighbours."""
        self._pending_deletes.pop(entry.file_path, None)
        self._pending_entries[entry.file_path] = entry
        self._schedule_flush()

    def defer_delete(self, paths: Iterable[str], model_type: ModelType) -> None:
        """Record within a fraction of a second that ``paths`` are gone, batched like upserts
        (a rename or move answers without waiting behind a compaction in the cache's thread)."""
        for path in paths:
            self._pending_entries.pop(path, None)
            self._pending_deletes[path] = model_type.value
        if self._pending_deletes:
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
        deletes, self._pending_deletes = self._pending_deletes, {}
        hashes, self._pending_hashes = self._pending_hashes, []
        if not entries and not deletes and not hashes or self._conn is None:
            return

        def _write() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self._journal(entries)
                self._journal_deletes([(row_key(p), kind, None) for p, kind in deletes.items()])
                self.conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", hashes)

        await self._write(_write, "store hashes")

    def _journal(self, entries: list[ModelEntry]) -> None:
        rows = [(row_key(e.file_path), e.model_type.value, marshal.dumps(entry_to_row(e))) for e in entries]
        self.conn.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?, ?)", rows)
        for e in entries:
            self._journal_rows[e.model_type.value] = self._journal_rows.get(e.model_type.value, 0) + 1

    def _journal_deletes(self, rows: list[tuple[str, str, None]]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?, ?)", rows)
        for _, kind, _ in rows:
            self._journal_rows[kind] = self._journal_rows.get(kind, 0) + 1

    def _drop_pending(self, paths: Iterable[str]) -> None:
        # a direct write is newer than anything deferred for the same path
        if self._pending_entries or self._pending_deletes:
            for path in paths:
                self._pending_entries.pop(path, None)
                self._pending_deletes.pop(path, None)

    async def upsert_entries(self, entries: Iterable[ModelEntry]) -> None:
        items = list(entries)
        if not items:
            return
        self._drop_pending(e.file_path for e in items)

        def _write() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                self._journal(items)

        await self._write(_write, "store entries")

    async def delete_entries(self, paths: Iterable[str], model_type: ModelType | None = None) -> None:
        """Record that ``paths`` are gone (``model_type`` names their type when known)."""
        paths = list(paths)
        self._drop_pending(paths)
        if not paths:
            return

        def _delete() -> None:
            with self.conn:
                self.conn.execute("BEGIN")
                types = [model_type.value] if model_type is not None else list(_MODEL_TYPES)
                rows = [(row_key(p), kind, None) for p in paths for kind in types[:1]]
                if model_type is None:
                    # the type of a bare path: whichever snapshot or journal row names it
                    rows = [(row_key(p), self._type_of(p), None) for p in paths]
                self._journal_deletes(rows)

        await self._write(_delete, "delete entries")

    def _type_of(self, path: str) -> str:
        row = self.conn.execute("SELECT model_type FROM journal WHERE path=?", (row_key(path),)).fetchone()
        return row[0] if row else ModelType.LORA.value

    async def replace_entries(self, model_type: ModelType, entries: Iterable[ModelEntry]) -> None:
        """Make the stored entries of one type exactly ``entries`` (after a full scan)."""
        await self.store_snapshot(model_type, list(entries))

    # hashes ------------------------------------------------------------------
    async def load_hashes(self) -> dict[bytes, str]:
        """Known SHA256s by file stamp (``stamp_key``), the compact form ``HashStore`` keeps."""
        await self.flush()

        def _load() -> dict[bytes, str]:
            rows = self.conn.execute("SELECT inode, size, mtime_ns, sha256 FROM hashes")
            return {_hash_key(r[0], r[1], r[2]): r[3] for r in rows}

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


def stamp_key(stamp: FileStamp) -> bytes:
    """The key ``load_hashes`` uses for a file stamp."""
    return _hash_key(stamp.inode, stamp.size, stamp.mtime_ns)
