"""The global routes' controller: builds the handlers of routes that belong to no model type
and binds ``GLOBAL_ROUTE_DEFINITIONS`` (and, standalone, the server's own) to them.

Owns which collaborator each global handler gets; it must not do any handler's work.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .handlers.civitai_handlers import CivitaiGlobalHandlers
from .handlers.disk_handlers import DiskHandlers
from .handlers.download_handlers import ModelDownloadHandler
from .handlers.graph_handlers import GraphHandlers
from .handlers.handler_set import flatten_handlers
from .handlers.management_handlers import UndoDeleteHandler
from .handlers.missing_models_handlers import MissingModelsHandlers
from .handlers.shared_handlers import SharedHandlers
from .model_route_registrar import ModelRouteRegistrar
from .route_table import GLOBAL_ROUTE_DEFINITIONS, STANDALONE_ROUTE_DEFINITIONS

if TYPE_CHECKING:
    from ..app_services import AppServices


class StandaloneHandlers:
    """The standalone server's own page: ``/`` leads to the LoRA page."""

    async def redirect_home(self, request: web.Request) -> web.Response:
        # relative: behind a reverse proxy's sub-path ('/models/' → our '/') it stays under it
        raise web.HTTPFound("./loras")


def register_global_routes(registrar: ModelRouteRegistrar, services: "AppServices", *, standalone: bool) -> None:
    s = services
    handlers = flatten_handlers(
        SharedHandlers(
            guard=s.path_guard, settings=s.settings, library=s.library, hash_queue=s.hash_queue,
            watcher=s.watcher, hub=s.hub, downloads=s.downloads, i18n=s.i18n, version=s.version,
            static_root=s.plugin_dir / "web" / "app",
        ),
        UndoDeleteHandler(lifecycle=s.lifecycle),
        CivitaiGlobalHandlers(sync=s.civitai_sync),
        ModelDownloadHandler(use_case=s.download_use_case, downloads=s.downloads),
        GraphHandlers(library=s.library, guard=s.path_guard, hub=s.hub),
        MissingModelsHandlers(use_case=s.missing_models),
        DiskHandlers(disk=s.disk_usage),
        *([StandaloneHandlers()] if standalone else []),
    )
    registrar.register_definitions(GLOBAL_ROUTE_DEFINITIONS, handlers.__getitem__)
    if standalone:
        registrar.register_definitions(STANDALONE_ROUTE_DEFINITIONS, handlers.__getitem__)
