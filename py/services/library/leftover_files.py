"""Half-written files our own writers leave behind when they are killed or give up.

Owns telling a stale leftover (an atomic-write or move temp nobody holds, a ``.part``
download that cannot resume, an orphan ``.part.json``) from one a live writer still holds,
removing the stale ones, and the registry of ``.part`` files this process writes. It must
not touch any other file, a resumable download, nor anything written in the last
``stale_after`` seconds. Blocking code: the scanner calls it from its worker thread.

A live writer is told by its lock (``atomic_file.temp_file`` locks temps; ``_PartFile`` in
the downloader locks ``.part`` files), or, inside this process, where POSIX record locks
never exclude their own holder, by the in-flight registries. The age guard covers a writer
on another host that has created its file but not yet locked it.
"""
from __future__ import annotations

import json
import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Container, Iterable

from ..shared.atomic_file import is_atomic_temp_name, temp_in_use

__all__ = [
    "PART_STATE_SUFFIX", "PART_SUFFIX", "STALE_AFTER_SECONDS", "LeftoverSweeper", "claim_part",
    "is_leftover_name", "release_part",
]

_log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
PART_STATE_SUFFIX = ".part.json"  # the downloader's resume state beside ``<name>.part``
# Longer than a writer on another host needs between creating and locking its file, and
# than the usual clock skew between hosts sharing a NAS (mtimes come from the server).
STALE_AFTER_SECONDS = 10.0
_MAX_STATE_BYTES = 1024 * 1024  # the downloader's state is a few hundred bytes
_STATE_READ_FLAGS = (
    os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
)

# ``.part`` files this process has open for writing. Held across the sweeper's check and
# unlink, so a download cannot (re)create its part in between; and checked before the lock
# probe, whose closing descriptor would drop this process's own lock on the file.
_parts: set[str] = set()
_parts_lock = threading.Lock()


def is_leftover_name(name: str) -> bool:
    """True for a name one of our writers may leave behind (says nothing about staleness)."""
    if name.startswith("."):
        return is_atomic_temp_name(name)
    return name.endswith(PART_SUFFIX) or name.endswith(PART_STATE_SUFFIX)


def claim_part(path: str) -> None:
    """Mark the ``.part`` at ``path`` as being written by this process (before opening it)."""
    with _parts_lock:
        _parts.add(path)


def release_part(path: str) -> None:
    """Undo ``claim_part`` (after closing the file)."""
    with _parts_lock:
        _parts.discard(path)


class LeftoverSweeper:
    """Removes the stale leftovers among the files of one folder listing."""

    def __init__(self, *, stale_after: float = STALE_AFTER_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.stale_after = stale_after
        self._clock = clock

    def sweep(self, directory: str, items: Iterable[os.DirEntry], names: Container[str]) -> int:
        """Remove the stale ones of ``items`` (entries of ``directory`` whose names pass
        ``is_leftover_name``; ``names`` is the whole listing). Returns how many went.

        Logs one INFO line per removed file; a file that cannot be removed is left, quietly.
        """
        now = self._clock()
        removed = 0
        for item in items:
            name = item.name
            path = f"{directory}/{name}"
            if name.endswith(PART_STATE_SUFFIX):
                if name[: -len(".json")] in names:
                    continue  # judged together with its .part
                removed += self._remove_if_stale(path, now, "resume state without its download")
            elif name.endswith(PART_SUFFIX):
                state = path + ".json"
                has_state = name + ".json" in names
                if has_state and _state_parses(state):
                    continue  # resumable: the download continues from it on its next start
                if self._remove_if_stale(path, now, "abandoned download", part=True):
                    removed += 1
                    if has_state:
                        removed += self._remove_if_stale(state, now, "unreadable resume state", age_guard=False)
            elif is_atomic_temp_name(name):
                removed += self._remove_if_stale(path, now, "temp file of an interrupted write", temp=True)
        return removed

    def _remove_if_stale(
        self, path: str, now: float, what: str, *, part: bool = False, temp: bool = False, age_guard: bool = True
    ) -> bool:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not stat_module.S_ISREG(st.st_mode):
            return False  # a folder or symlink by that name is not one of ours
        if age_guard and now - st.st_mtime < self.stale_after:
            return False
        with _parts_lock:
            if part and path in _parts:
                return False
            # Probe only once old enough: the probe's descriptor, closed, would drop the
            # lock of a writer in this process not yet in its in-flight registry.
            if (part or temp) and temp_in_use(path):
                return False
            try:
                again = os.lstat(path)
                if (again.st_ino, again.st_mtime_ns) != (st.st_ino, st.st_mtime_ns):
                    return False  # replaced meanwhile: judge the new file on the next scan
                os.unlink(path)
            except OSError:
                return False
        _log.info(
            "removed a leftover %s (%d bytes, last written %.0fs ago): %s", what, st.st_size, now - st.st_mtime, path
        )
        return True


def _state_parses(path: str) -> bool:
    """True when the download state file at ``path`` exists and is JSON."""
    try:
        fd = os.open(path, _STATE_READ_FLAGS)
    except OSError:
        return False
    try:
        with open(fd, "rb") as fh:
            if not stat_module.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return False
            raw = fh.read(_MAX_STATE_BYTES + 1)
    except OSError:
        return False
    if len(raw) > _MAX_STATE_BYTES:
        return False
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
