"""``GET /api/lm/disk``: what the models take on disk, per type and folder (the Disk view).

Thin: parses the query, asks ``DiskUsage`` (in-memory indexes, no disk walk), answers JSON.
"""
from __future__ import annotations

from aiohttp import web

from ...errors import ValidationError
from ...services.library.disk_usage import MAX_LIMIT, DiskQuery, DiskUsage
from ...services.shared import fast_json
from ...services.shared.model_types import type_for_prefix
from ..request_params import query_int, query_str


class DiskHandlers:
    def __init__(self, *, disk: DiskUsage) -> None:
        self._disk = disk

    async def get_disk_usage(self, request: web.Request) -> web.Response:
        """``type`` (a type's value or prefix, default: all), ``folder`` (relative to its
        roots, with sub-folders; needs ``type``), ``limit`` (largest and never-used lists)."""
        q = request.query
        raw_type = query_str(q, "type", max_len=40)
        model_type = type_for_prefix(raw_type) if raw_type else None
        if raw_type and model_type is None:
            raise ValidationError(f"'type' names no model type: '{raw_type[:40]}'")
        folder = query_str(q, "folder", max_len=1000) if "folder" in q else None
        if folder is not None:
            folder = folder.replace("\\", "/").strip("/")
            if model_type is None:
                raise ValidationError("'folder' needs 'type'")
            if any(part in ("..", ".") for part in folder.split("/")) or "\x00" in folder:
                raise ValidationError("'folder' must be a folder inside the type's roots")
        limit = query_int(q, "limit", 20, minimum=1, maximum=MAX_LIMIT)
        report = self._disk.report(DiskQuery(model_type=model_type, folder=folder, limit=limit))
        return web.json_response(
            {"success": True, "type": model_type.value if model_type else None, "folder": folder, **report},
            dumps=fast_json.dumps,
        )
