"""The per-type route workflows use: models by the names ComfyUI's loaders and our LoRA list
store (``style/ink.safetensors``, ``style/ink``, ``ink``), for the loader widget, the trigger-word
chips and the previews in ComfyUI's own model pickers.

Answers from the library's name tables (built once per index change), never a scan per call.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from ...errors import ValidationError
from ...services.library.model_names import LibraryNames
from ...services.library.model_records import ModelEntry
from ...services.library.trigger_words import merge_trigger_words
from ...services.usage.usage_history import UsageHistory
from .model_handlers import HandlerContext, ok

MAX_NAMES = 200
MAX_NAME_LENGTH = 1024
CARD_FIELDS = ("relative_path", "file_path", "file_name", "model_name", "base_model", "sub_type", "sha256",
               "preview_url", "preview_type", "preview_nsfw_level", "usage_tips", "tags")


def requested_names(request: web.Request) -> list[str]:
    """The repeated ``name`` parameters, as given (never split: a file name may hold a comma)."""
    names = list(dict.fromkeys(request.query.getall("name", [])))
    if not names:
        raise ValidationError("'name' is required (repeat it for several models)")
    if len(names) > MAX_NAMES:
        raise ValidationError(f"at most {MAX_NAMES} names per request")
    for name in names:
        if len(name) > MAX_NAME_LENGTH or "\x00" in name:
            raise ValidationError("a 'name' is too long or holds a NUL byte")
    return names


class ModelWorkflowHandler:
    """``GET /api/lm/{prefix}/lookup?name=...``: a small card per name, or null."""

    def __init__(self, *, ctx: HandlerContext, names: LibraryNames, usage: UsageHistory) -> None:
        self._ctx = ctx
        self._names = names
        self._usage = usage

    def _card(self, entry: ModelEntry) -> dict[str, Any]:
        item = self._ctx.service.format_response(entry)
        card = {key: item.get(key) for key in CARD_FIELDS}
        # the user's own trigger words first, then CivitAI's, each once (as the loader outputs them)
        words = merge_trigger_words(item.get("trigger_words", []), item.get("civitai_trigger_words", []))
        usage = self._usage.of(entry.sha256)
        return {**card, "trigger_words": words, "usage_count": usage.count if usage else 0,
                "last_used": usage.last_used if usage else None}

    async def lookup_models(self, request: web.Request) -> web.Response:
        found = {}
        for name in requested_names(request):
            entries = self._names.find(self._ctx.model_type, name)
            found[name] = {**self._card(entries[0]), "matches": len(entries)} if entries else None
        return ok(models=found)
