"""Route controller shared by every model type.

Builds the handler graph through ``_create_handler_set`` once the library of its type is
attached (at start-up); until then every route answers 503 ``Service not ready``.
Subclasses name their type and add ``setup_specific_routes``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..errors import ServiceNotReady
from ..services.library.type_library import TypeLibrary
from ..services.shared.model_types import ModelType
from .handlers.auto_organize_handlers import ModelAutoOrganizeHandler
from .handlers.civitai_handlers import ModelCivitaiHandler
from .handlers.handler_set import ModelHandlerSet
from .handlers.management_handlers import ModelManagementHandler
from .handlers.model_handlers import Handler, HandlerContext, ModelListingHandler, ModelPageView, ModelQueryHandler
from .handlers.move_handlers import ModelMoveHandler
from .handlers.update_handlers import ModelUpdateHandler
from .handlers.workflow_handlers import ModelWorkflowHandler
from .model_route_registrar import ModelRouteRegistrar
from .route_table import COMMON_ROUTE_DEFINITIONS, TYPE_SPECIFIC_ROUTE_DEFINITIONS

if TYPE_CHECKING:
    from ..app_services import AppServices


class BaseModelRoutes:
    """Binds the common routes of one model type to its (possibly not yet ready) handlers."""

    model_type: ModelType

    def __init__(self, *, services: "AppServices") -> None:
        self.services = services
        self._handlers: dict[str, Handler] = {}

    @property
    def prefix(self) -> str:
        return self.model_type.prefix

    def attach_service(self, service: TypeLibrary) -> None:
        self._handlers = self._create_handler_set(service).to_route_mapping()

    def _create_handler_set(self, service: TypeLibrary) -> ModelHandlerSet:
        s = self.services
        ctx = HandlerContext(
            model_type=self.model_type,
            service=service,
            queries=s.queries[self.model_type],
            guard=s.path_guard,
            settings=s.settings,
        )
        return ModelHandlerSet(
            page_view=ModelPageView(ctx=ctx, pages=s.pages, i18n=s.i18n, version=s.version, library=s.library),
            listing=ModelListingHandler(ctx=ctx, updates=s.update_checks),
            query=ModelQueryHandler(ctx=ctx),
            management=ModelManagementHandler(
                ctx=ctx,
                lifecycle=s.lifecycle,
                metadata=s.metadata,
                previews=s.previews,
                tags=s.tags,
                hash_verification=s.hash_verification,
            ),
            move=ModelMoveHandler(ctx=ctx, moves=s.moves),
            auto_organize=ModelAutoOrganizeHandler(ctx=ctx, use_case=s.auto_organize[self.model_type]),
            civitai=ModelCivitaiHandler(ctx=ctx, sync=s.civitai_sync, bulk=s.bulk_refresh[self.model_type]),
            workflow=ModelWorkflowHandler(ctx=ctx, names=s.names, usage=s.usage),
            updates=ModelUpdateHandler(
                ctx=ctx, service=s.update_checks, check=s.check_updates, download=s.download_update
            ),
        )

    def _proxy(self, name: str) -> Handler:
        async def proxy(request: web.Request) -> web.StreamResponse:
            handler = self._handlers.get(name)
            if handler is None:
                raise ServiceNotReady("Service not ready")
            return await handler(request)

        proxy.__name__ = name
        return proxy

    def register(self, registrar: ModelRouteRegistrar) -> None:
        registrar.register_definitions(COMMON_ROUTE_DEFINITIONS, self._proxy, self.prefix)
        self.setup_specific_routes(registrar, self.prefix)

    def setup_specific_routes(self, registrar: ModelRouteRegistrar, prefix: str) -> None:
        """Routes only this model type has (``TYPE_SPECIFIC_ROUTE_DEFINITIONS``)."""
        registrar.register_definitions(TYPE_SPECIFIC_ROUTE_DEFINITIONS[self.model_type], self._proxy, prefix)
