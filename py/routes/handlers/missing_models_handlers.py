"""``POST /api/lm/workflow/missing-models {workflow, parameters?, lookup_civitai?}``: every model a
workflow references (UI or API format, or the text of a PNG's ``workflow`` chunk), whether the
library has it and where, and CivitAI candidates for the missing ones (issue 14).

A thin adapter: parse and validate the body, call the use case, shape the JSON.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ...errors import ValidationError
from ...services.use_cases.find_missing_models import FindMissingModelsUseCase, MissingModelsReport
from ...services.workflows.model_resolver import Candidate, LocalMatch, ReferenceStatus, Resolution
from ...services.workflows.workflow_references import workflow_format
from ..request_params import parse_bool, parse_str, read_json_object
from .model_handlers import ok

MAX_PARAMETERS = 64 * 1024


def _workflow_of(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ValidationError("'workflow' is not valid JSON") from None
    if raw is None:
        return None
    if not isinstance(raw, dict) or not workflow_format(raw):
        raise ValidationError(
            "'workflow' must be a ComfyUI workflow: the UI format ({\"nodes\": [...]}) or the API format "
            "({\"<id>\": {\"class_type\": ..., \"inputs\": {...}}})"
        )
    return raw


def _match_json(m: LocalMatch) -> dict[str, Any]:
    return {"file_path": m.file_path, "name": m.name, "match": m.match, "model_name": m.model_name,
            "sub_type": m.sub_type, "loadable": m.loadable}


def _candidate_json(c: Candidate) -> dict[str, Any]:
    return {"source": c.source, "match": c.match, "model_type": c.model_type.value, "file_name": c.file_name,
            "model_name": c.model_name, "version_name": c.version_name, "base_model": c.base_model, "size": c.size,
            "sha256": c.sha256, "model_id": c.model_id, "model_version_id": c.version_id, "url": c.url,
            "download": dict(c.download)}


def _resolution_json(r: Resolution) -> dict[str, Any]:
    ref = r.reference
    return {
        "kind": ref.kind.value, "name": ref.name, "sub_type": ref.sub_type, "folder": ref.folder,
        "sha256": ref.sha256, "short_hash": ref.short_hash, "status": r.status.value,
        "model_type": r.model_type.value if r.model_type else None, "file_path": r.file_path,
        "matches": [_match_json(m) for m in r.matches], "candidates": [_candidate_json(c) for c in r.candidates],
        "download_folder": r.download_folder, "uses": [u.to_json() for u in ref.uses],
    }


def report_json(report: MissingModelsReport) -> dict[str, Any]:
    return {
        "format": report.format,
        "references": [_resolution_json(r) for r in report.resolutions],
        "summary": {status.value: report.count(status) for status in ReferenceStatus},
        "civitai_error": report.civitai_error or None,
    }


class MissingModelsHandlers:
    def __init__(self, *, use_case: FindMissingModelsUseCase) -> None:
        self._use_case = use_case

    async def find_missing_models(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        unknown = sorted(set(body) - {"workflow", "parameters", "lookup_civitai"})
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(unknown)}")
        workflow = _workflow_of(body.get("workflow"))
        parameters = parse_str(body.get("parameters"), "parameters", max_len=MAX_PARAMETERS)
        if workflow is None and not parameters:
            raise ValidationError("'workflow' (or an image's 'parameters' text) is required")
        report = await self._use_case.execute(
            workflow, parameters or None, lookup_civitai=parse_bool(body.get("lookup_civitai"), "lookup_civitai", True)
        )
        return ok(**report_json(report))
