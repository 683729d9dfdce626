"""Crash-safe whole-file writes: readers see the old content or the new, never a torn file.

Owns the temp-file + fsync + ``os.replace`` dance (sidecars, settings, caches); it must not
decide what to write or where (callers validate paths through the path guard first).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from ...errors import DiskFull, is_disk_full
from .fast_json import dumps_indented
from .file_lock import try_lock

__all__ = [
    "TEMP_SUFFIX", "encode_json", "is_atomic_temp_name", "temp_file", "temp_in_use", "write_bytes_atomic", "write_json_atomic",
]

TEMP_SUFFIX = ".tmp"
# A hidden prefix keeps half-written files out of directory listings and of our scanner.
_TEMP_PREFIX = "."
_TOKEN_BYTES = 6

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def is_atomic_temp_name(name: str) -> bool:
    """True for a temp file name this module creates (``.<name>.<12 hex>.tmp``).

    A writer killed between creating and renaming its temp file leaves one behind; the
    scanner can use this to ignore (or clean up) such leftovers.
    """
    if not (name.startswith(_TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
        return False
    stem = name[len(_TEMP_PREFIX) : -len(TEMP_SUFFIX)]
    _, dot, token = stem.rpartition(".")
    return bool(dot) and len(token) == 2 * _TOKEN_BYTES and all(c in "0123456789abcdef" for c in token)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Replace the file at ``path`` with ``data`` atomically and durably.

    Writes a hidden temp file in the same folder, fsyncs it, gives it ``mode`` (default: the
    mode of the existing target; a new file gets ``0o666 & ~umask``), renames it over the
    target with ``os.replace`` and fsyncs the folder where the platform allows it. If the
    target is a symlink, the link itself is replaced by a regular file.

    Raises ``DiskFull`` when the disk or quota is exhausted and ``OSError`` for any other
    filesystem failure; either way the temp file is removed and the target is untouched.
    Blocking: call through ``asyncio.to_thread`` from async code.
    """
    target = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(target)
    view = memoryview(data)
    if mode is None:
        mode = _existing_mode(target)
    try:
        with temp_file(directory, name) as temp:
            while view:
                written = os.write(temp.fd, view)
                view = view[written:]
            os.fsync(temp.fd)
            if mode is not None:
                os.chmod(temp.path, mode)
            if RELEASE_BEFORE_RENAME:
                temp.release()
            os.replace(temp.path, target)
    except OSError as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull(directory, error_number=exc.errno) from exc
        raise
    _fsync_directory(directory)


def write_json_atomic(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, mode: int | None = None
) -> None:
    """Serialise ``obj`` as UTF-8 JSON (``ensure_ascii=False``) and write it atomically.

    Raises ``TypeError``/``ValueError`` for an object JSON cannot encode, before any file
    is touched; otherwise as ``write_bytes_atomic``.
    """
    write_bytes_atomic(path, encode_json(obj, indent=indent), mode=mode)


def encode_json(obj: Any, *, indent: int | None = 2) -> bytes:
    """``obj`` as ``json.dumps(obj, ensure_ascii=False, indent=indent)`` writes it, as UTF-8
    (the common indent of 2 through ``fast_json.dumps_indented``)."""
    if indent == 2:
        return dumps_indented(obj)
    return json.dumps(obj, ensure_ascii=False, indent=indent).encode("utf-8")


# Temp files being written by this process. Another process tells that a temp file is in
# use by its lock (held from creation to rename); this process by this set, because POSIX
# record locks never exclude the process that holds them.
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


class TempFile:
    """An open, locked temp file: ``fd`` to write, ``path`` to rename into place."""

    __slots__ = ("fd", "path", "_open")

    def __init__(self, fd: int, path: str) -> None:
        self.fd, self.path, self._open = fd, path, True

    def release(self) -> None:
        """Close the descriptor (and its lock). Windows renames no open file, so there the
        caller releases just before the rename; POSIX callers keep it until the end."""
        if self._open:
            self._open = False
            os.close(self.fd)


RELEASE_BEFORE_RENAME = os.name == "nt"


@contextlib.contextmanager
def temp_file(directory: str, name: str) -> Iterator[TempFile]:
    """A new hidden temp file for ``name`` in ``directory``, locked while the block runs.

    The block writes through ``temp.fd`` and may rename ``temp.path`` into place (calling
    ``temp.release()`` first where ``RELEASE_BEFORE_RENAME``). On leaving, the descriptor is
    closed and a temp file still at ``path`` (the block failed or did not rename it) is
    removed. Blocking.
    """
    fd, path = _create_temp(directory, name)
    temp = TempFile(fd, path)
    try:
        with _in_flight_lock:
            _in_flight.add(path)
        # A killed writer's lock dies with it: the next scan can tell its temp file is stale.
        with suppress(OSError):
            try_lock(fd, 0, 1)
        yield temp
    finally:
        temp.release()
        with suppress(OSError):
            if os.path.lexists(path):
                os.unlink(path)
        with _in_flight_lock:
            _in_flight.discard(path)


def temp_in_use(path: str) -> bool:
    """True while some process (this one included) is writing the temp file at ``path``.

    A file that cannot be opened for writing counts as in use: it is not ours to remove.
    """
    with _in_flight_lock:
        if path in _in_flight:
            return True
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        return not try_lock(fd, 0, 1)
    except OSError:
        return True
    finally:
        os.close(fd)  # drops the probe's own lock with it


def _existing_mode(target: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None


def _create_temp(directory: str, name: str) -> tuple[int, str]:
    # 0o666 lets the process umask decide a new file's mode, as open(..., "w") would;
    # mkstemp's fixed 0o600 would make every rewritten-from-scratch sidecar private.
    for _ in range(16):
        temp = os.path.join(directory, f"{_TEMP_PREFIX}{name}.{secrets.token_hex(_TOKEN_BYTES)}{TEMP_SUFFIX}")
        try:
            return os.open(temp, _OPEN_FLAGS, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a unique temp file", directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open directories, and some
    # filesystems (network, FUSE) refuse fsync on them: the data is still written.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
