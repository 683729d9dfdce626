"""The whole library: every model type's ``TypeLibrary``, and which one a path, a hash, a
finished hash or a change on disk belongs to.

Owns that routing and the start-up order of the types (one after the other: they share a
disk, and LoRAs are what people open first); it must not scan, index or edit anything itself.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping

from ..shared.model_types import EXTRA_TYPES, ModelType
from ..shared.sidecar_store import SidecarStore
from .hash_waiters import HashWaiters
from .model_hasher import FileHashes
from .model_records import ModelEntry
from .type_library import TypeLibrary

_log = logging.getLogger(__name__)

# the three main types first; the others (VAEs, ControlNets, ...) after them
STARTUP_ORDER = (ModelType.LORA, ModelType.CHECKPOINT, ModelType.EMBEDDING) + EXTRA_TYPES


class ModelLibrary(Mapping[ModelType, TypeLibrary]):
    """The type libraries by type (a read-only mapping), plus routing by path and hash."""

    def __init__(
        self, *, types: Mapping[ModelType, TypeLibrary], hash_waiters: HashWaiters, sidecars: SidecarStore
    ) -> None:
        self._types = dict(types)
        self.sidecars = sidecars  # one store for every type: where companions may be read
        self._waiters = hash_waiters
        self._started = asyncio.Event()

    def __getitem__(self, model_type: ModelType) -> TypeLibrary:
        return self._types[model_type]

    def __iter__(self) -> Iterator[ModelType]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def for_path(self, path: str) -> TypeLibrary | None:
        """The type library whose roots hold ``path`` (lexically), or None."""
        return next((t for t in self._types.values() if t.root_for(path) is not None), None)

    def find_by_hash(self, value: str) -> list[ModelEntry]:
        """Every model of any type with this SHA256, AutoV2 or AutoV3."""
        return [entry for t in self._types.values() for entry in t.find_by_hash(value)]

    def root_paths(self) -> list[str]:
        return sorted({root.path for t in self._types.values() for root in t.roots})

    # routing ---------------------------------------------------------------------------
    async def on_hash_done(self, key: str, result: FileHashes | None, error: BaseException | None) -> None:
        """The hash queue finished ``key``: record it in its type, then wake its waiters."""
        type_value, _, path = key.partition("\x00")
        library = self._types.get(ModelType(type_value))
        self._waiters.mark_finishing(key)
        try:
            if library is not None:
                await library.on_hash_done(
                    path, result.sha256 if result else None, result.autov2 if result else None, error
                )
        finally:
            self._waiters.resolve(key, result is not None)

    async def on_disk_change(self, folders: list[str] | None) -> None:
        """The watcher saw changes below ``folders`` (None: anywhere): reconcile what they touch."""
        for library in self._types.values():
            if folders is None:
                await library.on_disk_change()
                continue
            mine = [f for f in folders if library.root_for(f) is not None]
            # a folder above a root (e.g. the root itself was replaced) means: walk all
            if any(f.rstrip("/") in {r.path.rstrip("/") for r in library.roots} for f in mine):
                await library.on_disk_change()
            elif mine:
                await library.on_disk_change(scope=mine)

    async def initialize(self, *, before_walk: Callable[[], Awaitable[object]]) -> None:
        """Initialize every type in turn; ``before_walk`` runs before the first disk walk.

        A type whose first scan fails is logged; the others still start.
        """
        for model_type in STARTUP_ORDER:
            try:
                await self._types[model_type].initialize(before_walk=before_walk)
            except Exception:
                _log.exception("initial scan of %s failed", model_type.prefix)
        # the search texts once no walk's child process holds its memory beside them
        for model_type in STARTUP_ORDER:
            try:
                await self._types[model_type].search_ready()
            except Exception:
                _log.exception("the search texts of %s failed", model_type.prefix)

    def mark_started(self) -> None:
        """Every type initialized and the host's start-up work around it done."""
        self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    async def wait_started(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._started.wait(), timeout)
