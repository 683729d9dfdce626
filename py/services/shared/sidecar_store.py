"""Files beside a model: the ``.metadata.json`` sidecar, ``.civitai.info`` and previews.

Owns the names and formats of companion files, which of them may be read (not a symlink
leading out of the library, not a hard link), reading them tolerantly and writing sidecars
atomically (unknown keys preserved, corrupt files backed up before a rewrite). It must not
know about the index: callers turn what it reads into entries.

A companion is read only when it provably lies inside the library: a symlinked one only if
its real path passes the caller's ``contains_real`` (``PathGuard.contains_real``; without
one, symlinked companions are refused), and a hard-linked one (``st_nlink > 1``) never, as
its other name may be anywhere. Refused files read as absent; each is logged once.
"""
from __future__ import annotations

import copy
import errno
import json
import logging
import os
import shutil
import stat as stat_module
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ...errors import ConflictError
from .atomic_file import write_json_atomic

_log = logging.getLogger(__name__)

RealPathCheck = Callable[[str], bool]

SIDECAR_SUFFIX = ".metadata.json"
# the sidecar fields the user changed here: a CivitAI refresh never writes them
USER_EDITED_KEY = "user_edited"
CIVITAI_INFO_SUFFIX = ".civitai.info"

# Checked in this order; the first one present is the model's preview.
PREVIEW_SUFFIXES: tuple[str, ...] = (
    ".webp",
    ".preview.webp",
    ".preview.png",
    ".preview.jpg",
    ".preview.jpeg",
    ".png",
    ".jpg",
    ".jpeg",
    ".preview.gif",
    ".gif",
    ".preview.mp4",
    ".mp4",
    ".preview.webm",
    ".webm",
)
VIDEO_SUFFIXES = (".mp4", ".webm")
IMAGE_SUFFIXES = (".webp", ".png", ".jpg", ".jpeg", ".gif")
PREVIEW_CONTENT_TYPES = {
    ".webp": "image/webp",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}


def companion_suffixes() -> tuple[str, ...]:
    """Every suffix whose file travels with a model on rename, move and delete."""
    return (SIDECAR_SUFFIX, CIVITAI_INFO_SUFFIX) + PREVIEW_SUFFIXES


def find_preview_name(stem: str, names: "set[str] | frozenset[str]") -> str:
    """The preview file name for ``stem`` among the names of its folder, or ''."""
    for suffix in PREVIEW_SUFFIXES:
        candidate = stem + suffix
        if candidate in names:
            return candidate
    return ""


def preview_kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith(VIDEO_SUFFIXES):
        return "video"
    if lower.endswith(IMAGE_SUFFIXES):
        return "image"
    return ""


@dataclass(slots=True, frozen=True, kw_only=True)
class SidecarRead:
    """What reading a model's sidecar produced: data, or a flag saying why not."""

    data: dict[str, Any]
    corrupt: bool = False
    source: str = ""  # 'metadata.json', 'civitai.info' or '' (none)
    # the sidecar exists but may not be read (a hard link, a symlink leading out): a writer
    # must not replace what it could not read (``check_rewritable``)
    refused: bool = False


class UnsafeSidecar(ConflictError):
    """A sidecar the library may not read, so it will not overwrite it either."""

    code = "unsafe_sidecar"


def check_rewritable(read: SidecarRead, model_path: str) -> None:
    """Raise ``UnsafeSidecar`` when ``read`` came from a refused sidecar: rewriting it from
    scratch would silently drop whatever the user keeps in it."""
    if read.refused:
        raise UnsafeSidecar(
            f"the sidecar of '{model_path[:200]}' is a hard link or a symlink leading out of the library; "
            "it is neither read nor rewritten (replace it by a plain file to edit this model)"
        )


