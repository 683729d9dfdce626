"""Thin HTTP adapters for the per-type routes, grouped by concern and flattened by
``ModelHandlerSet`` into the callables the registrar binds.

Handlers parse and validate input, call one service, shape the JSON; they never touch
the filesystem, the cache or sockets directly, and never build error responses (typed
errors are rendered by the registrar's guard).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from ...errors import NotFoundError, ValidationError
from ...services.civitai.update_check_service import UpdateCheckService
from ...services.civitai.update_records import UpdateView
from ...services.library.model_index import DEFAULT_DIRECTION, LISTING_SORTS, ListQuery
from ...services.library.model_queries import ModelQueries, civitai_url
from ...services.library.model_records import ModelEntry, ModelType
from ...services.library.type_library import TypeLibrary
from ...services.shared import fast_json
from ...services.shared.path_guard import PathGuard
from ...services.shared.server_i18n import ServerI18n
from ...services.shared.settings_manager import SettingsManager
from ..page_templates import PageTemplates
from ..request_params import query_bool, query_int, query_list, query_str

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_PAGE_SIZE = 100
TYPE_LABEL_KEYS = {t: t.label_key for t in ModelType}


def ok(**payload: Any) -> web.Response:
    return web.json_response({"success": True, **payload}, dumps=fast_json.dumps)


@dataclass(slots=True, kw_only=True)
class HandlerContext:
    """What every handler of one model type may use."""

    model_type: ModelType
    service: TypeLibrary
    queries: ModelQueries
    guard: PathGuard
    settings: SettingsManager

    def model_path(self, raw: object) -> ModelEntry:
        """The indexed model a request names; 400/403/404 otherwise."""
        guarded = self.guard.check(raw, model_type=self.model_type)
        return self.service.require(guarded.path)


class ModelPageView:
    """Renders ``/{prefix}``: the page shell with the initializing view while cold.

    Every URL in the page is relative to where it is served (``/loras``, ``/lm/loras``, ComfyUI's
    ``/api/lm/loras``, any of them under a reverse proxy's sub-path), so the page never names
    the server's root: links between types use the ``lm/{prefix}`` form, which every host serves
    (ComfyUI keeps ``/embeddings`` for itself).
    """

    def __init__(
        self, *, ctx: HandlerContext, pages: PageTemplates, i18n: ServerI18n, version: str,
        library: Mapping[ModelType, TypeLibrary] | None = None,
    ) -> None:
        self._ctx = ctx
        self._library = library  # every type's library: which the type switcher offers
        self._pages = pages
        self._i18n = i18n
        self._version = version

    async def handle_models_page(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        lang = self._i18n.resolve_language(request.query.get("lang") or ctx.settings.get("language"))
        template = self._pages.get("model_page.html")
        public = ctx.settings.public_view()
        root = page_root(request.path)
        html = await template.render_async(
            model_type=ctx.model_type.value,
            prefix=ctx.model_type.prefix,
            page_title=self._i18n.translate(TYPE_LABEL_KEYS[ctx.model_type], lang),
            model_types=[
                {"prefix": t.prefix, "model_type": t.value, "label": self._i18n.translate(TYPE_LABEL_KEYS[t], lang),
                 "href": f"{root}lm/{t.prefix}"}
                for t in visible_types(self._library or {ctx.model_type: ctx.service}, ctx.model_type)
            ],
            is_initializing=not ctx.service.is_ready,
            root=root,
            static_base=f"{root}lm/static",
            lang=lang,
            version=self._version,
            settings_json=json.dumps(public),
        )
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})


def visible_types(library: Mapping[ModelType, TypeLibrary], model_type: ModelType) -> list[ModelType]:
    """The types the type switcher offers: the main three always, any other only once it has
    models indexed (ComfyUI's empty default folders are never offered; no tab that vanishes)."""
    def shown(t: ModelType) -> bool:
        if t.is_core or t is model_type:
            return True
        service = library.get(t)
        return service is not None and bool(service.roots) and len(service.index) > 0

    return [t for t in ModelType if shown(t)]


def page_root(path: str) -> str:
    """The server's root relative to a page at ``path``: ``./`` for ``/loras``, ``../`` for
    ``/lm/loras``, ``../../`` for ``/api/lm/loras``. The browser resolves it against the URL
    it shows, so a proxy's sub-path in front of the server is kept without the server knowing it."""
    depth = max(0, path.count("/") - 1)
    return "../" * depth if depth else "./"


def parse_list_query(request: web.Request) -> ListQuery:
    q = request.query
    sort_raw = query_str(q, "sort_by") or "name"
    sort_key, _, direction = sort_raw.partition(":")
    if sort_key not in LISTING_SORTS:
        raise ValidationError(f"'sort_by' must be one of {', '.join(LISTING_SORTS)}, got '{sort_key[:30]}'")
    direction = direction or DEFAULT_DIRECTION[sort_key]
    if direction not in ("asc", "desc"):
        raise ValidationError("'sort_by' direction must be 'asc' or 'desc'")
    tag_logic = (q.get("tag_logic") or "any").lower()
    if tag_logic not in ("any", "all"):
        raise ValidationError("'tag_logic' must be 'any' or 'all'")
    folder = q.get("folder")
    model_root = q.get("model_root")
    unused_days = query_int(q, "unused_days", 0, minimum=0, maximum=100_000) if q.get("unused_days") else None
    return ListQuery(
        sort_key=sort_key,
        descending=direction == "desc",
        search=query_str(q, "search", max_len=500),
        search_filename=query_bool(q, "search_filename", True),
        search_modelname=query_bool(q, "search_modelname", True),
        search_tags=query_bool(q, "search_tags", True),
        search_creator=query_bool(q, "search_creator", False),
        search_trigger_words=query_bool(q, "search_trigger_words", False),
        fuzzy=query_bool(q, "fuzzy_search", False),
        folder=folder.strip("/").replace("\\", "/") if folder is not None else None,
        recursive=query_bool(q, "recursive", True),
        model_root=model_root.rstrip("/") if model_root else None,
        base_models=query_list(request, "base_model"),
        tags_include=query_list(request, "tag_include"),
        tags_exclude=query_list(request, "tag_exclude"),
        tag_logic_all=tag_logic == "all",
        favorites_only=query_bool(q, "favorites_only", False),
        hash=query_str(q, "hash", max_len=128).strip().lower(),
        has_update=query_bool(q, "has_update", False),
        unused_days=unused_days,
    )


class ModelListingHandler:
    """``/api/lm/{prefix}/list``: one page of formatted items."""

    def __init__(self, *, ctx: HandlerContext, updates: UpdateCheckService | None = None) -> None:
        self._ctx = ctx
        self._updates = updates

    async def get_models(self, request: web.Request) -> web.Response:
        q = request.query
        page = query_int(q, "page", 1)
        page_size = query_int(q, "page_size", 20, maximum=MAX_PAGE_SIZE, clamp_max=True)
        query = parse_list_query(request)
        updates = self._updates.view(self._ctx.model_type) if self._updates is not None else None
        if query.has_update:
            query = replace(query, update_paths=updates.paths if updates else frozenset(),
                            update_version=updates.version if updates else 0)
        service = self._ctx.service
        if query.search:
            await service.search_ready()
        result = service.get_paginated_data(query, page, page_size)
        return web.json_response(
            {
                "items": [with_update_flag(service.format_response(e), updates) for e in result.items],
                "total": result.total,
                "page": result.page,
                "page_size": result.page_size,
                "total_pages": result.total_pages,
            },
            dumps=fast_json.dumps,
        )


def with_update_flag(item: dict[str, Any], updates: UpdateView | None) -> dict[str, Any]:
    """The listing item with ``has_update`` (a newer version on CivitAI, issue 14)."""
    item["has_update"] = updates is not None and item.get("file_path") in updates.paths
    return item


class ModelQueryHandler:
    """Read-only queries; every answer is ``{"success": true, ...}``."""

    def __init__(self, *, ctx: HandlerContext) -> None:
        self._ctx = ctx

    @property
    def _q(self) -> ModelQueries:
        return self._ctx.queries

    async def get_top_tags(self, request: web.Request) -> web.Response:
        limit = query_int(request.query, "limit", 20, maximum=1000, clamp_max=True)
        return ok(tags=self._q.top_tags(limit))

    async def search_tags(self, request: web.Request) -> web.Response:
        text = query_str(request.query, "q", max_len=200) or query_str(request.query, "search", max_len=200)
        limit = query_int(request.query, "limit", 20, maximum=500, clamp_max=True)
        return ok(tags=self._q.search_tags(text, limit))

    async def get_base_models(self, request: web.Request) -> web.Response:
        limit = query_int(request.query, "limit", 100, maximum=1000, clamp_max=True)
        return ok(base_models=self._q.base_models(limit))

    async def get_model_roots(self, request: web.Request) -> web.Response:
        return ok(roots=self._ctx.service.root_paths())

    async def get_folders(self, request: web.Request) -> web.Response:
        return ok(folders=self._q.folders())

    async def get_folder_tree(self, request: web.Request) -> web.Response:
        model_root = query_str(request.query, "model_root", required=True).rstrip("/")
        if model_root not in self._ctx.service.root_paths():
            raise ValidationError(f"'{model_root}' is not a {self._ctx.model_type.value} root")
        return ok(tree=self._q.folder_tree(model_root))

    async def get_unified_folder_tree(self, request: web.Request) -> web.Response:
        return ok(tree=self._q.unified_folder_tree())

    async def find_duplicate_models(self, request: web.Request) -> web.Response:
        groups = self._q.duplicates()
        return ok(groups=groups, count=len(groups))

    async def find_filename_conflicts(self, request: web.Request) -> web.Response:
        groups = self._q.filename_conflicts()
        return ok(groups=groups, count=len(groups))

    async def get_model_metadata(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        metadata = await self._ctx.service.read_full_metadata(entry.file_path)
        return ok(metadata=metadata, item=self._ctx.service.format_response(entry))

    async def get_model_description(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        metadata = await self._ctx.service.read_full_metadata(entry.file_path)
        description = metadata.get("modelDescription") or ""
        civitai = metadata.get("civitai") if isinstance(metadata.get("civitai"), dict) else {}
        if not description and isinstance(civitai.get("model"), dict):
            description = civitai["model"].get("description") or ""
        return ok(description=description if isinstance(description, str) else "")

    async def get_model_notes(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        return ok(notes=entry.notes)

    async def get_model_preview_url(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        return ok(preview_url=self._ctx.service.format_response(entry)["preview_url"])

    async def get_model_civitai_url(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        return ok(civitai_url=civitai_url(entry), model_id=entry.civitai.get("modelId"), version_id=entry.civitai.get("id"))

    async def get_relative_paths(self, request: web.Request) -> web.Response:
        search = query_str(request.query, "search", max_len=500)
        limit = query_int(request.query, "limit", 15, maximum=500, clamp_max=True)
        if search:
            await self._ctx.service.search_ready()
        return ok(relative_paths=self._q.relative_paths(search, limit))

    async def get_excluded_models(self, request: web.Request) -> web.Response:
        service = self._ctx.service
        return ok(items=[service.format_response(e) for e in self._q.excluded()])

    async def scan_models(self, request: web.Request) -> web.Response:
        result = await self._ctx.service.reconcile()
        return ok(**result)

    # type-specific queries ---------------------------------------------------------
    async def get_letter_counts(self, request: web.Request) -> web.Response:
        return ok(letter_counts=self._q.letter_counts())

    async def get_trigger_words(self, request: web.Request) -> web.Response:
        entry = self._ctx.model_path(query_str(request.query, "file_path", required=True))
        words = list(entry.trigger_words) + [w for w in entry.civitai.get("trainedWords") or [] if w not in entry.trigger_words]
        return ok(trigger_words=words)

    async def get_usage_tips_by_path(self, request: web.Request) -> web.Response:
        rel = query_str(request.query, "relative_path", required=True)
        entry = self._q.find_by_relative_path(rel)
        if entry is None:
            raise NotFoundError(f"no {self._ctx.model_type.value} at relative path '{rel}'")
        return ok(usage_tips=entry.usage_tips)

    async def get_model_info(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "")
        entry = self._q.find_by_name(name)
        if entry is None:
            raise NotFoundError(f"no {self._ctx.model_type.value} named '{name[:200]}'")
        return ok(info=self._ctx.service.format_response(entry))

    async def get_checkpoint_roots(self, request: web.Request) -> web.Response:
        return ok(roots=self._ctx.service.root_paths("checkpoint"))

    async def get_unet_roots(self, request: web.Request) -> web.Response:
        return ok(roots=self._ctx.service.root_paths("diffusion_model"))
