"""Thin HTTP adapters for auto-organize of one model type: run (or dry-run), progress, clear.

A body or query that does not parse is a 400, never "organize everything": only a request
that names no files at all means every model of the type.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from ...errors import ValidationError
from ...services.use_cases.auto_organize import AutoOrganizeUseCase
from ..request_params import body_bool, body_str_list, query_bool, read_json_object
from .model_handlers import HandlerContext, ok


class ModelAutoOrganizeHandler:
    """``auto-organize`` (GET and POST), ``auto-organize-progress``, ``auto-organize-clear``."""

    def __init__(self, *, ctx: HandlerContext, use_case: AutoOrganizeUseCase) -> None:
        self._ctx = ctx
        self._use_case = use_case

    async def _parse(self, request: web.Request) -> tuple[list[str] | None, list[str], bool]:
        if request.method == "POST":
            data = await read_json_object(request, allow_empty=True)
            unknown = set(data) - {"file_paths", "exclusion_patterns", "dry_run"}
            if unknown:
                raise ValidationError(f"unknown field '{sorted(unknown)[0][:40]}'")
            file_paths = body_str_list(data, "file_paths", required=False) if "file_paths" in data else None
            if file_paths is not None and not file_paths:
                raise ValidationError("'file_paths' must not be empty (leave it out to organize every model)")
            patterns = body_str_list(data, "exclusion_patterns", required=False, max_items=200)
            dry_run = body_bool(data, "dry_run", False)
        else:
            q = request.query
            unknown = set(q) - {"file_paths", "file_path", "exclusion_patterns", "dry_run"}
            if unknown:
                raise ValidationError(f"unknown parameter '{sorted(unknown)[0][:40]}'")
            raw_paths = q.getall("file_paths", []) + q.getall("file_path", [])
            file_paths = [p for p in raw_paths] if raw_paths else None
            if file_paths is not None and not all(file_paths):
                raise ValidationError("'file_paths' must not contain empty paths")
            patterns = [p for p in q.getall("exclusion_patterns", []) if p]
            dry_run = query_bool(q, "dry_run", False)
        if any(not p.strip() or len(p) > 512 for p in patterns):
            raise ValidationError("'exclusion_patterns' must be non-empty glob patterns of at most 512 characters")
        if file_paths is not None:
            file_paths = [self._ctx.guard.check(p, model_type=self._ctx.model_type).path for p in file_paths]
        return file_paths, patterns, dry_run

    async def auto_organize(self, request: web.Request) -> web.Response:
        file_paths, patterns, dry_run = await self._parse(request)
        result = await self._use_case.execute(file_paths, exclusion_patterns=patterns, dry_run=dry_run)
        return ok(**result.to_json())

    async def get_auto_organize_progress(self, request: web.Request) -> web.Response:
        snapshot: dict[str, Any] | None = self._use_case.progress()
        if snapshot is None:
            return ok(status="idle", progress=None)
        return ok(**snapshot)

    async def clear_auto_organize(self, request: web.Request) -> web.Response:
        return ok(cleared=self._use_case.clear())
