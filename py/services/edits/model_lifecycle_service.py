"""Deleting (recoverably), restoring, excluding and renaming models with their companions.

Owns the rules of these mutations (a model and its companions act as one, never an
overwrite, the index refreshed before returning); the trash layout is ``ModelTrash``'s
(see that module for the mechanism per platform) and sidecar edits are the metadata
sync service's. It must not parse requests.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Any

from ...errors import ConflictError, DiskFull, LibraryError, ModelNotFound, NotFoundError, ValidationError, is_disk_full
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.file_transfer import TargetExists, companion_paths, move_group
from ..shared.model_locks import ModelLocks
from ..shared.sidecar_store import SidecarStore, sidecar_path
from .metadata_edit_service import MetadataEditService
from .model_trash import ModelTrash
from .mutation_records import DeleteReport, FileOutcome, RenameResult, UndoReport

_log = logging.getLogger(__name__)

MAX_EVENT_PATHS = 200  # a models_changed event names at most this many paths

MAX_NAME_BYTES = 255
# Characters Windows forbids in names, and control characters: refused everywhere so a
# library stays portable between systems.
_BAD_NAME_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def validate_new_stem(raw: object, extension: str) -> str:
    """The new file stem from a rename request (the model's extension may be included).

    Raises ``ValidationError`` for anything that is not a plain, portable file name.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("'new_file_name' is required")
    name = raw.strip()
    if extension and name.lower().endswith(extension.lower()) and len(name) > len(extension):
        name = name[: -len(extension)]
    if _BAD_NAME_CHARS.search(name):
        raise ValidationError(f"'new_file_name' must not contain path separators or any of <>:\"|?* (got '{name[:80]}')")
    if name in (".", "..") or name.startswith(".") or name.endswith((".", " ")):
        raise ValidationError("'new_file_name' must not start with a dot or end with a dot or space")
    if _WINDOWS_RESERVED.match(name):
        raise ValidationError(f"'{name}' is a reserved file name on Windows")
    try:
        # strict UTF-8: a lone surrogate would make a name other systems (and JSON) cannot carry
        encoded = (name + extension + ".metadata.json").encode("utf-8")
    except UnicodeError:
        raise ValidationError("'new_file_name' is not valid UTF-8 text") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise ValidationError(f"'new_file_name' is too long (a file name has at most {MAX_NAME_BYTES} bytes)")
    return name


def renamed_pairs(model_path: str, new_stem: str) -> list[tuple[str, str]]:
    """(old, new) for the model and every existing companion, keeping each suffix."""
    directory = os.path.dirname(model_path)
    old_stem = os.path.splitext(model_path)[0]
    extension = os.path.splitext(model_path)[1]
    pairs = [(model_path, f"{directory}/{new_stem}{extension}")]
    for companion in companion_paths(model_path):
        pairs.append((companion, f"{directory}/{new_stem}{companion[len(old_stem):]}"))
    return pairs


def repoint_sidecar(data: dict[str, Any], new_model_path: str, old_model_path: str) -> dict[str, Any]:
    """Update the path-bearing de-facto fields of a sidecar after its model moved."""
    old_stem = os.path.splitext(old_model_path)[0]
    new_stem = os.path.splitext(new_model_path)[0]
    if "file_path" in data:
        data["file_path"] = new_model_path
    if "file_name" in data:
        data["file_name"] = os.path.splitext(os.path.basename(new_model_path))[0]
    preview = data.get("preview_url")
    if isinstance(preview, str) and preview.startswith(old_stem + "."):
        data["preview_url"] = new_stem + preview[len(old_stem):]
    return data


class ModelLifecycleService:
    """Delete, undo, exclude and rename; every method refreshes the index before returning."""

    def __init__(
        self,
        *,
        library: ModelLibrary,
        locks: ModelLocks,
        trash: ModelTrash,
        metadata: MetadataEditService,
    ) -> None:
        self._library = library
        self._locks = locks
        self._trash = trash
        self._metadata = metadata

    # delete --------------------------------------------------------------------------
    async def delete_model(self, model_type: ModelType, path: str) -> DeleteReport:
        """Move one model and its companions to the trash; returns the undo batch.

        Raises ``ModelNotFound`` (not indexed), ``ConflictError`` (the move failed; nothing
        changed); broadcasts ``models_changed``.
        """
        report = await self.delete_models(model_type, [path])
        outcome = report.outcomes[0]
        if not outcome.success:
            if outcome.code == DiskFull.code:
                raise DiskFull(os.path.dirname(path))
            error = ModelNotFound if outcome.code == ModelNotFound.code else ConflictError
            raise error(outcome.error)
        return report

    async def delete_models(self, model_type: ModelType, paths: list[str]) -> DeleteReport:
        """Trash every model of ``paths`` in one undo batch, reporting per model.

        Holds the locks of all of them while they move (an edit waiting for one then
        finds no model); broadcasts one ``models_changed`` for the batch.
        """
        service = self._library[model_type]
        batch_id = self._trash.new_batch_id()
        unique = list(dict.fromkeys(paths))
        async with self._locks.hold(*unique):
            entries = [service.index.get(path) for path in unique]
            errors = await asyncio.to_thread(self._trash_entries, batch_id, [e for e in entries if e is not None])
            outcomes: list[FileOutcome] = []
            for path, entry in zip(unique, entries):
                error = errors.get(path) if entry is not None else ModelNotFound(f"no {model_type.value} at '{path}'")
                if error is None:
                    outcomes.append(FileOutcome(file_path=path, success=True))
                elif isinstance(error, LibraryError):
                    outcomes.append(FileOutcome(file_path=path, success=False, error=error.message, code=error.code))
                elif is_disk_full(error):
                    full = DiskFull(os.path.dirname(path))
                    outcomes.append(FileOutcome(file_path=path, success=False, error=full.message, code=full.code))
                else:
                    outcomes.append(FileOutcome(
                        file_path=path, success=False, code="delete_failed",
                        error=f"could not delete '{path}': {getattr(error, 'strerror', None) or error}",
                    ))
            await service.refresh_paths(unique, reason="delete", broadcast=False)
        deleted = [o.file_path for o in outcomes if o.success]
        if deleted:
            await service.broadcast_changed("delete", deleted[:MAX_EVENT_PATHS])
        await asyncio.to_thread(self._trash.expire, self._all_roots())
        return DeleteReport(batch_id=batch_id if deleted else "", outcomes=tuple(outcomes))

    def _trash_entries(self, batch_id: str, entries: list[ModelEntry]) -> dict[str, Exception]:
        """Move each model with its companions into the batch (blocking); errors by path."""
        errors: dict[str, Exception] = {}
        by_root: dict[str, list[tuple[str, list[str]]]] = {}
        for entry in entries:
            if not os.path.isfile(entry.file_path):
                errors[entry.file_path] = ModelNotFound(f"no {entry.model_type.value} file at '{entry.file_path}'")
                continue
            files = [entry.file_path, *companion_paths(entry.file_path)]
            by_root.setdefault(entry.root, []).append((entry.file_path, files))
        type_value = entries[0].model_type.value if entries else ""
        for root, models in by_root.items():
            for model, error in self._trash.put_many(batch_id=batch_id, root=root, model_type=type_value, models=models):
                if error is not None:
                    errors[model.model_path] = error
        return errors

    async def undo_delete(self, batch_id: str) -> UndoReport:
        """Move a delete batch back; a model whose place is taken stays in the trash.

        Raises ``ValidationError`` (malformed id), ``NotFoundError`` (no such batch in
        the hidden trash: unknown, already undone, or handed to the OS trash).
        """
        if not self._trash.is_batch_id(batch_id):
            raise ValidationError("'batch_id' must be the id a delete returned")
        roots = self._all_roots()
        models = await asyncio.to_thread(self._trash.batch_models, batch_id, roots)
        if not models:
            raise NotFoundError(f"no deleted batch '{batch_id}' to restore (undone already, or past the undo window)")
        async with self._locks.hold(*[m.model_path for m in models]):
            restored = await asyncio.to_thread(self._trash.restore, batch_id, roots)
            by_type: dict[str, list[str]] = {}
            for outcome in restored:
                if outcome.restored:
                    by_type.setdefault(outcome.model_type, []).append(outcome.model_path)
            for type_value, paths in by_type.items():
                service = next((s for t, s in self._library.items() if t.value == type_value), None)
                if service is not None:  # a manifest names its type; an unknown one refreshes nothing
                    await service.refresh_paths(paths, reason="undo_delete")
        outcomes = tuple(
            FileOutcome(file_path=o.model_path, success=True)
            if o.restored
            else FileOutcome(
                file_path=o.model_path,
                success=False,
                error=f"'{o.conflict}' exists now; the model stays in the trash",
                code=ConflictError.code,
            )
            for o in restored
        )
        return UndoReport(batch_id=batch_id, outcomes=outcomes, remaining=sum(1 for o in outcomes if not o.success))

    def _all_roots(self) -> list[str]:
        return sorted({root.path for service in self._library.values() for root in service.roots})

    # exclude ---------------------------------------------------------------------------
    async def set_excluded(self, model_type: ModelType, path: str, excluded: bool) -> ModelEntry:
        """Hide (or show again) a model without touching its file; writes ``exclude``.

        Raises ``ModelNotFound``; broadcasts ``models_changed``.
        """

        def edit(data: dict[str, Any]) -> dict[str, Any]:
            data["exclude"] = excluded
            return data

        return await self._metadata.update_sidecar(
            model_type, path, edit, reason="exclude" if excluded else "unexclude"
        )

    # rename ----------------------------------------------------------------------------
    async def rename_model(self, model_type: ModelType, path: str, new_file_name: object) -> RenameResult:
        """Rename a model and every companion together; returns the new entry.

        Raises ``ValidationError`` (bad name, same name), ``ModelNotFound``,
        ``ConflictError`` (a target exists: nothing is overwritten or moved);
        broadcasts ``models_changed`` for the old and new path.
        """
        service = self._library[model_type]
        entry = service.require(path)
        stem = validate_new_stem(new_file_name, entry.extension)
        new_path = f"{os.path.dirname(path)}/{stem}{entry.extension}"
        if new_path == path:
            raise ValidationError("the new name is the current name")
        async with self._locks.hold(path, new_path):
            entry = service.require(path)
            try:
                await asyncio.to_thread(self._rename_files, entry, stem, new_path, self._library.sidecars)
            except TargetExists as exc:
                raise ConflictError(f"'{exc.filename}' already exists; nothing was renamed") from exc
            except FileNotFoundError as exc:
                raise ModelNotFound(f"no {model_type.value} file at '{path}'") from exc
            except OSError as exc:
                if is_disk_full(exc):
                    raise DiskFull(os.path.dirname(path)) from exc
                raise ConflictError(f"could not rename '{path}': {exc.strerror or exc}") from exc
            finally:
                await service.refresh_paths([path, new_path], reason="rename")
        return RenameResult(old_path=path, entry=service.require(new_path))

    @staticmethod
    def _rename_files(entry: ModelEntry, stem: str, new_path: str, sidecars: SidecarStore) -> None:
        pairs = renamed_pairs(entry.file_path, stem)
        move_group(pairs)
        update_sidecar_paths(sidecars, new_path, entry.file_path)


def update_sidecar_paths(sidecars: SidecarStore, new_model_path: str, old_model_path: str) -> None:
    """Rewrite the path fields of a moved model's sidecar, if it has one it may read (blocking)."""
    read = sidecars.read_file(sidecar_path(new_model_path))
    if read.data and not read.corrupt:
        before = dict(read.data)
        after = repoint_sidecar(dict(read.data), new_model_path, old_model_path)
        if after != before:
            try:
                sidecars.write(new_model_path, after)
            except OSError as exc:  # the files moved; stale path fields are only cosmetic
                _log.warning("could not update the paths in the sidecar of %s: %s", new_model_path, exc)
