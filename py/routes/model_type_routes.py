"""One controller for every model type without routes of its own (VAEs, ControlNets,
upscalers, text encoders, ... and ``other``): the common route set, registered once with
the prefix as a path variable limited to those types' prefixes, dispatched per type.

Each type gets the handler graph the main three get (``BaseModelRoutes``), so listing,
search, previews, edits, moves, renames, the recoverable delete and CivitAI work the same,
under the same path guard and trust policy. Registering once keeps the host's router at
one resource per URL shape, whatever the number of types.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from aiohttp import web

from ..errors import NotFoundError
from ..services.library.type_library import TypeLibrary
from ..services.shared.model_types import EXTRA_TYPES, ModelType
from .base_model_routes import BaseModelRoutes
from .handlers.model_handlers import Handler
from .model_route_registrar import ModelRouteRegistrar
from .route_table import COMMON_ROUTE_DEFINITIONS

if TYPE_CHECKING:
    from ..app_services import AppServices

# the aiohttp path pattern standing for every generic type's prefix
GENERIC_PREFIX = "{prefix:" + "|".join(t.prefix for t in EXTRA_TYPES) + "}"


class TypeRoutes(BaseModelRoutes):
    """The handlers of one generic type (registered through ``GenericModelRoutes``)."""

    def __init__(self, *, services: "AppServices", model_type: ModelType) -> None:
        self.model_type = model_type
        super().__init__(services=services)


class GenericModelRoutes:
    """The common routes of every type in ``EXTRA_TYPES``, under ``/api/lm/{prefix}/...``."""

    def __init__(self, *, services: "AppServices") -> None:
        self.services = services
        self.types: dict[str, TypeRoutes] = {
            t.prefix: TypeRoutes(services=services, model_type=t) for t in EXTRA_TYPES
        }

    def attach_library(self, library: Mapping[ModelType, TypeLibrary]) -> None:
        for controller in self.types.values():
            controller.attach_service(library[controller.model_type])

    def _dispatch(self, name: str) -> Handler:
        proxies = {prefix: controller._proxy(name) for prefix, controller in self.types.items()}

        async def dispatch(request: web.Request) -> web.StreamResponse:
            proxy = proxies.get(request.match_info.get("prefix", ""))
            if proxy is None:  # the pattern admits only known prefixes; kept for safety
                raise NotFoundError("Unknown model type")
            return await proxy(request)

        dispatch.__name__ = name
        return dispatch

    def register(self, registrar: ModelRouteRegistrar) -> None:
        registrar.register_definitions(COMMON_ROUTE_DEFINITIONS, self._dispatch, GENERIC_PREFIX)
