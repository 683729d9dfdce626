"""Moving model files to new paths without ever overwriting what is there.

Owns which files travel with a model (``companion_paths``), the all-or-nothing move of
such a group with rollback (``move_group``), the no-replace move (hard link + unlink on POSIX, ``os.rename`` on Windows, which
refuses existing targets) and the cross-filesystem fallback (copy to a locked hidden temp file,
fsync, verify size and SHA-256, link into place, then delete the source). It must not
decide which files move: callers validate paths and hold the model locks. Blocking code.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
from contextlib import suppress
from typing import BinaryIO

from .atomic_file import temp_file
from .sidecar_store import companion_suffixes

__all__ = ["TargetExists", "companion_paths", "move_group", "move_no_replace"]

_log = logging.getLogger(__name__)
_WINDOWS = os.name == "nt"
_COPY_CHUNK = 8 * 1024 * 1024


class TargetExists(FileExistsError):
    """The destination of a no-replace move already exists."""


def companion_paths(model_path: str) -> list[str]:
    """The existing companions of a model: ``stem + suffix`` for every companion suffix."""
    stem = os.path.splitext(model_path)[0]
    return [stem + suffix for suffix in companion_suffixes() if os.path.isfile(stem + suffix)]


def move_group(pairs: list[tuple[str, str]]) -> None:
    """Move every ``(src, dst)`` pair, or none: on a failure the moved ones go back.

    Raises ``TargetExists`` (before anything moves, when a target is already there, or
    when one appears meanwhile) or the ``OSError`` that stopped the move.
    """
    for _, dst in pairs:
        if os.path.lexists(dst) and not any(_same_file_other_case(s, dst) for s, _ in pairs):
            raise TargetExists(errno.EEXIST, "target exists", dst)
    done: list[tuple[str, str]] = []
    try:
        for src, dst in pairs:
            move_no_replace(src, dst)
            done.append((src, dst))
    except BaseException:
        for src, dst in reversed(done):
            try:
                move_no_replace(dst, src)
            except OSError:
                _log.exception("rollback of %s -> %s failed; the file stays at %s", src, dst, dst)
        raise


def move_no_replace(src: str, dst: str) -> None:
    """Move the file ``src`` to ``dst``; raise ``TargetExists`` if ``dst`` exists.

    Same filesystem: atomic for readers (the file is at ``src``, then at both, then at
    ``dst``; a crash in between leaves two names of one file, never a lost one). Across
    filesystems: copy, verify, then delete ``src``. Other ``OSError``s pass through with
    ``src`` untouched.
    """
    if _same_file_other_case(src, dst):
        os.rename(src, dst)  # a case-only rename on a case-insensitive filesystem
        return
    if os.path.lexists(dst):
        raise TargetExists(errno.EEXIST, "target exists", dst)
    if _WINDOWS:
        try:
            os.rename(src, dst)  # never replaces on Windows
            return
        except FileExistsError as exc:
            raise TargetExists(errno.EEXIST, "target exists", dst) from exc
        except OSError as exc:
            if getattr(exc, "winerror", None) != 17:  # ERROR_NOT_SAME_DEVICE
                raise
        _copy_verify_delete(src, dst)
        return
    try:
        os.link(src, dst)
    except FileExistsError as exc:
        raise TargetExists(errno.EEXIST, "target exists", dst) from exc
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            _copy_verify_delete(src, dst)
            return
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            # no hard links here (FAT, exFAT, some network shares): checked rename
            if os.path.lexists(dst):
                raise TargetExists(errno.EEXIST, "target exists", dst) from exc
            os.rename(src, dst)
            return
        raise
    os.unlink(src)


def _same_file_other_case(src: str, dst: str) -> bool:
    if src == dst or src.casefold() != dst.casefold():
        return False
    try:
        return os.path.samefile(src, dst)
    except OSError:
        return False


def _copy_verify_delete(src: str, dst: str) -> None:
    directory, name = os.path.split(dst)
    # temp_file locks the copy while it exists, so a scan (here or on another host) can tell
    # this move in progress from the leftover of one that was killed, and removes only that.
    with temp_file(directory, name) as temp:
        source_digest = _copy(src, temp.fd)
        # Read back through a second descriptor that stays open until the temp name is gone:
        # closing any descriptor of a file drops this process's POSIX lock on it.
        check = open(temp.path, "rb")
        try:
            if os.fstat(check.fileno()).st_size != os.path.getsize(src) or _digest(check) != source_digest:
                raise OSError(errno.EIO, "copy does not match the source", dst)
            if _WINDOWS:
                check.close()  # Windows renames no open file; its locks are per handle anyway
                temp.release()
                os.rename(temp.path, dst)
            else:
                try:
                    os.link(temp.path, dst)
                except FileExistsError as exc:
                    raise TargetExists(errno.EEXIST, "target exists", dst) from exc
                os.unlink(temp.path)
        finally:
            check.close()
    with suppress(OSError):
        st = os.stat(src)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.unlink(src)


def _copy(src: str, fd: int) -> str:
    """Copy ``src`` into the open descriptor ``fd`` and fsync it; returns the SHA-256."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin:
        while chunk := fin.read(_COPY_CHUNK):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    os.fsync(fd)
    return digest.hexdigest()


def _digest(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(_COPY_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
