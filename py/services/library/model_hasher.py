"""Hashes model files (SHA-256, AutoV2, AutoV1) in one pass, in the background, one at a time.

Owns the hashing loop (large reads into one reused buffer; hashlib releases the GIL) and
the queue that feeds it off the event loop; it must not know where hashes are stored
(``on_done`` decides) nor hash two files at once (parallel reads thrash the disk).
"""
from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..shared.model_types import ModelType

__all__ = ["AUTOV1_LENGTH", "AUTOV1_OFFSET", "FileHashes", "HashCancelled", "HashQueue", "hash_file"]

_log = logging.getLogger(__name__)

# Files at least this big are dropped from the page cache behind the read: hashing an
# 8 GiB checkpoint must not push ComfyUI's working set (or the OS's) out of memory.
DROP_CACHE_FROM_BYTES = 64 * 1024 * 1024
# A1111's legacy "model hash": SHA-256 of the 64 KiB at 1 MiB, first 8 hex digits.
AUTOV1_OFFSET = 0x100000
AUTOV1_LENGTH = 0x10000
_PAUSE_POLL_SECONDS = 0.05


class HashCancelled(Exception):
    """Hashing stopped because ``should_stop()`` turned true."""


@dataclass(slots=True, frozen=True, kw_only=True)
class FileHashes:
    sha256: str  # lowercase hex of the whole file
    autov2: str  # sha256[:10] (CivitAI's AutoV2)
    autov1: str  # first 8 hex of SHA-256 over file[0x100000:0x110000] (may be empty: short file)


def hash_file(
    path: str | os.PathLike[str],
    *,
    chunk_size: int = 8 * 1024 * 1024,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int], None] | None = None,
    max_bytes_per_second: float | None = None,
    unpaused: threading.Event | None = None,
) -> FileHashes:
    """Hash the file at ``path`` in a single sequential pass.

    ``should_stop`` is polled before every read (raises ``HashCancelled``);
    ``on_progress(bytes_done)`` is called after every chunk, in the calling thread;
    ``max_bytes_per_second`` sleeps between chunks to stay under that rate; while the
    ``unpaused`` event is clear, hashing waits between chunks (paused time does not count
    against the rate). ``OSError`` passes through. Blocking: run it in a worker thread.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    whole = hashlib.sha256()
    legacy = hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    done = 0
    started = time.monotonic()
    paused_for = 0.0
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        _advise_sequential(fd)
        drop = _DONTNEED is not None and os.fstat(fd).st_size >= DROP_CACHE_FROM_BYTES
        dropped = 0  # bytes before this offset were handed back to the kernel
        while True:
            if unpaused is not None and not unpaused.is_set():
                paused_for += _wait_unpaused(unpaused, should_stop)
            if should_stop is not None and should_stop():
                raise HashCancelled(f"hashing of {os.fspath(path)!r} was cancelled")
            count = fh.readinto(view)
            if not count:
                break
            chunk = view[:count]
            whole.update(chunk)
            # The AutoV1 window overlaps this chunk: feed the overlapping slice.
            low = max(AUTOV1_OFFSET, done)
            high = min(AUTOV1_OFFSET + AUTOV1_LENGTH, done + count)
            if low < high:
                legacy.update(chunk[low - done : high - done])
            done += count
            if drop and done - dropped >= 4 * chunk_size:
                # behind the read, a few chunks back: the kernel's read-ahead window is untouched
                _drop_cached(fd, dropped, done - dropped)
                dropped = done
            if on_progress is not None:
                on_progress(done)
            if max_bytes_per_second:
                ahead = done / max_bytes_per_second - (time.monotonic() - started - paused_for)
                if ahead > 0:
                    _sleep_unless_stopped(ahead, should_stop)
        if drop:
            _drop_cached(fd, dropped, 0)  # the rest, to the end of the file
    digest = whole.hexdigest()
    return FileHashes(sha256=digest, autov2=digest[:10], autov1=legacy.hexdigest()[:8])


_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)


def _drop_cached(fd: int, offset: int, length: int) -> None:
    # a hint (Linux, the BSDs); where it is missing the page cache simply keeps the file
    try:
        os.posix_fadvise(fd, offset, length, _DONTNEED)
    except (OSError, AttributeError):
        pass


def _advise_sequential(fd: int) -> None:
    # Doubles kernel read-ahead on Linux; a hint only, absent on Windows and macOS.
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        try:
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass


def _wait_unpaused(unpaused: threading.Event, should_stop: Callable[[], bool] | None) -> float:
    began = time.monotonic()
    while not unpaused.wait(_PAUSE_POLL_SECONDS):
        if should_stop is not None and should_stop():
            break
    return time.monotonic() - began


def _sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool] | None) -> None:
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        if should_stop is not None and should_stop():
            return
        time.sleep(min(remaining, _PAUSE_POLL_SECONDS))


@dataclass(slots=True)
class _Queued:
    path: str
    priority: int
    seq: int


def hash_key(model_type: "ModelType", path: str) -> str:
    """The hash queue's key of one model file (the same file in two types hashes twice)."""
    return f"{model_type.value}\x00{path}"


