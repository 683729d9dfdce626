"""Thin HTTP adapters for moving models: ``move_model`` and ``move_models_bulk``.

Paths go through the path guard (the target must be a folder in a root of this type);
the move service does the work and refreshes the index before the answer.
"""
from __future__ import annotations

from aiohttp import web

from ...errors import ValidationError
from ...services.edits.model_move_service import ON_CONFLICT, ModelMoveService
from ..request_params import read_json_object
from .management_handlers import guarded_paths, model_path_of, results_json
from .model_handlers import HandlerContext, ok


class ModelMoveHandler:
    """Moves of one model type; a bulk move answers per file."""

    def __init__(self, *, ctx: HandlerContext, moves: ModelMoveService) -> None:
        self._ctx = ctx
        self._moves = moves

    async def _target(self, data: dict) -> str:
        raw = data.get("target_path")
        if raw in (None, ""):
            raise ValidationError("'target_path' is required")
        target = self._ctx.guard.check(raw, model_type=self._ctx.model_type)
        return await self._moves.prepare_target(self._ctx.model_type, target)

    @staticmethod
    def _on_conflict(data: dict) -> str:
        value = data.get("on_conflict", "fail")
        if value not in ON_CONFLICT:
            raise ValidationError("'on_conflict' must be 'fail' or 'rename'")
        return value

    async def move_model(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        on_conflict = self._on_conflict(data)
        self._ctx.service.require(path)
        target = await self._target(data)
        outcome = await self._moves.move_model(self._ctx.model_type, path, target, on_conflict=on_conflict)
        entry = self._ctx.service.require(outcome.new_path or path)
        return ok(
            old_file_path=path,
            new_file_path=entry.file_path,
            item=self._ctx.service.format_response(entry),
        )

    async def move_models_bulk(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        paths = guarded_paths(self._ctx, data, "file_paths")
        on_conflict = self._on_conflict(data)
        target = await self._target(data)
        outcomes = await self._moves.move_models(self._ctx.model_type, paths, target, on_conflict=on_conflict)
        return ok(target_path=target, **results_json(outcomes))
