"""Which library folders live on a network file system, where change events miss other machines.

Owns reading the platform's mount table (``/proc/self/mounts`` on Linux, ``mount`` on
macOS, drive types and UNC paths on Windows) and the list of network file-system types.
It must not decide what to do about it (the library watcher polls such folders).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NETWORK_FS_TYPES", "Mount", "network_fs_of", "network_filesystem", "parse_proc_mounts", "read_mounts"]

_log = logging.getLogger(__name__)

# inotify / FSEvents / ReadDirectoryChangesW report only what this machine changes on these
NETWORK_FS_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afpfs", "afs", "9p", "v9fs",
    "ceph", "fuse.ceph", "fuse.cephfs", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "beegfs",
    "ocfs2", "gfs2", "davfs", "fuse.davfs2", "webdav", "fuse.sshfs", "sshfs", "fuse.rclone",
    "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs", "virtiofs", "vboxsf", "prl_fs",
    "fuse.smbnetfs",
})


@dataclass(slots=True, frozen=True, kw_only=True)
class Mount:
    mount_point: str
    fs_type: str


def _unescape(field: str) -> str:
    """``/proc/mounts`` writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_proc_mounts(text: str) -> list[Mount]:
    """The mounts of a ``/proc/mounts``-format table (device, mount point, type, ...)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append(Mount(mount_point=_unescape(fields[1]), fs_type=fields[2].lower()))
    return mounts


_MACOS_LINE = re.compile(r"^.+? on (?P<point>.+) \((?P<type>[^,)]+)")


def _parse_macos_mount(text: str) -> list[Mount]:
    """``mount`` on macOS: ``//user@nas/share on /Volumes/share (smbfs, nodev, ...)``."""
    out: list[Mount] = []
    for line in text.splitlines():
        match = _MACOS_LINE.match(line)
        if match:
            out.append(Mount(mount_point=match["point"], fs_type=match["type"].strip().lower()))
    return out


def read_mounts() -> list[Mount]:
    """This machine's mount table; empty where it cannot be read (best effort)."""
    if sys.platform.startswith("linux"):
        for table in ("/proc/self/mounts", "/proc/mounts"):
            try:
                with open(table, encoding="utf-8", errors="surrogateescape") as handle:
                    return parse_proc_mounts(handle.read())
            except OSError:
                continue
        return []
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["/sbin/mount"], capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            _log.debug("cannot list mounts: %s", exc)
            return []
        return _parse_macos_mount(out.stdout)
    return []


def network_fs_of(path: str, mounts: Iterable[Mount]) -> str | None:
    """The network file-system type ``path`` lives on, by the deepest mount containing it
    (of two mounts on one point the later one, as the kernel shows the last mounted)."""
    best: Mount | None = None
    best_length = -1
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        if point == "/" or path == point or path.startswith(point + "/"):
            if len(point) >= best_length:
                best, best_length = mount, len(point)
    if best is None:
        return None
    return best.fs_type if best.fs_type in NETWORK_FS_TYPES else None


def _windows_network_kind(path: str) -> str | None:  # pragma: no cover - Windows only
    normalized = path.replace("/", "\\")
    if normalized.startswith("\\\\"):
        return "smb (UNC path)"
    drive = os.path.splitdrive(normalized)[0]
    if not drive:
        return None
    try:
        import ctypes

        DRIVE_REMOTE = 4
        if ctypes.windll.kernel32.GetDriveTypeW(drive + "\\") == DRIVE_REMOTE:
            return "network drive"
    except (OSError, AttributeError):
        return None
    return None


def network_filesystem(path: str, mounts: Iterable[Mount] | None = None) -> str | None:
    """The kind of network file system ``path`` is on, or None for a local one (blocking)."""
    if os.name == "nt":  # pragma: no cover - Windows only
        return _windows_network_kind(os.path.realpath(path))
    real = os.path.realpath(path)
    return network_fs_of(real, read_mounts() if mounts is None else mounts)
