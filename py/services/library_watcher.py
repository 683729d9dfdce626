"""Noticing changes on disk while the server runs: watchdog events, a walk as fallback.

Owns the observer thread and the debounce; it turns bursts of file events into one
scoped reconcile per model type. It must not read models itself.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Awaitable, Callable

_log = logging.getLogger(__name__)

ReconcileFn = Callable[[list[str] | None], Awaitable[object]]
TRANSIENT_SUFFIXES = (".part", ".part.json", ".tmp")


def _is_transient(path: str) -> bool:
    """Files that are never models: each write to them must not restart the debounce."""
    return path.endswith(TRANSIENT_SUFFIXES)


class LibraryWatcher:
    """Watches root folders; calls ``on_change(folders)`` debounced on the event loop."""

    def __init__(
        self,
        *,
        roots: list[str],
        on_change: ReconcileFn,
        debounce_seconds: float = 0.4,
        fallback_interval: float = 10.0,
    ) -> None:
        self._roots = [r for r in roots if os.path.isdir(r)]
        self._on_change = on_change
        self._debounce = debounce_seconds
        self._fallback_interval = fallback_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer = None
        self._dirty: set[str] = set()
        self._full = False
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._fallback_task: asyncio.Task | None = None
        self.mode = "off"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._start_observer)
            self.mode = "watchdog"
        except Exception as exc:  # no inotify, watch limit reached, watchdog missing
            _log.warning("file watching unavailable (%s); checking folders every %.0fs", exc, self._fallback_interval)
            self.mode = "polling"
            self._fallback_task = asyncio.create_task(self._poll())

    def _start_observer(self) -> None:
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
        for root in self._roots:
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
            return  # a download in progress or an atomic write's temp file
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

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._fallback_interval)
            await self._run(None)  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in (self._task, self._fallback_task):
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
