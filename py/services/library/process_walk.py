"""Walks of the disk in child processes: starting them and reading what they find.

The parent's side of ``walk_child`` (which says why and how they talk). A child is the
same Python running ``walk_child.child_main`` from this package's folder, imported under
an alias without running the package's ``__init__`` (ComfyUI's node entry point) and
whatever the folder is called. Everything here blocks: ``TypeLibrary`` calls it from
worker threads. When a child cannot be started or fails, the caller walks in-process.
"""
from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from . import walk_child
from .model_records import HashStatus, ModelEntry, ModelType
from .model_scanner import LibraryRoot
from .snapshot_chunks import decode_chunk
from .walk_child import WalkFailed, read_frame, write_frame

_log = logging.getLogger(__name__)

_ALIAS = "_lm_walk"  # the package's name in a child (any name not taken does)
_PACKAGE = walk_child.__name__.split(".")[0]  # its name here, for the child's log records
# the folder holding the package: as many levels above walk_child.py as its name has dots
_PACKAGE_DIR = str(Path(walk_child.__file__).resolve().parents[walk_child.__name__.count(".") - 1])
_CHILD_MODULE = _ALIAS + "." + walk_child.__name__.split(".", 1)[1]
# argv: alias, package folder, module. The working folder leaves sys.path first: ComfyUI's
# holds modules of its own (server.py, nodes.py, utils/) that must not shadow anything.
_BOOTSTRAP = "\n".join((
    "import importlib, sys, types",
    "sys.path[:] = [p for p in sys.path if p]",
    "package = types.ModuleType(sys.argv[1])",
    "package.__path__ = [sys.argv[2]]",
    "sys.modules[sys.argv[1]] = package",
    "importlib.import_module(sys.argv[3]).child_main()",
))

HashLookup = Callable[[bytes], "tuple[str, str] | None"]
# below this many models a walk stays in the server: a child costs ~0.15 s and ~25 MiB to start
MIN_MODELS = 2000


class ChildWalker:
    """Starts walks in child processes, for libraries big enough to gain from them.

    ``real_folders``: the library's real folders (``PathGuard.real_folders``), which bound
    what a child lists and reads as they bound the server's own walks. ``min_models``: a
    warm start walks in a child from this many cached models on, a cold start hands its
    walk over to ``processes`` children after walking this many itself (a small library
    costs no process start).
    """

    def __init__(
        self, *, real_folders: Callable[[], list[str]], min_models: int | None = None, processes: int = 2,
        python: str | None = None,
    ) -> None:
        self.real_folders = real_folders
        self.min_models = MIN_MODELS if min_models is None else min_models
        self.processes = max(1, processes)
        self._python = python if python is not None else sys.executable

    def spawn(self, processes: int = 1) -> "ChildWalk | None":
        """``processes`` children, started and waiting for their requests; None when they
        cannot be started (logged once per call)."""
        if not self._python:
            return None
        procs: list[subprocess.Popen] = []
        try:
            for _ in range(max(1, processes)):
                procs.append(subprocess.Popen(
                    [self._python, "-c", _BOOTSTRAP, _ALIAS, _PACKAGE_DIR, _CHILD_MODULE],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                ))
        except OSError as exc:
            _log.warning("cannot start a walk in a child process (%s); walking in the server", exc)
            for proc in procs:
                proc.kill()
                proc.wait()
            return None
        return ChildWalk(procs, self.real_folders())


