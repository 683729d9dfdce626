"""Auto-organize: plan where each model belongs by the folder template, then move it there.

Owns the plan (template values sanitised into folder names, targets kept inside the model's
own root, exclusions, conflicts and "already there" decided up front, so a dry run and a
real run agree) and the clean-up of folders the run emptied. Moves go through
``ModelMoveService`` (companions travel, nothing is overwritten). It must not enforce
single-flight (``AutoOrganizeUseCase`` does) nor parse requests.
"""
from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
from collections.abc import Sequence

from ...errors import LibraryError, ValidationError
from ..edits.model_move_service import ModelMoveService, moved_pairs
from ..jobs.job import Job
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..shared.path_guard import PathGuard
from ..shared.settings_manager import SettingsManager
from .organize_records import (
    FailedMove,
    OrganizePlan,
    OrganizeProgress,
    OrganizeResult,
    PlannedMove,
    SkippedModel,
    SkipReason,
)
from .path_template import check_template, render_template, values_for_entry

_log = logging.getLogger(__name__)

MAX_EXCLUSION_PATTERNS = 200


def is_excluded(entry: ModelEntry, patterns: Sequence[str]) -> bool:
    """Whether a glob pattern matches the model's file name or its path inside the root (any case)."""
    name = f"{entry.file_name}{entry.extension}".casefold()
    relative = entry.relative_path.casefold()
    for pattern in patterns:
        p = pattern.casefold().replace("\\", "/")
        if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(relative, f"{p}/*"):
            return True
    return False


