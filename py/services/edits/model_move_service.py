"""Moving models with their companions into another folder of a library root of their type.

Owns the move rules: the group moves together or not at all (rollback), a name clash
fails that model (or, with ``on_conflict="rename"``, picks a free name), across
filesystems files are copied, verified and only then deleted (``file_transfer``). It must
not validate request paths (the handler's path guard does) nor parse requests.
"""
from __future__ import annotations

import asyncio
import os

from ...errors import ConflictError, DiskFull, LibraryError, ModelNotFound, ValidationError, is_disk_full
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.file_transfer import TargetExists, companion_paths, move_group
from ..shared.model_locks import ModelLocks
from ..shared.path_guard import GuardedPath
from ..shared.sidecar_store import SidecarStore
from .model_lifecycle_service import MAX_EVENT_PATHS, update_sidecar_paths
from .mutation_records import FileOutcome

ON_CONFLICT = ("fail", "rename")
_MAX_FREE_NAME_TRIES = 1000


def moved_pairs(model_path: str, target_dir: str, new_stem: str | None = None) -> list[tuple[str, str]]:
    """(old, new) for the model and each existing companion, into ``target_dir``."""
    old_stem = os.path.splitext(model_path)[0]
    stem = new_stem if new_stem is not None else os.path.basename(old_stem)
    extension = os.path.splitext(model_path)[1]
    pairs = [(model_path, f"{target_dir}/{stem}{extension}")]
    for companion in companion_paths(model_path):
        pairs.append((companion, f"{target_dir}/{stem}{companion[len(old_stem):]}"))
    return pairs


def _free_pairs(model_path: str, target_dir: str) -> list[tuple[str, str]]:
    stem = os.path.basename(os.path.splitext(model_path)[0])
    for n in range(_MAX_FREE_NAME_TRIES):
        candidate = stem if n == 0 else f"{stem}-{n}"
        pairs = moved_pairs(model_path, target_dir, candidate)
        if not any(os.path.lexists(dst) for _, dst in pairs):
            return pairs
    raise TargetExists(f"no free name for {stem} in {target_dir}")


class ModelMoveService:
    """Moves one model, or many with a per-model report, refreshing the index for each."""

    def __init__(self, *, library: ModelLibrary, locks: ModelLocks) -> None:
        self._library = library
        self._locks = locks

    async def prepare_target(self, model_type: ModelType, target: GuardedPath) -> str:
        """The target folder, created if missing. Raises ``ValidationError`` when it is a file
        or a hidden folder (the scanner would lose the model there), or not of ``model_type``.
        """
        if target.model_type is not model_type:
            raise ValidationError(f"'target_path' is not a {model_type.value} folder")
        if any(part.startswith(".") for part in target.relative.split("/") if part):
            raise ValidationError("'target_path' must not be a hidden folder")
        path = target.path
        try:
            path.encode("utf-8")  # models there could not be indexed, nor named in JSON
        except UnicodeError:
            raise ValidationError("'target_path' is not valid UTF-8 text") from None

        def ensure() -> None:
            if os.path.exists(path) and not os.path.isdir(path):
                raise ValidationError(f"'target_path' {path!r} is a file, not a folder")
            os.makedirs(path, exist_ok=True)

        try:
            await asyncio.to_thread(ensure)
        except OSError as exc:
            raise ValidationError(f"cannot use '{path}' as a folder: {exc.strerror or exc}") from exc
        return path

    async def move_model(self, model_type: ModelType, path: str, target_dir: str, *, on_conflict: str = "fail") -> FileOutcome:
        """Move one model (see ``move_models``); raises instead of reporting a failure.

        Raises ``ModelNotFound``, ``ConflictError`` (name clash; nothing moved).
        """
        outcome = (await self.move_models(model_type, [path], target_dir, on_conflict=on_conflict))[0]
        if not outcome.success:
            if outcome.code == DiskFull.code:
                raise DiskFull(target_dir)
            error = ModelNotFound if outcome.code == ModelNotFound.code else ConflictError
            raise error(outcome.error)
        return outcome

    async def move_models(
        self, model_type: ModelType, paths: list[str], target_dir: str, *, on_conflict: str = "fail"
    ) -> list[FileOutcome]:
        """Move each model with its companions into ``target_dir``, reporting per model.

        Broadcasts ``models_changed`` for old and new paths.
        """
        if on_conflict not in ON_CONFLICT:
            raise ValidationError("'on_conflict' must be 'fail' or 'rename'")
        service = self._library[model_type]
        outcomes: list[FileOutcome] = []
        for path in dict.fromkeys(paths):
            provisional = f"{target_dir}/{os.path.basename(path)}"
            async with self._locks.hold(path, provisional):
                new_path = ""
                try:
                    entry = service.require(path)
                    new_path = await asyncio.to_thread(
                        self._move_one, entry, target_dir, on_conflict, self._library.sidecars
                    )
                except LibraryError as exc:
                    outcomes.append(FileOutcome(file_path=path, success=False, error=exc.message, code=exc.code))
                except TargetExists as exc:
                    outcomes.append(
                        FileOutcome(
                            file_path=path,
                            success=False,
                            error=f"'{exc.filename}' already exists in the target folder; nothing was moved",
                            code=ConflictError.code,
                        )
                    )
                except OSError as exc:
                    if is_disk_full(exc):
                        outcomes.append(FileOutcome(
                            file_path=path, success=False, error=DiskFull(target_dir).message, code=DiskFull.code,
                        ))
                    else:
                        outcomes.append(FileOutcome(
                            file_path=path, success=False, error=f"could not move '{path}': {exc.strerror or exc}",
                            code="move_failed",
                        ))
                else:
                    outcomes.append(FileOutcome(file_path=path, success=True, new_path=new_path))
                finally:
                    changed = [path, new_path] if new_path and new_path != path else [path]
                    await service.refresh_paths(changed, reason="move", broadcast=False)
        moved = [p for o in outcomes if o.success and o.new_path != o.file_path for p in (o.file_path, o.new_path)]
        if moved:
            await service.broadcast_changed("move", moved[:MAX_EVENT_PATHS])
        return outcomes

    @staticmethod
    def _move_one(entry: ModelEntry, target_dir: str, on_conflict: str, sidecars: SidecarStore) -> str:
        if not os.path.isfile(entry.file_path):
            raise ModelNotFound(f"no {entry.model_type.value} file at '{entry.file_path}'")
        if os.path.dirname(entry.file_path) == target_dir:
            return entry.file_path  # already there: nothing to do
        pairs = _free_pairs(entry.file_path, target_dir) if on_conflict == "rename" else moved_pairs(entry.file_path, target_dir)
        move_group(pairs)
        new_path = pairs[0][1]
        update_sidecar_paths(sidecars, new_path, entry.file_path)
        return new_path
