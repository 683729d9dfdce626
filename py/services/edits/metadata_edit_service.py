"""Local edits of a model's sidecar: save-metadata and the read-modify-write other services share.

Owns the rule that every sidecar edit runs under the model's lock, keeps unknown keys,
records user-edited field names in ``user_edited`` (read by the CivitAI merge) and ends
with ``refresh_paths``; it must not fetch anything from CivitAI nor move files.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import Any, Callable

from ...errors import ModelNotFound
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.model_locks import ModelLocks
from ..shared.sidecar_store import SidecarStore, record_user_edits
from .mutation_records import MetadataChanges

SidecarEdit = Callable[[dict[str, Any]], dict[str, Any]]

# Fields save-metadata may set that the CivitAI merge must then leave alone.
_NOT_USER_EDITS = frozenset({"favorite", "skip_metadata_refresh"})
# Edits whose file work runs in worker threads at once (one a core): a bulk edit sends many,
# and six threads reading, encoding and writing sidecars kept the event loop waiting for the
# GIL behind all of them (58 ms at 1,000 edits, 8 in flight); the others wait on the loop.
EDIT_THREADS = max(1, min(4, os.cpu_count() or 1))


def seed_sidecar(entry: ModelEntry) -> dict[str, Any]:
    """The de-facto fields a sidecar created from scratch starts with."""
    data: dict[str, Any] = {
        "file_name": entry.file_name,
        "model_name": entry.model_name,
        "file_path": entry.file_path,
        "base_model": entry.base_model,
    }
    if entry.sha256:
        data["sha256"] = entry.sha256
    return data


def rewrite_sidecar(sidecars: SidecarStore, entry: ModelEntry, edit: SidecarEdit) -> None:
    """Read the sidecar (or ``.civitai.info``), apply ``edit``, write it atomically.

    Blocking; the caller holds the model's lock, so what is read here is what another
    process left. Raises ``ModelNotFound`` when the model file is gone (another host moved
    or deleted it): a sidecar is never written beside nothing; ``UnsafeSidecar`` for one the
    library may not read. A corrupt sidecar is backed up and replaced by the seed plus the edit.
    """
    if not os.path.isfile(entry.file_path):
        raise ModelNotFound(f"no {entry.model_type.value} file at '{entry.file_path}'")
    sidecars.rewrite(entry.file_path, edit, seed=lambda: seed_sidecar(entry))


class MetadataEditService:
    """Edits sidecars of indexed models one writer at a time and re-reads them into the index."""

    def __init__(self, *, library: ModelLibrary, locks: ModelLocks) -> None:
        self._library = library
        self._locks = locks
        self._threads = asyncio.Semaphore(EDIT_THREADS)

    async def save_metadata(self, model_type: ModelType, path: str, changes: MetadataChanges) -> ModelEntry:
        """Write the named fields into the sidecar; returns the refreshed entry.

        Raises ``ModelNotFound``; writes the sidecar (unknown keys kept, ``user_edited``
        extended) and broadcasts ``models_changed``.
        """
        values = changes.named()

        def edit(data: dict[str, Any]) -> dict[str, Any]:
            data.update(values)
            return data

        edited = [k for k in values if k not in _NOT_USER_EDITS]
        return await self.update_sidecar(model_type, path, edit, edited=edited, reason="metadata")

    async def update_sidecar(
        self,
        model_type: ModelType,
        path: str,
        edit: SidecarEdit,
        *,
        edited: Iterable[str] = (),
        reason: str = "metadata",
        locked: bool = False,
    ) -> ModelEntry:
        """Apply ``edit`` to the sidecar of the model at ``path`` and refresh the index.

        Takes the model's lock unless the caller holds it (``locked=True``). Raises
        ``ModelNotFound``; writes the sidecar; broadcasts ``models_changed``.
        """
        if locked:
            return await self._update(model_type, path, edit, list(edited), reason)
        async with self._locks.hold(path):
            return await self._update(model_type, path, edit, list(edited), reason)

    async def _update(
        self, model_type: ModelType, path: str, edit: SidecarEdit, edited: list[str], reason: str
    ) -> ModelEntry:
        service = self._library[model_type]
        entry = service.require(path)

        def full_edit(data: dict[str, Any]) -> dict[str, Any]:
            data = edit(data)
            return record_user_edits(data, edited) if edited else data

        async with self._threads:
            try:
                await asyncio.to_thread(rewrite_sidecar, self._library.sidecars, entry, full_edit)
            except ModelNotFound:
                await service.refresh_paths([path], reason=reason)  # drops the stale entry
                raise
            fresh = await service.refresh_paths([path], reason=reason)
        return fresh[0] if fresh else service.require(path)
