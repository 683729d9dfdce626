"""Binding the route table to handlers: each one wrapped in the guard, on our routes or the host's.

The routes themselves are declared in ``route_table`` (one screen shows every URL); this
module only knows how to turn a ``RouteDefinition`` into a registered, guarded handler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from .request_guards import Handler, guarded
from .trust_policy import TrustPolicy


@dataclass(frozen=True, slots=True)
class RouteDefinition:
    """One URL: method, path template (``{prefix}`` = ``loras`` ...), handler name, and how
    it is guarded (``state_changing``: the cross-origin rules; default: every method but
    GET; ``extensions``: browser extensions' origins may make the change)."""

    method: str
    path: str
    handler_name: str
    state_changing: bool | None = None
    extensions: bool = False

    @property
    def changes_state(self) -> bool:
        return self.method != "GET" if self.state_changing is None else self.state_changing

    def for_prefix(self, prefix: str) -> str:
        return self.path.replace("{prefix}", prefix)


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
        handler_for: Callable[[str], Handler],
        prefix: str = "",
    ) -> None:
        for definition in definitions:
            self.add(
                definition.method,
                definition.for_prefix(prefix),
                handler_for(definition.handler_name),
                state_changing=definition.changes_state,
                extensions=definition.extensions,
            )
