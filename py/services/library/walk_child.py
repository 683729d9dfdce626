"""The walk of a library in a child process: the request, the frames, the child's main.

A warm start of 100,000 models has two jobs that each take a second or two of CPU: build
the index from the cache, and walk the disk to see what changed; a cold start spends ten
seconds of CPU reading sidecars. In one process they take turns on the GIL, so the walk
runs in child processes (``process_walk`` starts them) on the machine's other cores, with
the same ``ModelScanner`` as an in-process walk.

Protocol: the parent writes one request frame to the child's stdin; the child answers on
its stdout with ``batch`` frames (the fresh entries, ``snapshot_chunks.encode_chunk``), ``log``
frames (its log records, which the parent logs) and one ``done`` frame (the walk's counts,
the paths of the cached models it did not meet, what its scanner learnt), or a ``failed``
frame. A warm start's child reads the cached models itself from the index cache's file
(read-only), so its walk starts while the server is still loading them. A frame is a
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
import sqlite3
import struct
import sys
import zlib
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Callable, NamedTuple

from ..shared.model_types import ModelType
from ..shared.path_guard import PathGuard
from .model_scanner import LibraryRoot, ModelScanner, ScanStats
from .snapshot_chunks import (
    JOURNAL_SQL,
    SNAPSHOT_SQL,
    STAMP_SIZE,
    encode_chunk,
    entry_from_row,
    path_of_key,
    stamp_slices,
    view_columns,
)

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
# after a model's stamp in the view: its sidecar's mtime, the numbers of its sub-type and
# of its preview's suffix among the view's few distinct words
_TAIL = struct.Struct("<qHH")


class PreviousView(dict):
    """The models a child's walk knew before: path -> the compared fields packed into one
    bytes (72 bytes a model, where a ``Seen`` tuple with its stamp and mtime took 176, ~10 MiB
    at 100,000); ``get`` answers the ``Seen`` the scanner reads, made on the spot."""

    __slots__ = ("_words", "_numbers")

    def __init__(self) -> None:
        super().__init__()
        self._words: list[str] = []  # the few distinct sub-types and preview suffixes
        self._numbers: dict[str, int] = {}

    def _number(self, word: str) -> int:
        number = self._numbers.get(word)
        if number is None:
            if len(self._words) > 0xFFFF:
                raise WalkFailed("a previous view of too many sub-types and preview suffixes")
            number = self._numbers[word] = len(self._words)
            self._words.append(word)
        return number

    def add_columns(self, paths: list[str], stamps: bytes, mtimes: list[int], sub_types: list[str],
                    suffixes: list[str]) -> None:
        """Add models given as columns (``snapshot_chunks.view_columns``)."""
        n = len(paths)
        if len(stamps) != n * STAMP_SIZE or not len(mtimes) == len(sub_types) == len(suffixes) == n:
            raise WalkFailed("a previous view of columns of different lengths")
        number = self._number
        tails = map(_TAIL.pack, mtimes, map(number, sub_types), map(number, suffixes))
        try:
            self.update(zip(paths, map(bytes.__add__, stamp_slices(stamps, n), tails)))
        except struct.error as exc:  # a sidecar mtime past 64 bits
            raise WalkFailed(f"a previous view it cannot pack ({exc})") from exc

    def get(self, path: str, default: Any = None) -> Any:  # type: ignore[override]
        raw = dict.get(self, path)
        if raw is None:
            return default
        mtime, sub_type, suffix = _TAIL.unpack_from(raw, STAMP_SIZE)
        words = self._words
        return _new_seen((path, raw[:STAMP_SIZE], mtime, words[sub_type], words[suffix]))


def cached_view(cache_file: str, model_type: ModelType) -> PreviousView:
    """The cached models of ``model_type`` in the index cache at ``cache_file`` (its
    snapshot with its journal applied, as ``IndexCache.load_snapshot`` reads them), opened
    read-only; ``WalkFailed`` when it cannot be read."""
    view = PreviousView()
    try:
        conn = sqlite3.connect(f"{Path(cache_file).resolve().as_uri()}?mode=ro", uri=True)
        try:
            for chunk, data in conn.execute(SNAPSHOT_SQL, (model_type.value,)):
                if chunk >= 0:  # below 0: the sort orders
                    view.add_columns(*view_columns(data))
            for key, data in conn.execute(JOURNAL_SQL, (model_type.value,)):
                if data is None:
                    view.pop(path_of_key(key), None)
                    continue
                e = entry_from_row(model_type, marshal.loads(data))
                view.add_columns([e.file_path], e.stamp, [e.sidecar_mtime_ns], [e.sub_type], [e.preview_suffix])
        finally:
            conn.close()
    except (sqlite3.Error, ValueError, EOFError, TypeError, KeyError, IndexError) as exc:
        raise WalkFailed(f"the index cache cannot be read ({exc})") from exc
    return view


def request(
    *, roots: list[LibraryRoot], real_folders: list[str], cache: tuple[str, ModelType] | None,
    share: tuple[int, int], skip: list[str], sweep: bool, batch_size: int,
    known: tuple[dict[str, int], list[str]] = ({}, []), wait: bool = False,
) -> dict[str, Any]:
    """One child's request: walk ``roots`` (its ``share`` of their models), compare with the
    models of a type the index cache file holds (``cache``: file, type; ``cached_view``),
    leave out ``skip`` (paths the parent walked already), starting from what the parent's
    scanner knows (``ModelScanner.remembered``); ``wait``: walk only on a ``go`` frame (the
    parent starts its watcher meanwhile)."""
    return {
        "roots": [(r.path, r.model_type.value, r.sub_type) for r in roots],
        "real_folders": list(real_folders),
        "cache": (str(cache[0]), cache[1].value) if cache is not None else None,
        "share": tuple(share),
        "skip": list(skip),
        "sweep": bool(sweep),
        "batch_size": int(batch_size),
        "refused": list(known[0].items()),
        "reported": list(known[1]),
        "wait": bool(wait),
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


def walk(req: dict[str, Any], out: BinaryIO, go: Callable[[], bool] = lambda: True) -> None:
    """Run one request, writing its frames to ``out`` (the child's whole job); with ``wait``
    in it, the walk starts once ``go()`` says so (False: the parent changed its mind)."""
    roots = [LibraryRoot(path=p, model_type=ModelType(t), sub_type=s) for p, t, s in req["roots"]]
    share = tuple(req["share"])
    skip = frozenset(req["skip"])
    claims = claims_of(share, skip)  # type: ignore[arg-type]
    guard = PathGuard.of_real_folders(req["real_folders"])
    scanner = ModelScanner(batch_size=req["batch_size"], contains_real=guard.contains_real, claims=claims)
    scanner.remember(dict(req["refused"]), req["reported"])
    previous = cached_view(req["cache"][0], ModelType(req["cache"][1])) if req["cache"] else PreviousView()
    if req["wait"] and not go():
        return
    stats = ScanStats(seen=None)
    pop = previous.pop
    for batch in scanner.iter_batches(roots, previous, None, stats, sweep=req["sweep"]):
        # what the scanner reused is the view's own ``Seen``; each path leaves the view
        fresh = [e for e in batch if type(e) is not Seen]
        for e in batch:
            pop(e.file_path, None)
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


def _told_to_go(stream: BinaryIO) -> bool:
    try:
        return read_frame(stream) == ("go",)
    except EOFError:
        return False


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
    try:
        walk(req, out, partial(_told_to_go, sys.stdin.buffer))
    except WalkFailed as exc:  # told to the parent, which walks in-process instead
        write_frame(out, ("failed", str(exc)))
    out.close()