class ChildWalk:
    """One walk shared by child processes: send it, then read its batches to the end."""

    def __init__(self, procs: list[subprocess.Popen], real_folders: list[str]) -> None:
        self._procs = procs
        self._real_folders = real_folders
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # one reader decodes at a time: decoding holds the GIL, and two readers plus the
        # index build kept the event loop waiting behind three threads instead of two
        self._decoding = threading.Lock()
        self._done = 0
        self._closed = False
        self._logged: set[tuple[str, str]] = set()
        self.stats = {"reused": 0, "built": 0, "errors": 0, "leftovers_removed": 0}
        self.unseen: list[str] = []  # paths of the previous view no child met
        self.refused: dict[str, int] = {}
        self.reported: list[str] = []

    @property
    def processes(self) -> int:
        return len(self._procs)

    def send(
        self, *, model_type: ModelType, roots: list[LibraryRoot], cache: str | None = None,
        skip: Sequence[str] = (), sweep: bool = True, batch_size: int = 500,
        known: tuple[dict[str, int], list[str]] = ({}, []), wait: bool = False,
    ) -> None:
        """Give every child its share of the walk (``walk_child.request``); the first one
        sweeps leftovers. ``cache``: the index cache file whose models of ``model_type`` the
        walk compares with (a warm start's; the child reads them itself). ``known``: what the
        server's scanner learnt (``ModelScanner.remembered``). ``wait``: the children prepare
        (read the cache) and walk on ``go``. Raises ``WalkFailed`` when a child is gone already."""
        count = len(self._procs)
        for n, proc in enumerate(self._procs):
            req = walk_child.request(
                roots=roots, real_folders=self._real_folders, cache=(cache, model_type) if cache else None,
                share=(n, count), skip=list(skip),
                sweep=sweep and n == 0, batch_size=batch_size, known=known, wait=wait,
            )
            try:
                assert proc.stdin is not None
                write_frame(proc.stdin, req)
                if not wait:
                    proc.stdin.close()
            except (OSError, ValueError) as exc:
                raise WalkFailed(f"a child walk did not take its request ({exc})") from exc
            threading.Thread(
                target=self._read, args=(proc, model_type), name=f"lm-walk-{n}", daemon=True
            ).start()

    def go(self) -> None:
        """Let children sent a request with ``wait`` walk. Raises ``WalkFailed`` when one is
        gone already."""
        for proc in self._procs:
            try:
                assert proc.stdin is not None
                write_frame(proc.stdin, ("go",))
                proc.stdin.close()
            except (OSError, ValueError) as exc:
                raise WalkFailed(f"a child walk could not be started ({exc})") from exc

    def _read(self, proc: subprocess.Popen, model_type: ModelType) -> None:
        """One child's frames into the queue (in its own thread); entries decoded here."""
        stream = proc.stdout
        assert stream is not None
        try:
            while True:
                kind, *rest = read_frame(stream)
                if kind == "batch":
                    with self._decoding:
                        entries = decode_chunk(model_type, rest[0])
                    self._queue.put(("batch", entries))
                elif kind == "log":
                    self._relog(*rest)
                elif kind == "done":
                    self._queue.put(("done", rest[0]))
                    return
                elif kind == "failed":
                    self._queue.put(("failed", f"a child walk failed: {rest[0]}"))
                    return
        except EOFError:
            self._queue.put(("failed", f"a child walk ended early (exit status {proc.wait()})"))
        except (WalkFailed, ValueError, TypeError, IndexError, OSError) as exc:
            self._queue.put(("failed", f"a child walk sent what cannot be read ({exc})"))
        finally:
            stream.close()

    def _relog(self, level: int, name: str, message: str) -> None:
        """A child's log record, logged here once (children walking shares of one library
        list the same folders, and would report a skipped folder each)."""
        if (name, message) in self._logged:
            return
        self._logged.add((name, message))
        if name.startswith(_ALIAS + "."):
            name = _PACKAGE + name[len(_ALIAS) :]
        logging.getLogger(name).log(level, "%s", message)

    def next_batch(self, lookup: HashLookup | None = None) -> list[ModelEntry] | None:
        """The next batch of fresh entries (hashes known by their stamp filled in, as an
        in-process walk does), or None once every child is done. Raises ``WalkFailed``."""
        while True:
            kind, payload = self._queue.get()
            if kind == "batch":
                return _with_known_hashes(payload, lookup) if lookup is not None else payload
            if kind == "failed":
                raise WalkFailed(payload)
            self._merge(payload)
            self._done += 1
            if self._done == len(self._procs):
                return None

    def _merge(self, done: dict[str, Any]) -> None:
        for key in self.stats:
            self.stats[key] += int(done.get(key, 0))
        self.unseen += done.get("unseen", [])
        self.refused.update(done.get("refused", []))
        self.reported += done.get("reported", [])

    def close(self) -> None:
        """End every child (killed when still running) and wake a reader of ``next_batch``."""
        if self._closed:
            return
        self._closed = True
        for proc in self._procs:
            if proc.poll() is None and self._done < len(self._procs):
                proc.kill()  # its reader thread then meets the end of the pipe and stops
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdin is not None and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        self._queue.put(("failed", "the walk was closed"))


def _with_known_hashes(entries: list[ModelEntry], lookup: HashLookup) -> list[ModelEntry]:
    """Fill in the SHA256 of entries without one whose file stamp has a known hash (a
    child has no hash store; ``entry_from_disk`` does the same in-process)."""
    out = entries
    for n, entry in enumerate(entries):
        if not entry.sha256 and (known := lookup(entry.stamp)):
            if out is entries:
                out = list(entries)
            out[n] = entry.evolve(sha256=known[0], hash_status=HashStatus.DONE)
    return out