def user_edited_fields(sidecar: dict[str, Any]) -> list[str]:
    """The field names the user edited (``user_edited``), tolerating a malformed value."""
    value = sidecar.get(USER_EDITED_KEY)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def record_user_edits(sidecar: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A new sidecar whose ``user_edited`` also lists ``fields`` (sorted, no duplicates)."""
    result = copy.deepcopy(sidecar)
    result[USER_EDITED_KEY] = sorted(set(user_edited_fields(sidecar)) | {str(f) for f in fields})
    return result


def sidecar_path(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + SIDECAR_SUFFIX


def read_sidecar_file(path: str, *, contains_real: RealPathCheck | None = None) -> SidecarRead:
    """Read one sidecar; a missing or refused file is empty data, a broken one is flagged."""
    try:
        raw = _read_companion(path, contains_real)
    except FileNotFoundError:
        return SidecarRead(data={})
    except OSError as exc:
        _log.warning("cannot read sidecar %s: %s", path, exc)
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    if raw is None:
        return SidecarRead(data={}, refused=True)
    try:
        data = json.loads(raw)
    except ValueError:
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    if not isinstance(data, dict):
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    return SidecarRead(data=data, source="metadata.json")


def read_civitai_info(path: str, *, contains_real: RealPathCheck | None = None) -> dict[str, Any]:
    """Convert a ``.civitai.info`` file (a CivitAI version document) into sidecar form."""
    try:
        raw = _read_companion(path, contains_real)
        data = json.loads(raw) if raw is not None else None
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {"civitai": data, "from_civitai": True}
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    if model.get("name"):
        out["model_name"] = model["name"]
    if data.get("baseModel"):
        out["base_model"] = data["baseModel"]
    for file in data.get("files") or []:
        hashes = file.get("hashes") if isinstance(file, dict) else None
        if isinstance(hashes, dict) and hashes.get("SHA256"):
            out["sha256"] = str(hashes["SHA256"]).lower()
            break
    return out


def read_model_sidecar(
    model_path: str, names: Iterable[str] | None = None, *, contains_real: RealPathCheck | None = None
) -> SidecarRead:
    """The sidecar of a model, falling back to ``.civitai.info`` when there is none.

    A refused sidecar counts as none (the ``.civitai.info`` is still tried); the result
    then says ``refused``.
    """
    stem = os.path.splitext(model_path)[0]
    folder_names = names if names is None or isinstance(names, (set, frozenset)) else set(names)
    sidecar = stem + SIDECAR_SUFFIX
    refused = False
    if folder_names is None or os.path.basename(sidecar) in folder_names:
        read = read_sidecar_file(sidecar, contains_real=contains_real)
        if read.data or read.corrupt:
            return read
        refused = read.refused
    info = stem + CIVITAI_INFO_SUFFIX
    if folder_names is None or os.path.basename(info) in folder_names:
        data = read_civitai_info(info, contains_real=contains_real)
        if data:
            return SidecarRead(data=data, source="civitai.info", refused=refused)
    return SidecarRead(data={}, refused=refused)


def write_sidecar(model_path: str, data: dict[str, Any]) -> int:
    """Write a model's sidecar atomically and return its new mtime_ns.

    A sidecar that exists but does not parse is copied to ``.metadata.json.bak-<time>``
    first: another tool's file is never overwritten silently.
    """
    path = sidecar_path(model_path)
    if os.path.exists(path) and read_sidecar_file(path).corrupt:
        backup = f"{path}.bak-{int(time.time())}"
        shutil.copy2(path, backup)
        _log.warning("corrupt sidecar %s backed up to %s before rewrite", path, backup)
    write_json_atomic(path, data)
    return os.stat(path).st_mtime_ns


class SidecarStore:
    """The companions of the library's models as the library may use them: read only while
    they provably lie inside the library (``contains_real``, the path guard's), rewritten only
    when they could be read. Every method blocks: call it from a worker thread.
    """

    def __init__(self, *, contains_real: RealPathCheck) -> None:
        self.contains_real = contains_real

    def read(self, model_path: str, names: Iterable[str] | None = None) -> SidecarRead:
        """The model's sidecar (or ``.civitai.info``); see ``read_model_sidecar``."""
        return read_model_sidecar(model_path, names, contains_real=self.contains_real)

    def read_file(self, path: str) -> SidecarRead:
        return read_sidecar_file(path, contains_real=self.contains_real)

    def stat(self, path: str) -> os.stat_result | None:
        """The companion's stat, or None when it may not be read or served (``stat_companion``)."""
        return stat_companion(path, contains_real=self.contains_real)

    def write(self, model_path: str, data: dict[str, Any]) -> int:
        return write_sidecar(model_path, data)

    def rewrite(
        self, model_path: str, edit: Callable[[dict[str, Any]], dict[str, Any]], *, seed: Callable[[], dict[str, Any]]
    ) -> None:
        """Read the sidecar, apply ``edit``, write it atomically (the caller holds the model's lock).

        A missing or corrupt sidecar starts from ``seed()`` (a corrupt one is backed up first);
        one that may not be read raises ``UnsafeSidecar`` and is left as it is.
        """
        read = self.read(model_path)
        check_rewritable(read, model_path)
        data = dict(read.data) if read.data and not read.corrupt else seed()
        self.write(model_path, edit(data))


# -- which companions may be read ------------------------------------------------------------

# O_NONBLOCK: a FIFO named like a sidecar must not hang a scanner thread in open().
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# Files already reported as refused, as (path, what was seen): one warning per file, not one
# per scan. Process-wide, like the log it throttles; bounded so it cannot grow without end.
_reported: set[tuple[str, object]] = set()
_reported_lock = threading.Lock()
_MAX_REPORTED = 10_000


def stat_companion(
    path: str, *, contains_real: RealPathCheck | None = None, entry: "os.DirEntry[str] | None" = None
) -> os.stat_result | None:
    """The stat (symlinks followed) of the companion at ``path``, or None when it must not be
    read or served: a symlink whose real path fails ``contains_real`` (any symlink without
    one), a hard link, or not a regular file. Logs each refused file once.

    ``entry``, the file's ``os.scandir`` entry, saves the ``lstat``. Raises ``OSError`` when
    the file cannot be inspected (``FileNotFoundError``: absent). Blocking: one or two
    syscalls, more for a symlink.
    """
    is_link = entry.is_symlink() if entry is not None else stat_module.S_ISLNK(os.lstat(path).st_mode)
    if is_link and _resolve_inside(path, contains_real) is None:
        return None
    st = entry.stat() if entry is not None else os.stat(path)
    return st if _acceptable(path, st) else None


def _read_companion(path: str, contains_real: RealPathCheck | None) -> bytes | None:
    """The bytes of the companion at ``path``, or None when it must not be read.

    Opens without following a final symlink, so what was checked is what is read; a symlink
    is resolved and its real path checked first. Raises ``OSError`` (``FileNotFoundError``
    when absent).
    """
    fd = _open_companion(path, contains_real)
    if fd is None:
        return None
    with open(fd, "rb") as fh:
        if not _acceptable(path, os.fstat(fd)):
            return None
        return fh.read()


def _open_companion(path: str, contains_real: RealPathCheck | None) -> int | None:
    if _NOFOLLOW:
        try:
            return os.open(path, _READ_FLAGS | _NOFOLLOW)
        except OSError as exc:
            # ELOOP (Linux, macOS) or EMLINK (FreeBSD): the name is a symlink
            if exc.errno not in (errno.ELOOP, errno.EMLINK) or not os.path.islink(path):
                raise
    elif not os.path.islink(path):
        return os.open(path, _READ_FLAGS)
    real = _resolve_inside(path, contains_real)
    return None if real is None else os.open(real, _READ_FLAGS | _NOFOLLOW)


def _resolve_inside(link: str, contains_real: RealPathCheck | None) -> str | None:
    """The real path of the symlink ``link`` when it lies inside the library, else None."""
    real = os.path.realpath(link)
    if contains_real is None:
        _report(link, ("symlink", real), "it is a symlink and no library roots are known to check %s against", real)
        return None
    if not contains_real(real):
        _report(link, ("symlink", real), "it is a symlink to %s, outside every library root", real)
        return None
    return real


def _acceptable(path: str, st: os.stat_result) -> bool:
    if not stat_module.S_ISREG(st.st_mode):
        _report(path, ("kind", st.st_mode), "it is not a regular file")
        return False
    if st.st_nlink > 1:
        _report(
            path, ("inode", st.st_dev, st.st_ino),
            "it is a hard link (%d names) and its other names may lie outside the library", st.st_nlink,
        )
        return False
    return True


def _report(path: str, seen: object, reason: str, *args: object) -> None:
    key = (path, seen)
    with _reported_lock:
        if key in _reported:
            return
        if len(_reported) >= _MAX_REPORTED:
            _reported.clear()
        _reported.add(key)
    _log.warning("not reading or serving %s: " + reason, path, *args)