class AutoOrganizeService:
    """Plans and performs auto-organize runs for one model type at a time.

    ``auto_organize_models`` raises ``ValidationError`` (a bad template or pattern list);
    a model whose move fails is reported in the result, the run goes on. Moves files and
    their companions, removes folders the run emptied (never a root); the move service
    refreshes the index and broadcasts ``models_changed``.
    """

    def __init__(
        self,
        *,
        library: ModelLibrary,
        moves: ModelMoveService,
        guard: PathGuard,
        settings: SettingsManager,
    ) -> None:
        self._library = library
        self._moves = moves
        self._guard = guard
        self._settings = settings

    def template_for(self, model_type: ModelType) -> str:
        templates = self._settings.get("auto_organize_templates") or {}
        template = str(templates.get(model_type.value) or "")
        check_template(template)
        return template

    async def plan(
        self, model_type: ModelType, file_paths: Sequence[str] | None, exclusion_patterns: Sequence[str] = ()
    ) -> OrganizePlan:
        """Where every chosen model (``None``: every model of the type) would go, and why others stay."""
        if len(exclusion_patterns) > MAX_EXCLUSION_PATTERNS:
            raise ValidationError(f"at most {MAX_EXCLUSION_PATTERNS} exclusion patterns")
        service = self._library[model_type]
        template = self.template_for(model_type)
        priority = list(self._settings.get("priority_tags") or [])
        chosen: list[ModelEntry] = []
        missing: list[str] = []
        if file_paths is None:
            chosen = sorted(service.index.entries.values(), key=lambda e: e.file_path)
        else:
            for path in dict.fromkeys(file_paths):
                entry = service.index.get(path)
                if entry is None:
                    missing.append(path)
                else:
                    chosen.append(entry)
        moves, skipped = await asyncio.to_thread(
            self._plan_blocking, chosen, template, priority, list(exclusion_patterns)
        )
        skipped = [SkippedModel(file_path=p, reason=SkipReason.NOT_FOUND, detail=f"no {model_type.value} at this path")
                   for p in missing] + skipped
        return OrganizePlan(model_type=model_type, template=template, moves=tuple(moves), skipped=tuple(skipped))

    def _plan_blocking(
        self, entries: list[ModelEntry], template: str, priority: list[str], patterns: list[str]
    ) -> tuple[list[PlannedMove], list[SkippedModel]]:
        moves: list[PlannedMove] = []
        skipped: list[SkippedModel] = []
        claimed: dict[str, str] = {}  # target path (casefolded) → the model that takes it
        for entry in entries:
            path = entry.file_path
            if entry.exclude or is_excluded(entry, patterns):
                detail = "excluded from the library" if entry.exclude else "matches an exclusion pattern"
                skipped.append(SkippedModel(file_path=path, reason=SkipReason.EXCLUDED, detail=detail))
                continue
            relative = render_template(template, values_for_entry(entry, priority))
            if not relative:
                skipped.append(SkippedModel(
                    file_path=path, reason=SkipReason.NO_FOLDER,
                    detail=f"the template '{template}' gives no folder for this model (its metadata is empty)",
                ))
                continue
            try:
                target_dir = self._guard.check(f"{entry.root.rstrip('/')}/{relative}", model_type=entry.model_type).path
            except LibraryError as exc:  # sanitised names cannot escape; a symlinked folder might
                skipped.append(SkippedModel(file_path=path, reason=SkipReason.CONFLICT, detail=exc.message))
                continue
            if os.path.dirname(path) == target_dir:
                skipped.append(SkippedModel(file_path=path, reason=SkipReason.IN_PLACE, detail=target_dir))
                continue
            pairs = moved_pairs(path, target_dir)
            clash = next((dst for _, dst in pairs if os.path.lexists(dst) or dst.casefold() in claimed), None)
            if clash is not None:
                other = claimed.get(clash.casefold())
                detail = f"'{clash}' will be taken by '{other}'" if other else f"'{clash}' already exists"
                skipped.append(SkippedModel(file_path=path, reason=SkipReason.CONFLICT, detail=detail))
                continue
            for _, dst in pairs:
                claimed[dst.casefold()] = path
            moves.append(PlannedMove(file_path=path, target_dir=target_dir, target_path=pairs[0][1]))
        return moves, skipped

    async def auto_organize_models(
        self,
        model_type: ModelType,
        file_paths: Sequence[str] | None,
        *,
        exclusion_patterns: Sequence[str] = (),
        dry_run: bool = False,
        job: Job[OrganizeProgress] | None = None,
    ) -> OrganizeResult:
        """Plan, and unless ``dry_run`` carry out the plan; ``job`` is advanced as models move."""
        plan = await self.plan(model_type, file_paths, exclusion_patterns)
        if job is not None:
            job.detail.start(total=len(plan.moves), skipped=len(plan.skipped))
            await job.publish()
        if dry_run:
            return OrganizeResult(plan=plan, dry_run=True)
        moved: list[PlannedMove] = []
        failed: list[FailedMove] = []
        for move in plan.moves:
            error: LibraryError | None = None
            outcome = None
            try:
                target = self._guard.check(move.target_dir, model_type=model_type)
                await self._moves.prepare_target(model_type, target)
                outcome = (await self._moves.move_models(model_type, [move.file_path], move.target_dir, on_conflict="fail"))[0]
            except LibraryError as exc:
                error = exc
            if outcome is not None and outcome.success:
                moved.append(PlannedMove(file_path=move.file_path, target_dir=move.target_dir,
                                         target_path=outcome.new_path or move.target_path))
            else:
                message = error.message if error else (outcome.error if outcome else "move failed")
                code = error.code if error else (outcome.code if outcome else "move_failed")
                failed.append(FailedMove(file_path=move.file_path, target_dir=move.target_dir, error=message, code=code))
            if job is not None:
                job.detail.advance(moved=bool(outcome and outcome.success), current_name=os.path.basename(move.file_path))
                await job.publish()
        service = self._library[model_type]
        sources = sorted({os.path.dirname(m.file_path) for m in moved}, key=len, reverse=True)
        removed = await asyncio.to_thread(self._remove_emptied, sources, service.root_paths())
        return OrganizeResult(plan=plan, dry_run=False, moved=tuple(moved), failed=tuple(failed), removed_folders=tuple(removed))

    @staticmethod
    def _remove_emptied(folders: list[str], roots: list[str]) -> list[str]:
        """Remove each folder a model left if it is now empty, then its emptied parents; never a root."""
        root_set = {r.rstrip("/") for r in roots}
        removed: list[str] = []
        for folder in folders:
            current = folder.rstrip("/")
            while current and current not in root_set and any(current.startswith(r + "/") for r in root_set):
                try:
                    if os.listdir(current):
                        break
                    os.rmdir(current)
                except OSError:
                    break
                removed.append(current)
                current = os.path.dirname(current)
        return removed
