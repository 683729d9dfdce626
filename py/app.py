"""Route assembly for both hosts, and the standalone aiohttp application.

``register_routes`` puts every route on a ``RouteTableDef`` (ours, or ComfyUI's
``PromptServer.instance.routes``); ``build_app`` is the standalone composition root.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .app_keys import SERVICES
from .app_services import AppServices, LibraryConfig, build_services, start_services, stop_services
from .routes.checkpoint_routes import CheckpointRoutes
from .routes.embedding_routes import EmbeddingRoutes
from .routes.handlers.civitai_handlers import register_civitai_routes
from .routes.handlers.download_handlers import register_download_routes
from .routes.lora_routes import LoraRoutes
from .routes.model_route_registrar import ModelRouteRegistrar
from .routes.request_guards import trust_middleware
from .routes.shared_routes import register_shared_routes

ROUTE_CONTROLLERS = (LoraRoutes, CheckpointRoutes, EmbeddingRoutes)


def register_routes(
    routes: web.RouteTableDef, services: AppServices, *, skip_paths: frozenset[str] = frozenset()
) -> ModelRouteRegistrar:
    """Bind every route of the library to ``routes``; services attach at start-up.

    ``skip_paths`` are paths the host already serves (never shadow a host route).
    """
    registrar = ModelRouteRegistrar(routes, policy=services.trust, skip_paths=skip_paths)
    register_shared_routes(registrar, services)
    register_civitai_routes(registrar, services)
    register_download_routes(registrar, services)
    for controller_cls in ROUTE_CONTROLLERS:
        controller = controller_cls(services=services)
        controller.register(registrar)
        services.route_controllers.append(controller)
    return registrar


def library_lifetime(services: AppServices):
    """A cleanup context: start every service, yield, stop them (sockets closed GOING_AWAY)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await start_services(services)
        yield
        await stop_services(services)

    return lifetime


def close_sockets(services: AppServices):
    """An on_shutdown hook: open WebSockets would otherwise hold the shutdown for a minute."""

    async def on_shutdown(app: web.Application) -> None:
        await services.ws.close_all()

    return on_shutdown


async def _redirect_home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loras")


def build_app(config: LibraryConfig) -> web.Application:
    """The standalone application: our routes, ``/`` → ``/loras``, and the lifetimes."""
    services = build_services(config)
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[trust_middleware(services.trust)])
    app[SERVICES] = services
    routes = web.RouteTableDef()
    registrar = register_routes(routes, services)
    registrar.add("GET", "/", _redirect_home)
    app.add_routes(routes)
    app.cleanup_ctx.append(library_lifetime(services))
    app.on_shutdown.append(close_sockets(services))
    return app
