"""Advisory, non-blocking byte-range locks on open files, across processes and hosts.

Owns the one platform switch: ``fcntl`` record locks on POSIX (honoured across machines on
NFS through the lock manager and on SMB mounts), ``msvcrt.locking`` on Windows. It must not
decide what a lock protects, nor block: callers poll and back off.

POSIX record locks belong to the process, not to the file descriptor: two descriptors of
one process never exclude each other, and closing *any* descriptor of a file drops every
lock the process holds on it. Callers therefore keep one descriptor per locked file and
exclude their own threads and tasks by other means.
"""
from __future__ import annotations

import errno
import os
import threading

__all__ = ["try_lock", "unlock"]

_WINDOWS = os.name == "nt"
# One seek-then-lock at a time per process: msvcrt locks from the file position.
_seek_lock = threading.Lock()
_BUSY = frozenset({errno.EACCES, errno.EAGAIN, getattr(errno, "EDEADLK", errno.EAGAIN)})

if _WINDOWS:  # pragma: no cover - exercised on Windows only
    import msvcrt

    def try_lock(fd: int, offset: int = 0, length: int = 1) -> bool:
        """Take an exclusive lock of ``length`` bytes at ``offset``; False when another holds it."""
        with _seek_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, length)
            except OSError as exc:
                if exc.errno in _BUSY or getattr(exc, "winerror", None) in (33, 36):  # lock violation
                    return False
                raise
        return True

    def unlock(fd: int, offset: int = 0, length: int = 1) -> None:
        with _seek_lock:
            os.lseek(fd, offset, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, length)

else:
    import fcntl

    def try_lock(fd: int, offset: int = 0, length: int = 1) -> bool:
        """Take an exclusive lock of ``length`` bytes at ``offset``; False when another holds it.

        The descriptor must be open for writing (POSIX write locks require it). ``length``
        0 means from ``offset`` to the end of the file and beyond (POSIX only).
        """
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, offset, os.SEEK_SET)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
        return True

    def unlock(fd: int, offset: int = 0, length: int = 1) -> None:
        fcntl.lockf(fd, fcntl.LOCK_UN, length, offset, os.SEEK_SET)
