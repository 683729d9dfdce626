"""The library of one model type: start-up, reconcile, hashing results and reads.

Owns the index of its type and keeps it, the hash index and the SQLite cache in step
with the disk; emits ``models_changed`` and init progress. Blocking work (walks, header
reads, SQLite) runs in worker threads. It must not parse HTTP requests.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from urllib.parse import quote

from ...errors import ModelNotFound, PathOutsideLibrary
from ..shared.free_memory import release_free_memory
from ..shared.model_locks import ModelLocks
from ..shared.sidecar_store import SidecarStore, preview_kind
from ..shared.socket_hub import SocketHub
from .index_cache import IndexCache, stamp_key
from .model_hasher import HashQueue, hash_key
from .model_index import NO_USAGE, ListQuery, ModelIndex, UsageSource, texts_of
from .model_records import FileStamp, HashStatus, ModelEntry, ModelType
from .model_scanner import FIRST_BATCH, LibraryRoot, ModelScanner, ScanStats, stamp_of
from .process_walk import ChildWalk, ChildWalker
from .walk_child import WalkFailed

_log = logging.getLogger(__name__)


class HashStore:
    """Known hashes by file stamp, shared by every model type (one disk, one table)."""

    def __init__(self, *, cache: IndexCache) -> None:
        self._cache = cache
        # packed stamp -> SHA256: about 230 bytes a file, where tuples of tuples took 400
        self._known: dict[bytes, str] = {}

    async def load(self) -> None:
        self._known = await self._cache.load_hashes()

    def lookup(self, stamp: FileStamp) -> tuple[str, str] | None:
        sha256 = self._known.get(stamp_key(stamp))
        return (sha256, sha256[:10]) if sha256 else None

    async def remember(self, stamp: FileStamp, sha256: str, autov2: str) -> None:
        self._known[stamp_key(stamp)] = sha256
        self._cache.defer_hash(stamp, sha256, autov2)


@dataclass(slots=True, frozen=True, kw_only=True)
class Page:
    items: list[ModelEntry]
    total: int
    page: int
    page_size: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.page_size - 1) // self.page_size if self.total else 0


# more changes than this are prepared in a worker thread (new orders, search texts) and
# applied in slices; fewer go into the index one by one, by bisection, on the loop
BULK_REBUILD_THRESHOLD = 64
# a prepared batch is applied this many entries at a time, yielding to the loop between
APPLY_SLICE = 100
# finished hashes are announced to browsers at most this often (seconds)
HASH_NOTICE_INTERVAL = 1.0
# a cold scan first shows what it found once it has this many models, then again each time
# it has PUBLISH_GROWTH times as many (each showing is an index built off the loop)
FIRST_PUBLISH = FIRST_BATCH  # the walk's first batch is shown as it comes
PUBLISH_GROWTH = 8
# a walk that read at least this many models (or wrote the snapshot) gives the allocator's
# free memory back after
RELEASE_AFTER = 1000


def settle_memory() -> None:
    """Move everything alive now out of the garbage collector's sight.

    The index is tens of thousands of long-lived, cycle-free objects; without this every
    full collection walks all of them and freezes every thread (ComfyUI's included) for
    up to hundreds of milliseconds. Objects freed later by reference counting still go.
    """
    gc.freeze()


_gc_pause = [0, False]  # pauses in force, whether the collector was on before the first


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while a warm start builds 100,000 cycle-free records: each
    young collection would walk the records made since the last, and the full ones all of
    them (a quarter of the load's time). Nested and concurrent pauses share one switch."""
    if _gc_pause[0] == 0:
        _gc_pause[1] = gc.isenabled()
        gc.disable()
    _gc_pause[0] += 1
    try:
        yield
    finally:
        _gc_pause[0] -= 1
        if _gc_pause[0] == 0 and _gc_pause[1]:
            gc.enable()


def _index_of(entries: list[ModelEntry], orders: dict[str, list[str]] | None = None, *, trusted: bool = False) -> ModelIndex:
    # search texts later (``TypeLibrary.search_ready``): at a start-up the walk's child process
    # holds its memory beside this build, and a first listing needs no texts
    index = ModelIndex.build(entries, orders, trusted=trusted, texts=False)
    settle_memory()
    return index


def _fresh_of(gen, sentinel: object, previous: dict[str, ModelEntry]):
    """The next batch of the walk, less the entries it reused (in the walk's thread).

    What the walk yields leaves ``previous`` (each path comes once), so what is left of it
    at the end is what the walk did not meet: no set of every path seen is kept."""
    batch = next(gen, sentinel)
    if batch is sentinel:
        return sentinel
    pop = previous.pop
    fresh = [e for e in batch if pop(e.file_path, None) is not e]
    if fresh:
        settle_memory()  # what the walk found lives on: keep it out of GC passes
    return fresh


def _removed_of(unseen: Collection[str], scope_dirs: list[str] | None, indexed: Collection[str]) -> list[str]:
    """Paths indexed before the walk (inside its scope) that it did not meet."""
    if scope_dirs is None:
        return [p for p in unseen if p in indexed]
    prefixes = tuple(d.rstrip("/") + "/" for d in scope_dirs)
    return [p for p in unseen if p.startswith(prefixes) and p in indexed]


def _last_of_each(entries: list[ModelEntry]) -> list[ModelEntry]:
    """``entries`` with each path once (its last entry): a walk that was started over
    yields again what it had found."""
    return list({e.file_path: e for e in entries}.values())


@dataclass(slots=True)
class _WalkState:
    """What a walk leaves besides its batches."""

    unseen: Collection[str] = ()  # paths of the previous index it did not meet
    met: list[str] | None = None  # the paths walked in-process before a hand-over to children
    retried: bool = False  # started over in-process: its batches may repeat a path


class TypeLibrary:
    """Everything the routes read about one model type, and the scans that feed it."""

    def __init__(
        self,
        *,
        model_type: ModelType,
        roots: list[LibraryRoot],
        cache: IndexCache,
        hashes: HashStore,
        hub: SocketHub,
        hash_queue: HashQueue,
        locks: ModelLocks,
        sidecars: SidecarStore,
        write_hash_sidecars: Callable[[], bool] = lambda: False,
        scanner: ModelScanner | None = None,
        usage: UsageSource | None = None,
        walker: ChildWalker | None = None,
    ) -> None:
        self.model_type = model_type
        # how often and when last each model was used (by SHA256; filled in ComfyUI only)
        self.usage: UsageSource = usage or NO_USAGE
        self.roots = roots
        self.index = ModelIndex()
        self._cache = cache
        self._hashes = hashes
        self._hub = hub
        self._hash_queue = hash_queue
        self._write_hash_sidecars = write_hash_sidecars
        # nothing whose real path leaves the library is listed or read
        self.sidecars = sidecars
        self._scanner = scanner or ModelScanner(contains_real=sidecars.contains_real)
        # walks of big libraries in child processes (None: always in-process)
        self._walker = walker
        self._locks = locks
        self._published_version = 0
        self._hashed_paths: list[str] = []
        self._hash_notice: asyncio.TimerHandle | None = None
        self._notice_task: asyncio.Future | None = None
        self.is_ready = False
        self._changed_before_ready = False  # the disk changed before this type was ready
        self._reconcile_lock = asyncio.Lock()
        self._reconcile_again = False
        self._ready_event = asyncio.Event()
        self.last_scan: dict[str, Any] = {}
        self._snapshot_stale = False  # the stored snapshot lacks orders, or holds other paths
        # every change to the index after start-up goes through this lock: a batch prepared
        # in a worker thread and applied in slices must not interleave with another change
        self._index_lock = asyncio.Lock()
        self._texts_task: asyncio.Task[None] | None = None

    @property
    def prefix(self) -> str:
        return self.model_type.prefix

    def root_paths(self, sub_type: str | None = None) -> list[str]:
        return [r.path for r in self.roots if sub_type is None or r.sub_type == sub_type]

    def _own_entries(self, entries: list[ModelEntry]) -> list[ModelEntry]:
        """The cached entries that lie in one of this type's roots (grouped by folder:
        one ``root_for`` per folder, not per entry)."""
        owned: dict[str, bool] = {}
        out = []
        for entry in entries:
            path = entry.file_path
            folder = path[: path.rfind("/")]
            inside = owned.get(folder)
            if inside is None:
                inside = owned[folder] = self.root_for(path) is not None
            if inside:
                out.append(entry)
        return out

    def _warm_index(self, cached: list[ModelEntry], orders: dict[str, list[str]]) -> tuple[ModelIndex, bool]:
        """The index of the cached entries still inside this type's roots, and whether the
        stored snapshot needs rewriting (it held other paths, or lacked an order). Blocking."""
        mine = self._own_entries(cached)
        stale = len(mine) != len(cached) or any(len(o) != len(mine) for o in orders.values()) or len(orders) < 3
        return _index_of(mine, orders, trusted=True), stale

    def root_for(self, path: str) -> LibraryRoot | None:
        best: LibraryRoot | None = None
        for root in self.roots:
            if path == root.path or path.startswith(root.path.rstrip("/") + "/"):
                if best is None or len(root.path) > len(best.path):
                    best = root
        return best

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready_event.wait(), timeout)

    # start-up ------------------------------------------------------------------
    async def initialize(self, *, before_walk: Callable[[], Awaitable[object]] | None = None) -> None:
        """Serve the cached index at once (warm) or scan (cold), then reconcile.

        ``before_walk`` runs after the cache is served and before the first walk of the
        disk (the host starts its watcher there, so no change slips between walking and
        watching). A change noted by ``on_disk_change`` while this type was not ready yet
        leads to one more reconcile once it is.
        """
        if not self.roots:  # a type the user keeps no folder of costs nothing (no cache read, no walk)
            self._mark_ready()
            return
        started = time.perf_counter()
        # what the process holds before the first scan (the host's modules, ComfyUI's among
        # them, tens of thousands of objects) would be walked by the first full collection,
        # which the scan's allocations trigger within a second: out of sight first
        settle_memory()
        # a big cached library is walked by a child process beside the index build: it
        # starts now, reads the cached models from the cache file while the watcher starts
        # (not beside the load: the watcher's start is a Python walk of every folder, which
        # a build holding the GIL slows sevenfold), and walks once the watcher is up
        early = await self._early_walk()
        watching = False
        try:
            with gc_paused():
                if early is not None:
                    early = await self._send_warm_walk(early)
                if early is not None:
                    early = await self._walk_once_watched(early, before_walk)
                    watching = before_walk is not None
                cached, orders = await self._cache.load_snapshot(self.model_type)
                if cached:
                    # built off the loop into a fresh index, then swapped in: readers never see
                    # a half-built index, and the loop is never blocked by 100,000 inserts
                    self.index, self._snapshot_stale = await asyncio.to_thread(self._warm_index, cached, orders)
                    del cached, orders
        except BaseException:
            if early is not None:
                early.close()
            raise
        if len(self.index):
            settle_memory()
            self._mark_ready()
            await self._init_progress("ready", 100, len(self.index), len(self.index))
            _log.info("%s: %d models from cache in %.2fs", self.prefix, len(self.index), time.perf_counter() - started)
            if before_walk is not None and not watching:
                await before_walk()
            if early is None:
                self._changed_before_ready = False  # the walk below starts after any such change
            scan = await self.reconcile(children=early)
            _log.info(
                "%s: disk walked%s in %.2fs, %d of %d models changed, %d gone", self.prefix,
                " by a child process" if early is not None else "", scan.get("seconds", 0), scan.get("built", 0),
                len(self.index), scan.get("removed", 0),
            )
            if self._changed_before_ready:
                # noted while the child walked, before this type was ready
                self._changed_before_ready = False
                await self.reconcile()
        else:
            if early is not None:
                early.close()
            await self._init_progress("scanning", 0, 0, 0)
            if before_walk is not None and not watching:
                await before_walk()
            await self.reconcile(initial=True)
            await self._announce_ready()
            _log.info("%s: cold scan of %d models in %.2fs", self.prefix, len(self.index), time.perf_counter() - started)
            if self._changed_before_ready:
                # the cold walk may have passed the changed folder before the change
                self._changed_before_ready = False
                await self.reconcile()

    # search texts ----------------------------------------------------------------
    async def search_ready(self) -> None:
        """Wait until the index holds its search texts, making them in a worker thread if it
        does not. The index of a start-up is served without them (``ModelLibrary`` has them
        made once every type has walked the disk); a search before waits here for them
        instead of having the index make them on the loop."""
        while not self.index.texts_ready:
            await asyncio.shield(self._start_texts())

    def _start_texts(self) -> asyncio.Task[None]:
        task = self._texts_task
        if task is None or task.done():
            task = self._texts_task = asyncio.get_running_loop().create_task(
                self._make_texts(), name=f"lm-{self.prefix}-search-texts")
        return task

    async def _make_texts(self) -> None:
        index = self.index
        if not index.texts_ready:
            texts = await asyncio.to_thread(texts_of, index.pending_texts())
            index.install_texts(texts)

    async def _early_walk(self) -> ChildWalk | None:
        """A child process for the warm start's walk, when the cache holds a big library."""
        if self._walker is None or await self._cache.stored_rows(self.model_type) < self._walker.min_models:
            return None
        return await asyncio.to_thread(self._walker.spawn, 1)

    async def _send_warm_walk(self, walk: ChildWalk) -> ChildWalk | None:
        """Send ``walk`` this type's roots and the cache file to compare with (it reads the
        cached entries at once and waits for ``go``); None when it failed."""
        await self._cache.flush()  # the child reads the cache file: every deferred write in it
        try:
            await asyncio.to_thread(
                walk.send, model_type=self.model_type, roots=self.roots, cache=str(self._cache.path),
                batch_size=self._scanner.batch_size, known=self._scanner.remembered(), wait=True,
            )
        except WalkFailed as exc:
            _log.warning("%s: %s; walking in the server", self.prefix, exc)
            walk.close()
            return None
        return walk

    async def _walk_once_watched(
        self, walk: ChildWalk, before_walk: Callable[[], Awaitable[object]] | None
    ) -> ChildWalk | None:
        """Let ``walk`` go once the watcher is up (``before_walk``): no change made while it
        walks goes unseen. None when it failed."""
        if before_walk is not None:
            await before_walk()
        try:
            await asyncio.to_thread(walk.go)
        except WalkFailed as exc:
            _log.warning("%s: %s; walking in the server", self.prefix, exc)
            walk.close()
            return None
        return walk

    async def on_disk_change(self, scope: Iterable[str] | None = None) -> None:
        """Reconcile after a change on disk (all roots, or the ``scope`` folders).

        Before the type is ready the change is only noted: ``initialize`` reconciles once
        more when it is done, instead of a walk racing the initial one.
        """
        if not self.is_ready:
            self._changed_before_ready = True
            return
        await self.reconcile(scope=scope)

    async def _announce_ready(self) -> None:
        """Ready once: what the index holds lives on (out of the collector's sight), the
        status says so and browsers are told."""
        if self.is_ready:
            return
        settle_memory()
        self._mark_ready()
        await self._init_progress("ready", 100, len(self.index), len(self.index))

    def _mark_ready(self) -> None:
        self.is_ready = True
        self._ready_event.set()

    async def _init_progress(self, stage: str, progress: int, scanned: int, total: int) -> None:
        await self._hub.broadcast_init_progress(
            {
                "model_type": self.model_type.value,
                "stage": stage,
                "progress": progress,
                "scanned": scanned,
                "total": total,
                "ready": stage == "ready",
            }
        )

    # reconcile -----------------------------------------------------------------
    async def reconcile(
        self, *, initial: bool = False, scope: Iterable[str] | None = None, children: ChildWalk | None = None
    ) -> dict[str, int]:
        """Stat-only walk of the roots (or of ``scope`` folders); apply the difference.

        ``children``: a walk of every root already sent to child processes (a warm start's).
        Coalesces: a call while one runs makes exactly one more run afterwards.
        """
        if self._reconcile_lock.locked():
            if children is not None:
                children.close()
            self._reconcile_again = True
            async with self._reconcile_lock:
                return dict(self.last_scan)
        async with self._reconcile_lock:
            result = await self._reconcile_once(initial=initial, scope=scope, children=children)
            while self._reconcile_again:
                self._reconcile_again = False
                result = await self._reconcile_once(initial=False, scope=None)
            return result

    async def _reconcile_once(
        self, *, initial: bool, scope: Iterable[str] | None, children: ChildWalk | None = None
    ) -> dict[str, int]:
        started = time.perf_counter()
        roots = self.roots
        scope_dirs = sorted(set(scope)) if scope is not None else None
        if scope_dirs is not None:
            pairs = [(owner, folder) for folder in scope_dirs if (owner := self.root_for(folder)) is not None]
            roots = [owner for owner, _ in pairs]
            scope_dirs = [folder for _, folder in pairs]
        stats = ScanStats(seen=None)
        state = _WalkState()
        changed: list[ModelEntry] = []
        next_publish = FIRST_PUBLISH
        batches = self._walk(roots, scope_dirs, stats, state, initial=initial, children=children)
        try:
            async for batch in batches:
                changed.extend(batch)
                if initial and len(changed) >= next_publish:
                    # a cold scan publishes what it has found so far, so the first page
                    # lists at once; each showing is built off the event loop
                    await self._publish(changed)
                    next_publish = len(changed) * PUBLISH_GROWTH
                    await self._init_progress("scanning", 0, len(changed), 0)
        finally:
            await batches.aclose()
        if state.retried:
            changed = await asyncio.to_thread(_last_of_each, changed)
        if initial:
            # what reading the walk's batches left free goes back before the full index is
            # built: that build is the scan's high-water mark
            await asyncio.to_thread(release_free_memory)
            await self._publish(changed)
            # the full listing is served from here on; the snapshot write and the hash
            # queue below are the cache's and the hasher's business (half a second at 100,000)
            await self._announce_ready()
        removed = await asyncio.to_thread(_removed_of, state.unseen, scope_dirs, self.index.entries)
        state.unseen = ()
        if not initial:
            await self._apply_changes(changed, removed)
        stored = initial or self._snapshot_stale or self._cache.needs_compaction(self.model_type)
        if stored:
            await self._store_snapshot()
        else:
            await self._cache.upsert_entries(changed)
            await self._cache.delete_entries(removed, self.model_type)
        await self._queue_hashes(changed)
        self.last_scan = {
            "reused": stats.reused,
            "built": stats.built,
            "removed": len(removed),
            "total": len(self.index),
            "leftovers_removed": stats.leftovers_removed,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if (changed or removed) and not initial:
            await self.broadcast_changed(
                "scan", [e.file_path for e in changed][:200] + removed[:200]
            )
        if stored or children is not None or stats.built + len(removed) >= RELEASE_AFTER:
            # what the walk parsed, the load decoded and the snapshot's encoding made is freed
            # now, but glibc would keep it
            del changed, removed
            await asyncio.to_thread(release_free_memory)
        return dict(self.last_scan)

    async def _walk(
        self, roots: list[LibraryRoot], scope_dirs: list[str] | None, stats: ScanStats, state: _WalkState, *,
        initial: bool, children: ChildWalk | None,
    ) -> AsyncIterator[list[ModelEntry]]:
        """The fresh entries of one walk, in batches: from ``children`` when given, else
        in-process, where a cold scan hands over to child processes once it has walked
        ``ChildWalker.min_models`` models; a failed child walk is started over in-process."""
        if children is not None:
            try:
                async for batch in self._from_children(children, stats, state):
                    yield batch
                return
            except WalkFailed as exc:
                self._walk_failed(exc, stats, state)
        walker = self._walker
        hand_over = walker.min_models if initial and walker is not None and scope_dirs is None else None
        children = None
        walked = 0
        spawned = False
        try:
            async for batch in self._walk_here(roots, scope_dirs, stats, state, stop_after=hand_over):
                yield batch
                walked += len(batch)
                if hand_over is not None and not spawned and walked >= hand_over // 2:
                    # started half-way, so their interpreters are up when the walk is handed over
                    assert walker is not None
                    spawned = True
                    children = await asyncio.to_thread(walker.spawn, walker.processes)
        except BaseException:
            if children is not None:
                children.close()
            raise
        if state.met is None:
            if children is not None:
                children.close()  # the library was smaller than it takes to hand over
            return
        if children is not None:
            try:
                await asyncio.to_thread(
                    children.send, model_type=self.model_type, roots=roots, skip=state.met,
                    batch_size=self._scanner.batch_size, known=self._scanner.remembered(),
                )
                async for batch in self._from_children(children, stats, state):
                    yield batch
                return
            except WalkFailed as exc:
                self._walk_failed(exc, stats, state)
        else:
            self._walk_failed(None, stats, state)
        async for batch in self._walk_here(roots, scope_dirs, stats, state, stop_after=None):
            yield batch

    def _walk_failed(self, exc: WalkFailed | None, stats: ScanStats, state: _WalkState) -> None:
        if exc is not None:
            _log.warning("%s: %s; walking in the server instead", self.prefix, exc)
        state.retried = True
        state.met = None
        stats.reused = stats.built = stats.errors = 0

    async def _walk_here(
        self, roots: list[LibraryRoot], scope_dirs: list[str] | None, stats: ScanStats, state: _WalkState, *,
        stop_after: int | None,
    ) -> AsyncIterator[list[ModelEntry]]:
        """An in-process walk's fresh batches; with ``stop_after``, it stops once it has
        met that many models and leaves their paths in ``state.met``."""
        previous = self.index.entries.copy()
        lookup = self._hashes.lookup
        if scope_dirs is not None:
            gen = self._scanner.iter_scoped(roots, scope_dirs, previous, lookup, stats, sweep=True)
        else:
            gen = self._scanner.iter_batches(roots, previous, lookup, stats, sweep=True)
        sentinel = object()
        met: list[str] = []
        while True:
            batch = await asyncio.to_thread(_fresh_of, gen, sentinel, previous)
            if batch is sentinel:
                state.unseen = previous
                return
            yield batch
            if stop_after is not None:
                met += [e.file_path for e in batch]  # a cold scan: every entry is fresh
                if len(met) >= stop_after:
                    await asyncio.to_thread(gen.close)
                    state.met = met
                    return

    async def _from_children(self, children: ChildWalk, stats: ScanStats, state: _WalkState) -> AsyncIterator[list[ModelEntry]]:
        """The batches of a walk in child processes, to its end (then its counts, what it
        did not meet and what its scanners learnt are taken over)."""
        lookup = self._hashes.lookup
        try:
            while (batch := await asyncio.to_thread(children.next_batch, lookup)) is not None:
                if batch:
                    # long-lived records: out of the collector's sight, or a full collection
                    # walks the tens of thousands received so far (60 ms at 100,000)
                    settle_memory()
                    yield batch
        except BaseException:
            children.close()  # kills what still runs: quick
            raise
        await asyncio.to_thread(children.close)
        for key, value in children.stats.items():
            setattr(stats, key, getattr(stats, key) + value)
        state.unseen = children.unseen
        self._scanner.remember(children.refused, children.reported)

    async def _store_snapshot(self) -> None:
        """Write the whole index as the cache's snapshot (entries and orders)."""
        index = self.index
        await self._cache.store_snapshot(self.model_type, list(index.entries.values()), index.orders())
        self._snapshot_stale = False

    async def _queue_hashes(self, entries: list[ModelEntry]) -> None:
        """Queue the pending hashes, yielding to the loop between chunks (50,000 queue
        insertions in one go would stall it for a tenth of a second)."""
        for n, entry in enumerate(entries, 1):
            if entry.hash_status is HashStatus.PENDING:
                self._hash_queue.submit(hash_key(self.model_type, entry.file_path), entry.file_path)
            if n % 2000 == 0:
                await asyncio.sleep(0)

    async def _publish(self, entries: list[ModelEntry]) -> None:
        """Swap in an index of ``entries`` built in a worker thread (cold scans only).

        A mutation that reached the index since the last swap would be lost by the swap,
        so it schedules one more (ordinary) reconcile after the scan.
        """
        if self.index.version != self._published_version:
            self._reconcile_again = True
        with gc_paused():  # long-lived containers only: a collection would walk them for nothing
            self.index = await asyncio.to_thread(_index_of, list(entries))
        self._published_version = self.index.version

    async def _apply_changes(self, changed: list[ModelEntry], removed: list[str]) -> None:
        """Put scan (or refresh) results into the index without blocking the loop for long.

        A big batch is prepared in a worker thread (search texts, re-sorted orders) and
        applied in slices; a mutation that lands meanwhile makes it prepare again.
        """
        if not changed and not removed:
            return
        async with self._index_lock:
            await self._apply_locked(changed, removed)

    async def _apply_locked(self, changed: list[ModelEntry], removed: list[str]) -> None:
        if len(changed) + len(removed) <= BULK_REBUILD_THRESHOLD:
            for entry in changed:
                self.index.upsert(entry)
            for path in removed:
                self.index.remove(path)
            return
        for _ in range(3):
            index = self.index
            version = index.version
            with gc_paused():
                prepared = await asyncio.to_thread(index.prepare, changed, removed, index.entries.copy(), version)
            if index is self.index and index.version == version:
                await self._apply_prepared(index, prepared)
                settle_memory()
                return
        # the index keeps changing under us: one by one, yielding now and then
        for n, entry in enumerate(changed, 1):
            self.index.upsert(entry)
            if n % 50 == 0:
                await asyncio.sleep(0)
        for path in removed:
            self.index.remove(path)

    @staticmethod
    async def _apply_prepared(index: ModelIndex, prepared) -> None:
        """Apply a prepared batch slice by slice (readers in between see the old orders with
        some new entries: ``get_paginated_data`` skips paths not indexed at that moment)."""
        changed, texts, removed = prepared.changed, prepared.texts, prepared.removed
        if len(changed) + len(removed) <= APPLY_SLICE:
            index.apply(prepared)
            return
        for start in range(0, len(removed), APPLY_SLICE):
            index.apply_maps([], [], removed[start : start + APPLY_SLICE])
            await asyncio.sleep(0)
        for start in range(0, len(changed), APPLY_SLICE):
            index.apply_maps(changed[start : start + APPLY_SLICE], texts[start : start + APPLY_SLICE], [])
            await asyncio.sleep(0)
        index.apply_orders(prepared)

    async def broadcast_changed(self, reason: str, paths: list[str]) -> None:
        await self._hub.broadcast(
            {"type": "models_changed", "model_type": self.model_type.value, "reason": reason, "paths": paths}
        )

    async def refresh_paths(self, paths: Iterable[str], *, reason: str = "update", broadcast: bool = True) -> list[ModelEntry]:
        """Re-read the given model files from disk into the index and cache.

        A path that no longer exists is removed. Returns the fresh entries. Every
        mutation ends here, so the index always equals what a fresh scan would build.
        """
        fresh: list[ModelEntry] = []
        gone: list[str] = []
        items: list[tuple[LibraryRoot, str]] = []
        results: list[tuple[str, ModelEntry | None]] = []
        for path in dict.fromkeys(paths):
            root = self.root_for(path)
            if root is None:
                results.append((path, None))
            else:
                items.append((root, path))
        if items:
            results += await asyncio.to_thread(self._scanner.scan_paths, items, self._hashes.lookup)
        for path, entry in results:
            if entry is None:
                if path in self.index.entries:
                    gone.append(path)
                continue
            fresh.append(entry)
            if entry.hash_status is HashStatus.PENDING:
                self._hash_queue.submit(hash_key(self.model_type, entry.file_path), entry.file_path)
        await self._apply_changes(fresh, gone)
        # the cache follows within a fraction of a second, batched (a bulk edit of 1,000 models
        # is a few transactions, and a mutation's answer never waits for SQLite); losing that
        # moment to a crash costs only a re-read: the next reconcile sees the sidecar changed
        for entry in fresh:
            self._cache.defer_upsert(entry)
        self._cache.defer_delete(gone, self.model_type)
        if broadcast and (fresh or gone):
            await self.broadcast_changed(reason, [e.file_path for e in fresh] + gone)
        return fresh

    # hashing -------------------------------------------------------------------
    async def on_hash_done(self, path: str, sha256: str | None, autov2: str | None, error: BaseException | None) -> None:
        entry = self.index.get(path)
        if entry is None:
            return
        try:
            st = await asyncio.to_thread(os.stat, path)
        except OSError:
            return
        stamp = stamp_of(st)
        if stamp != entry.stamp:
            return  # the file changed while it was hashed: the reconcile queues it again
        if error is None and sha256:
            await self._hashes.remember(stamp, sha256, autov2 or sha256[:10])
        # re-read after the awaits: a mutation may have refreshed (or removed) the entry
        entry = self.index.get(path)
        if entry is None or stamp != entry.stamp or entry.hash_status is HashStatus.DONE:
            return  # gone, changed (the reconcile queues it again) or its hash known meanwhile
        if error is not None or not sha256:
            updated = entry.evolve(hash_status=HashStatus.FAILED)
        else:
            updated = entry.evolve(sha256=sha256, hash_status=HashStatus.DONE)
            if self._write_hash_sidecars() and entry.sidecar_mtime_ns == 0:
                # under the model's lock, like every other sidecar writer; then re-read
                # from disk so the index equals what a fresh scan builds
                async with self._locks.hold(path):
                    current = self.index.get(path)
                    if current is not None and current.sidecar_mtime_ns == 0:
                        await asyncio.to_thread(self._write_hash_only_sidecar, updated, self.sidecars)
                await self.refresh_paths([path], reason="hashed", broadcast=False)
                self._note_hashed(path)
                return
        async with self._index_lock:
            current = self.index.get(path)
            if current is None or current.stamp != updated.stamp or current.hash_status is HashStatus.DONE:
                return  # changed while a batch held the lock
            updated = current.evolve(sha256=updated.sha256, hash_status=updated.hash_status)
            self.index.upsert(updated)
        self._cache.defer_upsert(updated)
        self._note_hashed(path)

    def _note_hashed(self, path: str) -> None:
        """Tell browsers about finished hashes, at most once a second (one message per
        burst, not one per file of a 10,000-file backlog)."""
        self._hashed_paths.append(path)
        if self._hash_notice is None:
            loop = asyncio.get_running_loop()
            self._hash_notice = loop.call_later(HASH_NOTICE_INTERVAL, self._send_hash_notice)

    def _send_hash_notice(self) -> None:
        self._hash_notice = None
        paths, self._hashed_paths = self._hashed_paths, []
        self._notice_task = asyncio.ensure_future(self._announce_hashed(paths))

    async def _announce_hashed(self, paths: list[str]) -> None:
        settle_memory()  # the fresh entries of this burst are long-lived too
        progress = self._hash_queue.snapshot()
        await self._hub.broadcast({"type": "hash_progress", "model_type": self.model_type.value, "hashed": len(paths), **progress})
        await self.broadcast_changed("hashed", paths[:200])

    @staticmethod
    def _write_hash_only_sidecar(entry: ModelEntry, sidecars: SidecarStore) -> None:
        """Write the de-facto fields of a freshly hashed model (under its lock).

        Re-read under the lock: another host may have written a sidecar since the index
        saw none; then only what it lacks is filled in, and a refused one is left alone.
        """
        read = sidecars.read(entry.file_path)
        if read.refused or read.corrupt:
            return
        fields = {
            "file_name": entry.file_name,
            "model_name": entry.model_name,
            "file_path": entry.file_path,
            "size": entry.stamp.size,
            "modified": entry.stamp.mtime,
            "sha256": entry.sha256,
            "base_model": entry.base_model,
        }
        data = dict(read.data)
        for key, value in fields.items():
            if data.get(key) in (None, ""):
                data[key] = value
        if data != read.data or read.source != "metadata.json":
            sidecars.write(entry.file_path, data)

    # reads -----------------------------------------------------------------------
    def require(self, path: str) -> ModelEntry:
        entry = self.index.get(path)
        if entry is None:
            raise ModelNotFound(f"no {self.model_type.value} at '{path}'")
        return entry

    def get_paginated_data(self, query: ListQuery, page: int, page_size: int) -> Page:
        paths, total = self.index.page(query, (page - 1) * page_size, page_size, self.usage)
        entries = self.index.entries
        # a path may be missing for the moment a big batch is applied slice by slice
        items = [e for p in paths if (e := entries.get(p)) is not None]
        return Page(items=items, total=total, page=page, page_size=page_size)

    def find_by_hash(self, value: str) -> list[ModelEntry]:
        entries = self.index.entries
        return [entries[p] for p in sorted(self.index.paths_by_hash(value.casefold())) if p in entries]

    def format_response(self, entry: ModelEntry) -> dict[str, Any]:
        """The JSON listing item of one entry."""
        preview_url = ""
        preview_path = entry.preview_path
        if preview_path:
            version = entry.sidecar_mtime_ns or entry.stamp.mtime_ns
            preview_url = f"/api/lm/previews?path={quote(preview_path, safe='/')}&v={version}"
        stamp = entry.stamp
        civitai = entry.civitai
        return {
            "model_type": entry.model_type.value,
            "model_name": entry.model_name,
            "file_name": entry.file_name,
            "file_path": entry.file_path,
            "relative_path": entry.relative_path,
            "folder": entry.folder,
            "model_root": entry.root,
            "size": stamp.size,
            "modified": stamp.mtime_ns / 1e9,
            "sha256": entry.sha256,
            "autov2": entry.autov2,
            "autov3": entry.autov3,
            "hash_status": entry.hash_status.value,
            "base_model": entry.base_model,
            "sub_type": entry.sub_type,
            "preview_url": preview_url,
            "preview_type": preview_kind(preview_path),
            "preview_nsfw_level": entry.preview_nsfw_level,
            "tags": list(entry.tags),
            "trigger_words": list(entry.trigger_words),
            "civitai_trigger_words": list(civitai.trained_words),
            "favorite": entry.favorite,
            "notes": entry.notes,
            "usage_tips": entry.usage_tips,
            "from_civitai": entry.from_civitai,
            "civitai": civitai.as_dict(),
            "creator": entry.creator,
            "metadata_status": entry.metadata_status.value,
            "exclude": entry.exclude,
            **self._usage_fields(entry),
        }

    def _usage_fields(self, entry: ModelEntry) -> dict[str, Any]:
        """``usage_count`` and ``last_used`` (epoch seconds like ``modified``; None when never used)."""
        record = self.usage.all().get(entry.sha256) if entry.sha256 else None
        if record is None:
            return {"usage_count": 0, "last_used": None}
        return {"usage_count": record.count, "last_used": record.last_used}

    async def read_full_metadata(self, path: str) -> dict[str, Any]:
        """The whole sidecar of a model (unknown keys included), read from disk.

        Raises ``ModelNotFound`` (not indexed) and ``PathOutsideLibrary`` (the model's real
        path has left the library since it was indexed). A companion that may not be read
        (a hard link, a symlink leading out) reads as none.
        """
        self.require(path)
        sidecars = self.sidecars

        def read() -> dict[str, Any]:
            # checked again at read time: the index may predate a symlink swapped in
            if not sidecars.contains_real(os.path.realpath(path)):
                raise PathOutsideLibrary(f"'{path[:200]}' resolves to a place outside the library")
            return sidecars.read(path).data

        return await asyncio.to_thread(read)