class HashQueue:
    """Hashes queued files in the background, one at a time, off the event loop.

    One worker (hashing is disk-bound; two parallel hashes thrash the disk) runs
    ``hash_file`` in a dedicated thread and never hashes the same key twice concurrently.
    Call every method from the event loop's thread. For each finished file the worker
    awaits ``on_done(key, hashes, None)``, or ``on_done(key, None, error)`` when hashing
    failed (``OSError``: file gone, unreadable); exceptions from ``on_done`` are logged.
    A file interrupted by ``stop()`` gets no ``on_done``: it goes back to the queue.
    """

    def __init__(
        self,
        *,
        on_done: Callable[[str, FileHashes | None, BaseException | None], Awaitable[None]],
        max_bytes_per_second: float | None = None,
        chunk_size: int = 8 * 1024 * 1024,
    ) -> None:
        self._on_done = on_done
        self._max_bytes_per_second = max_bytes_per_second
        self._chunk_size = chunk_size
        self._heap: list[tuple[int, int, str]] = []  # (priority, seq, key); stale rows skipped
        self._queued: dict[str, _Queued] = {}
        self._seq = itertools.count()
        self._current_key: str | None = None
        self._current_path: str | None = None
        self._current_bytes = 0
        self._current_total = 0
        self._done = 0
        self._failed = 0
        self._stop_flag = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker (a no-op when it runs); files submitted before start are kept."""
        if self._task is not None and not self._task.done():
            return
        if self._executor is not None:  # left by a worker that crashed
            self._executor.shutdown(wait=False)
        self._stop_flag.clear()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._update_idle()
        if self._queued:
            self._wakeup.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lm-hash")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lm-hash-queue")

    async def stop(self, *, grace: float = 5.0) -> None:
        """Stop the worker and wait for its thread; the current hash ends within one chunk.

        The interrupted file goes back to the queue, with everything still queued, for a
        later ``start``. An ``on_done`` in progress may finish for ``grace`` seconds before
        the worker is cancelled.
        """
        task, executor = self._task, self._executor
        self._task = self._executor = None
        self._stop_flag.set()
        if self._wakeup is not None:
            self._wakeup.set()
        if task is not None:
            # asyncio.wait never raises the task's outcome, so a CancelledError here is
            # a cancellation of stop() itself and propagates.
            finished, _ = await asyncio.wait({task}, timeout=grace)
            if not finished:
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                _log.error("hash queue: the worker had crashed", exc_info=task.exception())
        if executor is not None:
            # The thread notices the stop flag within one chunk; wait for it off the loop.
            await asyncio.get_running_loop().run_in_executor(None, partial(executor.shutdown, wait=True))

    def submit(self, key: str, path: str, *, priority: int = 10) -> None:
        """Queue ``path`` for hashing under ``key``; lower ``priority`` values go sooner.

        Idempotent per key: a key already running is left alone; a key already queued
        keeps its place unless ``priority`` is more urgent (a user request can bump a file
        with priority 0), and takes the newest ``path`` (the file may have moved).
        """
        if key == self._current_key:
            return
        item = self._queued.get(key)
        if item is not None:
            item.path = path
            if priority >= item.priority:
                return
            item.priority = priority
        else:
            item = self._queued[key] = _Queued(path=path, priority=priority, seq=next(self._seq))
        heapq.heappush(self._heap, (item.priority, item.seq, key))
        if self._idle is not None:
            self._idle.clear()
        if self._wakeup is not None:
            self._wakeup.set()

    def pending_count(self) -> int:
        """Files waiting or being hashed."""
        return len(self._queued) + (self._current_key is not None)

    def is_queued(self, key: str) -> bool:
        """True while ``key`` waits or is being hashed."""
        return key in self._queued or key == self._current_key

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until nothing is queued or running (``on_done`` of the last file included).

        Raises ``asyncio.TimeoutError`` (the builtin ``TimeoutError`` on 3.11+) after
        ``timeout`` seconds; ``RuntimeError`` if the queue was never started.
        """
        if self._idle is None:
            raise RuntimeError("the hash queue was never started")
        await asyncio.wait_for(self._idle.wait(), timeout)

    def set_paused(self, paused: bool) -> None:
        """Pause (between chunks, and before the next file) or resume hashing."""
        if paused:
            self._unpaused.clear()
        else:
            self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def snapshot(self) -> dict[str, Any]:
        """Progress for the UI: queued (not counting the current file), current file and bytes, totals."""
        return {
            "queued": len(self._queued),
            "current": self._current_path,
            "current_bytes": self._current_bytes,
            "current_total": self._current_total,
            "done": self._done,
            "failed": self._failed,
            "paused": self.paused,
        }

    # -- worker -------------------------------------------------------------------

    def _pop(self) -> tuple[str, _Queued] | None:
        while self._heap:
            priority, seq, key = heapq.heappop(self._heap)
            item = self._queued.get(key)
            if item is not None and item.seq == seq and item.priority == priority:
                del self._queued[key]
                return key, item
        return None

    def _update_idle(self) -> None:
        assert self._idle is not None
        if not self._queued and self._current_key is None:
            self._idle.set()
        else:
            self._idle.clear()

    def _progress(self, done: int) -> None:  # called in the hashing thread
        self._current_bytes = done

    async def _run(self) -> None:
        assert self._wakeup is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        while not self._stop_flag.is_set():
            popped = self._pop()
            if popped is None:
                self._update_idle()
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            key, item = popped
            self._current_key, self._current_path = key, item.path
            self._current_bytes = 0
            try:
                self._current_total = await loop.run_in_executor(self._executor, _size_or_zero, item.path)
                hashes: FileHashes | None = await loop.run_in_executor(
                    self._executor,
                    partial(
                        hash_file,
                        item.path,
                        chunk_size=self._chunk_size,
                        should_stop=self._stop_flag.is_set,
                        on_progress=self._progress,
                        max_bytes_per_second=self._max_bytes_per_second,
                        unpaused=self._unpaused,
                    ),
                )
                error: BaseException | None = None
            except HashCancelled:  # stop() set the flag: back to the queue, and out
                self._requeue(key, item)
                break
            except asyncio.CancelledError:
                self._requeue(key, item)
                raise
            except Exception as exc:  # OSError mostly; anything else is reported the same way
                hashes, error = None, exc
            finally:
                self._current_key = self._current_path = None
                self._current_bytes = self._current_total = 0
            if error is None:
                self._done += 1
            else:
                self._failed += 1
                _log.info("hashing %s failed: %s", item.path, error)
            try:
                await self._on_done(key, hashes, error)
            except Exception:
                _log.exception("hash queue: on_done failed for %s", item.path)
            self._update_idle()

    def _requeue(self, key: str, item: _Queued) -> None:
        if key not in self._queued:
            self._queued[key] = item
            heapq.heappush(self._heap, (item.priority, item.seq, key))


def _size_or_zero(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
