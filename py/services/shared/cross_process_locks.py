"""Per-model locks that other processes and other hosts honour: byte ranges of a lock file.

Owns the lock-file protocol: one hidden ``.lm-lock`` per model folder, one byte per model
(at an offset derived from the model's file stem, so hosts mounting the library at
different paths agree), one descriptor per lock file in this process, and deleting the
file again once nobody holds a range of it. It must not wait, retry or know what a lock
protects (``ModelLocks`` does that), and its methods block: call them from worker threads.

Why the lock file can be deleted safely: a holder verifies after locking that the path
still names the file it locked (else it re-opens), and a process deletes the file only
while it holds the whole file (POSIX), or on Windows once no slot is held and nobody has
it open (Windows refuses to delete open files), so nobody is left holding a range of a
deleted file.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from .file_lock import try_lock, unlock

__all__ = ["LOCK_FILE_NAME", "CrossProcessLocks", "Grant", "LockSlot", "slot_for"]

_log = logging.getLogger(__name__)

LOCK_FILE_NAME = ".lm-lock"
# Offsets 1 .. 2**30 - 1: within reach of 32-bit lock managers and of msvcrt's C long length;
# offset 0 is never a model's, so the whole-file lock of a deleting process covers all.
_SLOTS = (1 << 30) - 1
_WINDOWS = os.name == "nt"
# The file went away under an open descriptor (NFS): open it again.
_STALE = frozenset({errno.ESTALE, errno.ENOENT, errno.EBADF})
_OPEN_FLAGS = (
    os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
)


@dataclass(slots=True, frozen=True, kw_only=True, order=True)
class LockSlot:
    """The byte of a lock file that stands for one model (and for its sidecar)."""

    lock_file: str
    offset: int
    label: str = field(compare=False)


def slot_for(model_path: str) -> LockSlot:
    """The slot of ``model_path``: ``<folder>/.lm-lock`` at a stable hash of the file stem.

    Blocking (resolves the folder). The stem is NFC-normalised and case-folded so hosts on
    case-insensitive or NFD file systems (SMB from macOS) land on the same byte; two models
    sharing a byte merely wait for each other.
    """
    folder, name = os.path.split(model_path)
    stem = os.path.splitext(name)[0]
    key = unicodedata.normalize("NFC", stem).casefold().encode("utf-8", "surrogatepass")
    offset = 1 + int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % _SLOTS
    # one descriptor per file means one key per file: a symlinked folder resolves to its target
    lock_file = os.path.join(os.path.realpath(folder or "."), LOCK_FILE_NAME)
    return LockSlot(lock_file=lock_file, offset=offset, label=name)


@dataclass(slots=True, frozen=True, kw_only=True)
class Grant:
    """Slots held by one ``try_acquire``; ``release`` gives them back."""

    slots: tuple[LockSlot, ...]


@dataclass(slots=True, eq=False)
class _LockFile:
    """This process's state of one lock file; never dropped (a second descriptor of the same
    file would silently release the first one's locks when closed)."""

    path: str
    mutex: threading.Lock = field(default_factory=threading.Lock)
    fd: int | None = None
    # offset -> whether the OS lock is held (False: the folder or file system allows no lock)
    held: dict[int, bool] = field(default_factory=dict)


