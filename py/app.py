"""Route assembly for both hosts, and the standalone aiohttp application.

``register_routes`` binds the whole route table to a ``RouteTableDef`` (ours, or ComfyUI's
``PromptServer.instance.routes``) and ``mount`` hangs the services' lifetimes on an
application; ``build_app`` is the standalone application.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .app_keys import SERVICES
from .app_services import AppServices, LibraryConfig, build_services
from .routes.base_model_routes import BaseModelRoutes
from .routes.checkpoint_routes import CheckpointRoutes
from .routes.embedding_routes import EmbeddingRoutes
from .routes.global_routes import register_global_routes
from .routes.lora_routes import LoraRoutes
from .routes.model_route_registrar import ModelRouteRegistrar
from .routes.model_type_routes import GenericModelRoutes
from .routes.request_guards import trust_middleware
from .routes.trust_policy import TrustPolicy

ROUTE_CONTROLLERS = (LoraRoutes, CheckpointRoutes, EmbeddingRoutes)


def trust_policy(services: AppServices) -> TrustPolicy:
    """Who may talk to the library: what the host allows, the settings file and the environment."""
    config, settings = services.config, services.settings
    return TrustPolicy.from_sources(
        configured_hosts=[*config.allowed_hosts, *settings.get("allowed_hosts")],
        configured_origins=[*config.allowed_origins, *settings.get("allowed_origins")],
    )


def register_routes(
    routes: web.RouteTableDef,
    services: AppServices,
    *,
    skip_paths: frozenset[str] = frozenset(),
    standalone: bool = False,
    policy: TrustPolicy | None = None,
) -> tuple[ModelRouteRegistrar, list[BaseModelRoutes]]:
    """Bind every route of the library to ``routes``; the per-type handlers attach at start-up.

    ``skip_paths`` are paths the host already serves (never shadow a host route); ``policy``
    defaults to ``trust_policy(services)``.
    """
    registrar = ModelRouteRegistrar(routes, policy=policy or trust_policy(services), skip_paths=skip_paths)
    register_global_routes(registrar, services, standalone=standalone)
    controllers = [controller_cls(services=services) for controller_cls in ROUTE_CONTROLLERS]
    for controller in controllers:
        controller.register(registrar)
    # VAEs, ControlNets, upscalers ...: one controller, the common routes once (issue 14)
    generic = GenericModelRoutes(services=services)
    generic.register(registrar)
    return registrar, [*controllers, *generic.types.values()]


def mount(app: web.Application, services: AppServices, controllers: list[BaseModelRoutes]) -> None:
    """Hang the services' lifetimes on ``app`` (ours, or ComfyUI's): the per-type routes go
    live at start-up, and open sockets close first at shutdown (else they would hold it for
    a minute)."""

    async def attach_routes(_app: web.Application) -> AsyncIterator[None]:
        for controller in controllers:
            controller.attach_service(services.library[controller.model_type])
        yield

    async def close_sockets(_app: web.Application) -> None:
        await services.hub.close_all()

    app.cleanup_ctx.extend([attach_routes, *services.lifetimes()])
    app.on_shutdown.append(close_sockets)


def build_app(config: LibraryConfig) -> web.Application:
    """The standalone application: our routes, ``/`` → ``/loras``, and the lifetimes."""
    services = build_services(config)
    policy = trust_policy(services)
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[trust_middleware(policy)])
    app[SERVICES] = services
    routes = web.RouteTableDef()
    _, controllers = register_routes(routes, services, standalone=True, policy=policy)
    app.add_routes(routes)
    mount(app, services, controllers)
    return app
