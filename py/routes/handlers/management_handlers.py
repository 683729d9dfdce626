"""Thin HTTP adapters for the per-type mutations: delete, exclude, metadata, tags, previews,
rename and duplicate verification.

Each handler validates input (paths through the path guard), calls one service and
shapes ``{"success": true, ...}``; typed errors are rendered by the registrar's guard.
Services refresh the index before they return, so answers reflect the disk.
"""
from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import BodyPartReader, web

from ...errors import ConflictError, PayloadTooLarge, ValidationError
from ...services.edits.hash_verification_service import HashVerificationService
from ...services.edits.metadata_edit_service import MetadataEditService
from ...services.edits.model_lifecycle_service import ModelLifecycleService
from ...services.edits.mutation_records import FileOutcome, MetadataChanges, normalize_tags, parse_nsfw_level
from ...services.edits.preview_asset_service import PreviewAssetService
from ...services.edits.tag_update_service import TagUpdateService
from ..request_params import body_str_list, read_json_object
from .model_handlers import HandlerContext, ok

MAX_BULK_PATHS = 10_000
MAX_FORM_FIELD_BYTES = 8192
_FORM_TEXT_FIELDS = ("model_path", "file_path", "nsfw_level")


def results_json(outcomes: tuple[FileOutcome, ...] | list[FileOutcome]) -> dict[str, Any]:
    return {
        "results": [o.to_json() for o in outcomes],
        "succeeded": sum(1 for o in outcomes if o.success),
        "failed": sum(1 for o in outcomes if not o.success),
    }


def guarded_paths(ctx: HandlerContext, data: dict[str, Any], name: str) -> list[str]:
    """Every path of a bulk request, each through the path guard (one bad path: the whole
    request is refused before anything changes)."""
    raw = body_str_list(data, name, max_items=MAX_BULK_PATHS)
    return [ctx.guard.check(p, model_type=ctx.model_type).path for p in raw]


def model_path_of(ctx: HandlerContext, data: dict[str, Any], *names: str) -> str:
    """The guarded path of the first of ``names`` the body carries; 400/403 otherwise."""
    for name in names:
        if data.get(name) not in (None, ""):
            return ctx.guard.check(data[name], model_type=ctx.model_type).path
    raise ValidationError(f"'{names[0]}' is required")