class CrossProcessLocks:
    """The process's hold on lock files; a slot is held by at most one grant at a time.

    POSIX record locks belong to the process, so there is one instance per process
    (``of_process``); its own holders exclude each other here, other processes by the OS.
    """

    _process: ClassVar["CrossProcessLocks | None"] = None
    _process_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._files: dict[str, _LockFile] = {}
        self._files_lock = threading.Lock()
        self._warned: set[str] = set()

    @classmethod
    def of_process(cls) -> "CrossProcessLocks":
        with cls._process_lock:
            if cls._process is None:
                cls._process = cls()
            return cls._process

    def try_acquire(self, model_paths: Iterable[str]) -> Grant | LockSlot:
        """Take the slots of every path without waiting: a ``Grant``, or the first busy slot
        (then nothing is held). Blocking; creates ``.lm-lock`` in folders that exist."""
        by_key: dict[tuple[str, int], LockSlot] = {}
        for path in model_paths:
            slot = slot_for(path)
            by_key.setdefault((slot.lock_file, slot.offset), slot)
        taken: list[LockSlot] = []
        for slot in sorted(by_key.values()):
            if not self._take(slot):
                self.release(Grant(slots=tuple(taken)))
                return slot
            taken.append(slot)
        return Grant(slots=tuple(taken))

    def release(self, grant: Grant) -> None:
        """Give the slots back; a lock file nobody uses any more is closed (and deleted). Blocking."""
        for slot in reversed(grant.slots):
            state = self._file(slot.lock_file)
            with state.mutex:
                locked = state.held.pop(slot.offset, False)
                if locked and state.fd is not None:
                    try:
                        unlock(state.fd, slot.offset, 1)
                    except OSError as exc:  # the file system dropped it already; closing frees it anyway
                        _log.debug("unlocking %s failed: %s", state.path, exc)
                if state.fd is not None and not any(state.held.values()):
                    self._retire(state)

    # ------------------------------------------------------------------ internals

    def _file(self, path: str) -> _LockFile:
        with self._files_lock:
            state = self._files.get(path)
            if state is None:
                state = self._files[path] = _LockFile(path=path)
            return state

    def _take(self, slot: LockSlot) -> bool:
        state = self._file(slot.lock_file)
        with state.mutex:
            if slot.offset in state.held:
                return False  # another holder of this process
            for _attempt in range(3):  # the file may be deleted between opening and locking it
                fresh = state.fd is None
                if fresh:
                    state.fd = self._open(state.path)
                    if state.fd is None:
                        state.held[slot.offset] = False
                        return True
                try:
                    locked = try_lock(state.fd, slot.offset, 1)
                except OSError as exc:
                    if exc.errno in _STALE and not any(state.held.values()):
                        self._close(state)
                        continue
                    # no lock manager (ENOLCK), a FUSE mount without locks (ENOSYS, EOPNOTSUPP),
                    # an I/O error: edits still work, only without other hosts' exclusion
                    self._warn_once(state.path, exc)
                    state.held[slot.offset] = False
                    if not any(state.held.values()):
                        self._close(state)
                    return True
                if not locked:
                    if not any(state.held.values()):
                        self._close(state)
                    return False
                if fresh and not self._is_current(state):
                    # an idle holder deleted the file after we opened it: ours is an orphan
                    self._close(state)
                    continue
                state.held[slot.offset] = True
                return True
            return False

    def _open(self, path: str) -> int | None:
        """The lock file's descriptor, created if missing; None where no lock file can be."""
        try:
            return os.open(path, _OPEN_FLAGS, 0o666)
        except (FileNotFoundError, NotADirectoryError):
            return None  # the folder does not exist (yet): nothing there to protect
        except OSError as exc:  # read-only folder or share, a foreign file in the way
            self._warn_once(path, exc)
            return None

    @staticmethod
    def _is_current(state: _LockFile) -> bool:
        assert state.fd is not None
        try:
            opened, named = os.fstat(state.fd), os.stat(state.path)
        except OSError:
            return False
        return opened.st_nlink > 0 and (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)

    def _retire(self, state: _LockFile) -> None:
        """Close an idle lock file, deleting it when nobody else uses it (folders stay as
        the user left them: auto-organize can remove emptied folders)."""
        assert state.fd is not None
        fd, state.fd = state.fd, None
        if _WINDOWS:  # pragma: no cover - exercised on Windows only
            # an open file cannot be deleted there: check nobody holds a slot, close, then try
            try:
                idle = try_lock(fd, 0, _SLOTS + 1)
                if idle:
                    unlock(fd, 0, _SLOTS + 1)
            except OSError:
                idle = False
            os.close(fd)
            if idle:
                try:
                    os.unlink(state.path)  # refused while any process has it open
                except OSError:
                    pass
            return
        try:
            # the whole file: granted only when no other process holds any range of it
            if try_lock(fd, 0, 0) and self._same_file(fd, state.path):
                os.unlink(state.path)
        except OSError:
            pass  # kept: someone else may be using it
        finally:
            os.close(fd)

    @staticmethod
    def _same_file(fd: int, path: str) -> bool:
        try:
            opened, named = os.fstat(fd), os.stat(path)
        except OSError:
            return False
        return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)

    @staticmethod
    def _close(state: _LockFile) -> None:
        if state.fd is not None:
            fd, state.fd = state.fd, None
            try:
                os.close(fd)
            except OSError:
                pass

    def _warn_once(self, path: str, exc: OSError) -> None:
        folder = os.path.dirname(path)
        if folder in self._warned:
            return
        self._warned.add(folder)
        _log.warning(
            "cannot lock models in %s (%s): edits made there by other processes or machines at the "
            "same moment may overwrite each other", folder, exc.strerror or exc,
        )
