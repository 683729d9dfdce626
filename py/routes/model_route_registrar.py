"""The declarative table of routes every model type shares, and binding helpers.

One screen shows every per-type URL. ``{prefix}`` stands for ``loras``, ``checkpoints``
or ``embeddings``; other ``{...}`` parts are aiohttp path variables.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from .request_guards import Handler, guarded
from .trust_policy import TrustPolicy


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    method: str
    path: str
    handler_name: str
    state_changing: bool | None = None  # default: every method but GET changes state

    @property
    def changes_state(self) -> bool:
        return self.method != "GET" if self.state_changing is None else self.state_changing


COMMON_ROUTE_DEFINITIONS: tuple[RouteDefinition, ...] = (
    # page
    RouteDefinition("GET", "/{prefix}", "handle_models_page"),
    RouteDefinition("GET", "/lm/{prefix}", "handle_models_page"),
    # listing
    RouteDefinition("GET", "/api/lm/{prefix}/list", "get_models"),
    # read-only queries
    RouteDefinition("GET", "/api/lm/{prefix}/top-tags", "get_top_tags"),
    RouteDefinition("GET", "/api/lm/{prefix}/search-tags", "search_tags"),
    RouteDefinition("GET", "/api/lm/{prefix}/base-models", "get_base_models"),
    RouteDefinition("GET", "/api/lm/{prefix}/roots", "get_model_roots"),
    RouteDefinition("GET", "/api/lm/{prefix}/folders", "get_folders"),
    RouteDefinition("GET", "/api/lm/{prefix}/folder-tree", "get_folder_tree"),
    RouteDefinition("GET", "/api/lm/{prefix}/unified-folder-tree", "get_unified_folder_tree"),
    RouteDefinition("GET", "/api/lm/{prefix}/find-duplicates", "find_duplicate_models"),
    RouteDefinition("GET", "/api/lm/{prefix}/find-filename-conflicts", "find_filename_conflicts"),
    RouteDefinition("GET", "/api/lm/{prefix}/metadata", "get_model_metadata"),
    RouteDefinition("GET", "/api/lm/{prefix}/model-description", "get_model_description"),
    RouteDefinition("GET", "/api/lm/{prefix}/get-notes", "get_model_notes"),
    RouteDefinition("GET", "/api/lm/{prefix}/preview-url", "get_model_preview_url"),
    RouteDefinition("GET", "/api/lm/{prefix}/civitai-url", "get_model_civitai_url"),
    RouteDefinition("GET", "/api/lm/{prefix}/relative-paths", "get_relative_paths"),
    RouteDefinition("GET", "/api/lm/{prefix}/excluded", "get_excluded_models"),
    # library maintenance
    RouteDefinition("POST", "/api/lm/{prefix}/scan", "scan_models"),
    # mutations (issue 3): ModelManagementHandler, ModelMoveHandler
    RouteDefinition("POST", "/api/lm/{prefix}/delete", "delete_model"),
    RouteDefinition("POST", "/api/lm/{prefix}/bulk-delete", "bulk_delete_models"),
    RouteDefinition("POST", "/api/lm/{prefix}/exclude", "exclude_model"),
    RouteDefinition("POST", "/api/lm/{prefix}/unexclude", "unexclude_model"),
    RouteDefinition("POST", "/api/lm/{prefix}/save-metadata", "save_metadata"),
    RouteDefinition("POST", "/api/lm/{prefix}/add-tags", "add_tags"),
    RouteDefinition("POST", "/api/lm/{prefix}/remove-tags", "remove_tags"),
    RouteDefinition("POST", "/api/lm/{prefix}/replace-preview", "replace_preview"),
    RouteDefinition("POST", "/api/lm/{prefix}/set-preview-from-url", "set_preview_from_url"),
    RouteDefinition("POST", "/api/lm/{prefix}/rename", "rename_model"),
    RouteDefinition("POST", "/api/lm/{prefix}/verify-duplicates", "verify_duplicates"),
    RouteDefinition("POST", "/api/lm/{prefix}/move_model", "move_model"),
    RouteDefinition("POST", "/api/lm/{prefix}/move_models_bulk", "move_models_bulk"),
    # CivitAI (issue 4): ModelCivitaiHandler
    RouteDefinition("POST", "/api/lm/{prefix}/fetch-civitai", "fetch_civitai"),
    RouteDefinition("POST", "/api/lm/{prefix}/fetch-all-civitai", "fetch_all_civitai"),
    RouteDefinition("GET", "/api/lm/{prefix}/fetch-all-civitai-progress", "get_fetch_all_civitai_progress"),
    RouteDefinition("POST", "/api/lm/{prefix}/cancel-task", "cancel_task"),
    RouteDefinition("POST", "/api/lm/{prefix}/relink-civitai", "relink_civitai"),
    RouteDefinition("GET", "/api/lm/{prefix}/civitai/versions/{model_id}", "get_civitai_versions"),
    RouteDefinition("GET", "/api/lm/{prefix}/civitai/model/version/{version_id}", "get_civitai_model_by_version"),
    RouteDefinition("GET", "/api/lm/{prefix}/civitai/model/hash/{hash}", "get_civitai_model_by_hash"),
    # auto-organize (issue 5): ModelAutoOrganizeHandler; its GET moves files, so it is guarded
    RouteDefinition("GET", "/api/lm/{prefix}/auto-organize", "auto_organize", state_changing=True),
    RouteDefinition("POST", "/api/lm/{prefix}/auto-organize", "auto_organize"),
    RouteDefinition("GET", "/api/lm/{prefix}/auto-organize-progress", "get_auto_organize_progress"),
    RouteDefinition("POST", "/api/lm/{prefix}/auto-organize-clear", "clear_auto_organize"),
)


class ModelRouteRegistrar:
    """Binds route definitions to handlers on a ``RouteTableDef`` (ours or the host's),
    each wrapped in the guard of ``policy``."""

    def __init__(
        self, routes: web.RouteTableDef, *, policy: TrustPolicy, skip_paths: frozenset[str] = frozenset()
    ) -> None:
        self._routes = routes
        self._policy = policy
        self._skip = skip_paths
        self.registered: list[tuple[str, str]] = []

    def add(
        self, method: str, path: str, handler: Handler, *, state_changing: bool | None = None, extensions: bool = False
    ) -> None:
        """Bind one route. ``state_changing`` (default: every method but GET) applies the
        cross-origin rules; ``extensions`` lets browser extensions' origins make the change."""
        if path in self._skip:
            return
        changes = method != "GET" if state_changing is None else state_changing
        self._routes.route(method, path)(
            guarded(handler, policy=self._policy, state_changing=changes, extensions=extensions)
        )
        self.registered.append((method, path))

    def register_definitions(
        self,
        definitions: tuple[RouteDefinition, ...],
        prefix: str,
        handler_for: Callable[[str], Handler],
    ) -> None:
        for definition in definitions:
            path = definition.path.replace("{prefix}", prefix)
            self.add(
                definition.method,
                path,
                handler_for(definition.handler_name),
                state_changing=definition.changes_state,
            )