async def read_preview_form(request: web.Request, max_bytes: int) -> tuple[dict[str, str], bytes | None]:
    """The text fields and the ``preview_file`` bytes of a multipart upload.

    Raises ``ValidationError`` (not multipart, malformed, field too long) or
    ``PayloadTooLarge`` as soon as the file passes ``max_bytes`` (the rest is not read).
    """
    if request.content_type != "multipart/form-data":
        raise ValidationError("replace-preview takes a multipart/form-data body")
    fields: dict[str, str] = {}
    data: bytes | None = None
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise ValidationError("nested multipart bodies are not accepted")
            if part.name == "preview_file":
                data = await _read_part(part, max_bytes, too_large=PayloadTooLarge)
            elif part.name in _FORM_TEXT_FIELDS:
                raw = await _read_part(part, MAX_FORM_FIELD_BYTES, too_large=ValidationError)
                try:
                    fields[part.name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValidationError(f"'{part.name}' is not UTF-8 text") from None
            else:
                await _read_part(part, MAX_FORM_FIELD_BYTES, too_large=ValidationError)
    except (ValueError, AssertionError, RuntimeError, aiohttp.ClientPayloadError) as exc:
        raise ValidationError(f"malformed multipart body ({exc.__class__.__name__})") from exc
    return fields, data


async def _read_part(part: BodyPartReader, limit: int, *, too_large: type[ValidationError]) -> bytes:
    buf = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise too_large(f"'{part.name}' is larger than {limit} bytes")
    return bytes(buf)


class ModelManagementHandler:
    """Mutations of one model type; every answer is ``{"success": true, ...}``."""

    def __init__(
        self,
        *,
        ctx: HandlerContext,
        lifecycle: ModelLifecycleService,
        metadata: MetadataEditService,
        previews: PreviewAssetService,
        tags: TagUpdateService,
        hash_verification: HashVerificationService,
    ) -> None:
        self._ctx = ctx
        self._lifecycle = lifecycle
        self._metadata = metadata
        self._previews = previews
        self._tags = tags
        self._verify = hash_verification

    def _item(self, entry) -> dict[str, Any]:
        return self._ctx.service.format_response(entry)

    async def delete_model(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        report = await self._lifecycle.delete_model(self._ctx.model_type, path)
        return ok(file_path=path, batch_id=report.batch_id)

    async def bulk_delete_models(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        paths = guarded_paths(self._ctx, data, "file_paths")
        report = await self._lifecycle.delete_models(self._ctx.model_type, paths)
        return ok(batch_id=report.batch_id, **results_json(report.outcomes))

    async def exclude_model(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        entry = await self._lifecycle.set_excluded(self._ctx.model_type, path, True)
        return ok(item=self._item(entry))

    async def unexclude_model(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        entry = await self._lifecycle.set_excluded(self._ctx.model_type, path, False)
        return ok(item=self._item(entry))

    async def save_metadata(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        changes = MetadataChanges.from_json(data)
        entry = await self._metadata.save_metadata(self._ctx.model_type, path, changes)
        return ok(item=self._item(entry))

    async def add_tags(self, request: web.Request) -> web.Response:
        path, tags = await self._tag_request(request)
        entry = await self._tags.add_tags(self._ctx.model_type, path, tags)
        return ok(tags=list(entry.tags), item=self._item(entry))

    async def remove_tags(self, request: web.Request) -> web.Response:
        path, tags = await self._tag_request(request)
        entry = await self._tags.remove_tags(self._ctx.model_type, path, tags)
        return ok(tags=list(entry.tags), item=self._item(entry))

    async def _tag_request(self, request: web.Request) -> tuple[str, tuple[str, ...]]:
        """``{file_path, tags}`` of add-tags / remove-tags, validated."""
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        tags = normalize_tags(data.get("tags"))
        if not tags:
            raise ValidationError("'tags' must name at least one tag")
        return path, tags

    async def replace_preview(self, request: web.Request) -> web.Response:
        fields, content = await read_preview_form(request, self._previews.max_bytes)
        path = model_path_of(self._ctx, fields, "model_path", "file_path")
        if not content:
            raise ValidationError("'preview_file' is required")
        level = parse_nsfw_level(fields["nsfw_level"]) if fields.get("nsfw_level") else None
        result = await self._previews.replace_preview(self._ctx.model_type, path, content, nsfw_level=level)
        return ok(
            preview_url=result.preview_url,
            preview_nsfw_level=result.entry.preview_nsfw_level,
            item=self._item(result.entry),
        )

    async def set_preview_from_url(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "model_path", "file_path")
        level = parse_nsfw_level(data["nsfw_level"]) if data.get("nsfw_level") is not None else None
        result = await self._previews.set_preview_from_url(
            self._ctx.model_type, path, data.get("image_url"), nsfw_level=level
        )
        return ok(
            preview_url=result.preview_url,
            preview_nsfw_level=result.entry.preview_nsfw_level,
            item=self._item(result.entry),
        )

    async def rename_model(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        path = model_path_of(self._ctx, data, "file_path")
        result = await self._lifecycle.rename_model(self._ctx.model_type, path, data.get("new_file_name"))
        return ok(
            old_file_path=result.old_path,
            new_file_path=result.entry.file_path,
            item=self._item(result.entry),
        )

    async def verify_duplicates(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        paths = guarded_paths(self._ctx, data, "file_paths")
        result = await self._verify.verify_duplicates(self._ctx.model_type, paths)
        return ok(
            groups=[{"hash": h, "file_paths": p} for h, p in result.groups.items()],
            results=[
                {
                    "file_path": c.file_path,
                    "stored_sha256": c.stored_sha256,
                    "actual_sha256": c.actual_sha256,
                    "fixed": c.fixed,
                    **({"error": c.error} if c.error else {}),
                }
                for c in result.checks
            ],
            fixed=sum(1 for c in result.checks if c.fixed),
        )


class UndoDeleteHandler:
    """``POST /api/lm/undo-delete {batch_id}``: restore a delete batch of any model type."""

    def __init__(self, *, lifecycle: ModelLifecycleService) -> None:
        self._lifecycle = lifecycle

    async def undo_delete(self, request: web.Request) -> web.Response:
        data = await read_json_object(request)
        report = await self._lifecycle.undo_delete(data.get("batch_id"))  # type: ignore[arg-type]
        body = {"batch_id": report.batch_id, "remaining": report.remaining, **results_json(report.outcomes)}
        if report.outcomes and not any(o.success for o in report.outcomes):
            raise ConflictError("every model of the batch conflicts with a file that exists now", extra=body)
        return ok(**body)
