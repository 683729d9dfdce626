"""The walk of a library in a child process: the request, the frames, the child's main.

A warm start of 100,000 models has two jobs that each take a second or two of CPU: build
the index from the cache, and walk the disk to see what changed; a cold start spends ten
seconds of CPU reading sidecars. In one process they take turns on the GIL, so the walk
runs in child processes (``process_walk`` starts them) on the machine's other cores, with
the same ``ModelScanner`` as an in-process walk.

Protocol: the parent writes one request frame to the child's stdin; the child answers on
its stdout with ``batch`` frames (the fresh entries, ``snapshot_chunks.encode_chunk``), ``log``
frames (its log records, which the parent logs) and one ``done`` frame (the walk's counts,
the paths of the previous view it did not meet, what its scanner learnt). A frame is a
4-byte length and a marshalled value: the two ends are the same Python (``sys.executable``),
so marshal's format, the fastest the standard library reads, is shared.

Nothing here knows the server: the child imports only the scanner and what it needs, and
builds no index.
"""
from __future__ import annotations

import gc
import logging
import marshal
import os
import struct
import sys
import zlib
from functools import partial
from typing import Any, BinaryIO, Callable, NamedTuple

from ..shared.model_types import ModelType
from ..shared.path_guard import PathGuard
from .model_records import ModelEntry
from .model_scanner import LibraryRoot, ModelScanner, ScanStats
from .snapshot_chunks import STAMP_SIZE, encode_chunk, stamp_slices

_LENGTH = struct.Struct("<I")
MAX_FRAME = 1 << 30  # a frame longer than this is a broken pipe, not a message


class WalkFailed(Exception):
    """A child walk could not be completed (the parent walks in-process instead)."""


def write_frame(stream: BinaryIO, value: Any) -> None:
    data = marshal.dumps(value)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """The next frame's value; ``EOFError`` at a clean end, ``WalkFailed`` for a torn one."""
    head = stream.read(_LENGTH.size)
    if not head:
        raise EOFError
    if len(head) != _LENGTH.size:
        raise WalkFailed("a torn frame header")
    (size,) = _LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise WalkFailed(f"a frame of {size} bytes")
    data = stream.read(size)
    if len(data) != size:
        raise WalkFailed("a torn frame")
    try:
        return marshal.loads(data)
    except (ValueError, EOFError, TypeError) as exc:
        raise WalkFailed(f"an unreadable frame ({exc})") from exc


class Seen(NamedTuple):
    """What the walk compares of a model it knew before (``ModelEntry``'s fields of these names)."""

    file_path: str
    stamp: bytes
    sidecar_mtime_ns: int
    sub_type: str
    preview_suffix: str


_new_seen = partial(tuple.__new__, Seen)


def previous_view(entries: list[ModelEntry]) -> tuple:
    """The compared fields of ``entries`` as columns for a request (shared strings are
    marshalled once)."""
    return (
        [e.file_path for e in entries], b"".join(e.stamp for e in entries),
        [e.sidecar_mtime_ns for e in entries], [e.sub_type for e in entries], [e.preview_suffix for e in entries],
    )


def _previous_of(view: tuple | None) -> dict[str, Seen]:
    if not view:
        return {}
    paths, stamps, mtimes, sub_types, suffixes = view
    n = len(paths)
    if len(stamps) != n * STAMP_SIZE or not len(mtimes) == len(sub_types) == len(suffixes) == n:
        raise WalkFailed("a previous view of columns of different lengths")
    # built in C (no Python call per model), as ``snapshot_chunks.decode_chunk`` builds entries
    return dict(zip(paths, map(_new_seen, zip(paths, stamp_slices(stamps, n), mtimes, sub_types, suffixes))))


def request(
    *, roots: list[LibraryRoot], real_folders: list[str], previous: tuple | None, share: tuple[int, int],
    skip: list[str], sweep: bool, batch_size: int, known: tuple[dict[str, int], list[str]] = ({}, []),
) -> dict[str, Any]:
    """One child's request: walk ``roots`` (its ``share`` of their models), compare with
    ``previous`` (``previous_view``), leave out ``skip`` (paths the parent walked already),
    starting from what the parent's scanner knows (``ModelScanner.remembered``)."""
    return {
        "roots": [(r.path, r.model_type.value, r.sub_type) for r in roots],
        "real_folders": list(real_folders),
        "previous": previous,
        "share": tuple(share),
        "skip": list(skip),
        "sweep": bool(sweep),
        "batch_size": int(batch_size),
        "refused": list(known[0].items()),
        "reported": list(known[1]),
    }


def claims_of(share: tuple[int, int], skip: "set[str] | frozenset[str]") -> Callable[[str, str], bool] | None:
    """Whether a walk with ``share`` = (i, k) takes a model (by the CRC of its file name, the
    same in every process, unlike ``hash``), and not one in ``skip``."""
    index, count = share
    if count <= 1 and not skip:
        return None

    def claims(name: str, path: str) -> bool:
        if skip and path in skip:
            return False
        return count <= 1 or zlib.crc32(name.encode("utf-8", "surrogateescape")) % count == index

    return claims


class _Forward(logging.Handler):
    """The child's log records, sent to the parent as frames."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__(logging.INFO)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_frame(self._out, ("log", record.levelno, record.name, record.getMessage()))
        except Exception:  # noqa: BLE001 - a log line must never break the walk
            pass


def walk(req: dict[str, Any], out: BinaryIO) -> None:
    """Run one request, writing its frames to ``out`` (the child's whole job)."""
    roots = [LibraryRoot(path=p, model_type=ModelType(t), sub_type=s) for p, t, s in req["roots"]]
    share = tuple(req["share"])
    skip = frozenset(req["skip"])
    claims = claims_of(share, skip)  # type: ignore[arg-type]
    guard = PathGuard.of_real_folders(req["real_folders"])
    scanner = ModelScanner(batch_size=req["batch_size"], contains_real=guard.contains_real, claims=claims)
    scanner.remember(dict(req["refused"]), req["reported"])
    previous = _previous_of(req.pop("previous"))  # the columns go once the view is built
    stats = ScanStats(seen=None)
    for batch in scanner.iter_batches(roots, previous, None, stats, sweep=req["sweep"]):
        pop = previous.pop
        fresh = [e for e in batch if pop(e.file_path, None) is not e]
        if fresh:
            write_frame(out, ("batch", encode_chunk(fresh)))
    # what this walk did not meet among the models it would have taken
    unseen = [p for p in previous if claims is None or claims(p[p.rfind("/") + 1 :], p)]
    refused, reported = scanner.remembered()
    write_frame(out, ("done", {
        "reused": stats.reused, "built": stats.built, "errors": stats.errors,
        "leftovers_removed": stats.leftovers_removed, "unseen": unseen,
        "refused": list(refused.items()), "reported": reported,
    }))


def child_main() -> None:
    """The child process: one request from stdin, frames to stdout, then exit."""
    # a short-lived process of cycle-free records: the collector would only walk them
    gc.disable()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the frames
    root = logging.getLogger()
    root.handlers[:] = [_Forward(out)]
    root.setLevel(logging.INFO)
    try:
        req = read_frame(sys.stdin.buffer)
    except EOFError:
        return  # the parent changed its mind
    walk(req, out)
    out.close()
