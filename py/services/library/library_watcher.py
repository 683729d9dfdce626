"""Noticing changes on disk while the server runs: watchdog events, a stat-only poll where none come.

Owns the observer thread, the poll of roots that give no change events (network file
systems, where other machines' edits raise no event here; or any root when watching is
unavailable) and the debounce; it turns bursts of changes into one scoped reconcile per
model type. It must not read models itself (the poll only lists folders and stats files).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Awaitable, Callable

from ..shared.cross_process_locks import LOCK_FILE_NAME
from .network_mounts import network_filesystem

_log = logging.getLogger(__name__)

ReconcileFn = Callable[[list[str] | None], Awaitable[object]]
NetworkCheck = Callable[[str], "str | None"]
TRANSIENT_SUFFIXES = (".part", ".part.json", ".tmp")
# A poll may take this share of the time at most (10% of one disk, or of the NAS's attention).
POLL_WALK_FACTOR = 10.0
MIN_POLL_INTERVAL = 5.0


def _is_transient(path: str) -> bool:
    """Files that are never models: each write to them must not restart the debounce."""
    if path.endswith(TRANSIENT_SUFFIXES):
        return True
    name = os.path.basename(path)
    # our cross-process lock files come and go with every edit; NFS's silly-renamed open files too
    return name == LOCK_FILE_NAME or name.startswith(".nfs")


FolderStamps = dict[str, int]


def stamp_folders(roots: list[str]) -> FolderStamps:
    """One fingerprint per folder below ``roots``: names, sizes, mtimes and inodes of what it
    holds (hidden and transient names left out). Blocking; stat only, nothing is opened."""
    stamps: FolderStamps = {}
    visited: set[tuple[int, int]] = set()
    stack = list(reversed(roots))
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in visited:
                continue  # a symlink loop, or a root nested in another root
            visited.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue  # gone or unreadable: its parent's fingerprint shows the change
        parts: list[tuple] = []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.endswith(TRANSIENT_SUFFIXES):
                continue
            try:
                if entry.is_dir():
                    parts.append((name, "d"))
                    stack.append(f"{folder}/{name}")
                    continue
                info = entry.stat()
            except OSError:
                continue
            parts.append((name, info.st_size, info.st_mtime_ns, info.st_ino))
        parts.sort()
        stamps[folder] = hash(tuple(parts))
    return stamps


def changed_folders(before: FolderStamps, after: FolderStamps) -> list[str]:
    """Folders whose content differs, appeared, or (by their parent) disappeared."""
    changed = {folder for folder, stamp in after.items() if before.get(folder) != stamp}
    changed.update(os.path.dirname(folder) for folder in before if folder not in after)
    return sorted(changed)


class LibraryWatcher:
    """Watches root folders; calls ``on_change(folders)`` debounced on the event loop."""

    def __init__(
        self,
        *,
        roots: list[str],
        on_change: ReconcileFn,
        debounce_seconds: float = 0.4,
        min_poll_interval: float | None = None,
        network_check: NetworkCheck | None = None,
    ) -> None:
        self._roots = [r for r in roots if os.path.isdir(r)]
        self._on_change = on_change
        self._debounce = debounce_seconds
        self._min_poll_interval = MIN_POLL_INTERVAL if min_poll_interval is None else min_poll_interval
        self._network_check = network_check or network_filesystem
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer = None
        self._dirty: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._poll_task: asyncio.Task | None = None
        self.mode = "off"
        self.polled_roots: dict[str, str] = {}  # root -> why it is polled (a file-system type)
        self.poll_interval: float | None = None

    async def start(self) -> None:
        """Watch local roots for events and take the first snapshot of polled ones.

        Returns once both are in place: any change after it is noticed.
        """
        self._loop = asyncio.get_running_loop()
        kinds = await asyncio.to_thread(lambda: {root: self._classify(root) for root in self._roots})
        polled = {root: kind for root, kind in kinds.items() if kind}
        watched = [root for root in self._roots if root not in polled]
        if watched:
            try:
                await asyncio.to_thread(self._start_observer, watched)
            except Exception as exc:  # no inotify, watch limit reached, watchdog missing
                _log.warning("file watching unavailable (%s); checking folders by polling instead", exc)
                polled.update({root: "" for root in watched})
                watched = []
        self.polled_roots = polled
        self.mode = "+".join(m for m, on in (("watchdog", watched), ("polling", polled)) if on) or "off"
        if polled:
            snapshot, seconds = await asyncio.to_thread(self._timed_stamps, sorted(polled))
            self.poll_interval = self._interval(seconds)
            for root, kind in sorted(polled.items()):
                if kind:
                    _log.info(
                        "%s is on a network filesystem (%s): no change events from other machines; "
                        "polling every %.0f s", root, kind, self.poll_interval,
                    )
            self._poll_task = asyncio.create_task(self._poll(sorted(polled), snapshot), name="lm-library-poll")

    def _classify(self, root: str) -> str:
        try:
            return self._network_check(root) or ""
        except OSError as exc:
            _log.debug("cannot tell the file system of %s: %s", root, exc)
            return ""

    def _start_observer(self, roots: list[str]) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # runs on the observer thread
                if event.event_type in ("opened", "closed", "closed_no_write"):
                    return
                paths = [event.src_path]
                dest = getattr(event, "dest_path", "")
                if dest:
                    paths.append(dest)
                watcher._from_thread(paths, event.is_directory)

        from watchdog import events as ev

        # Only events that can change the library: without this filter watchdog parses
        # every open/close our own hasher and scanner cause, in Python.
        wanted = [
            getattr(ev, name)
            for name in (
                "FileCreatedEvent", "FileDeletedEvent", "FileModifiedEvent", "FileMovedEvent",
                "FileClosedEvent", "DirCreatedEvent", "DirDeletedEvent", "DirMovedEvent",
            )
            if hasattr(ev, name)
        ]
        observer = Observer()
        handler = _Handler()
        for root in roots:
            try:
                observer.schedule(handler, root, recursive=True, event_filter=wanted)
            except TypeError:  # watchdog without event filters
                observer.schedule(handler, root, recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _from_thread(self, paths: list[str], is_directory: bool) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        decoded = [os.fsdecode(raw) for raw in paths]
        if not is_directory and all(_is_transient(p) for p in decoded):
            return  # a download in progress, an atomic write's temp file, a lock file
        folders = []
        for path in decoded:
            folder = path if is_directory else os.path.dirname(path)
            folders.append(folder.replace(os.sep, "/"))
        try:
            self._loop.call_soon_threadsafe(self._mark, folders)
        except RuntimeError:
            pass  # loop closing

    def _mark(self, folders: list[str]) -> None:
        self._dirty.update(folders)
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_later(self._debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._task is not None and not self._task.done():
            # a reconcile is running: try again after it
            assert self._loop is not None
            self._timer = self._loop.call_later(self._debounce, self._fire)
            return
        folders = sorted(self._dirty)
        self._dirty.clear()
        # a parent folder covers its children
        minimal: list[str] = []
        for folder in folders:
            if not any(folder == m or folder.startswith(m.rstrip("/") + "/") for m in minimal):
                minimal.append(folder)
        self._task = asyncio.create_task(self._run(minimal))

    async def _run(self, folders: list[str]) -> None:
        try:
            await self._on_change(folders)
        except Exception:
            _log.exception("reconcile after file events failed")

    # polling -------------------------------------------------------------------------
    def _interval(self, walk_seconds: float) -> float:
        return max(self._min_poll_interval, POLL_WALK_FACTOR * walk_seconds)

    @staticmethod
    def _timed_stamps(roots: list[str]) -> tuple[FolderStamps, float]:
        started = time.monotonic()
        stamps = stamp_folders(roots)
        return stamps, time.monotonic() - started

    async def _poll(self, roots: list[str], snapshot: FolderStamps) -> None:
        """Compare folder fingerprints every interval; changed folders go through the debounce."""
        assert self.poll_interval is not None
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                fresh, seconds = await asyncio.to_thread(self._timed_stamps, roots)
            except Exception:
                _log.exception("polling %s failed", ", ".join(roots))
                continue
            changed = changed_folders(snapshot, fresh)
            snapshot = fresh
            self.poll_interval = self._interval(seconds)
            if changed:
                self._mark(changed)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._task, self._poll_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self._observer is not None:
            observer = self._observer
            self._observer = None
            observer.stop()
            await asyncio.to_thread(observer.join, 5)
