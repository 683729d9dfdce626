"""Handler objects flattened into the name → callable mapping the route table binds.

Owns the flattening rule (every public coroutine method is a route handler by its name) and
the per-type ``ModelHandlerSet``; it must not know paths (the route table does).
"""
from __future__ import annotations

from dataclasses import dataclass

from .auto_organize_handlers import ModelAutoOrganizeHandler
from .civitai_handlers import ModelCivitaiHandler
from .management_handlers import ModelManagementHandler
from .model_handlers import Handler, ModelListingHandler, ModelPageView, ModelQueryHandler
from .move_handlers import ModelMoveHandler
from .update_handlers import ModelUpdateHandler
from .workflow_handlers import ModelWorkflowHandler


def flatten_handlers(*handlers: object) -> dict[str, Handler]:
    """Every public bound method of ``handlers`` by name (a name used twice is a bug)."""
    mapping: dict[str, Handler] = {}
    for handler in handlers:
        for name in dir(handler):
            if name.startswith("_"):
                continue
            attr = getattr(handler, name)
            if callable(attr) and getattr(attr, "__self__", None) is handler:
                if name in mapping:
                    raise ValueError(f"two handlers are called {name!r}")
                mapping[name] = attr
    return mapping


@dataclass(slots=True, frozen=True, kw_only=True)
class ModelHandlerSet:
    """Every handler object of one model type, flattened into name → callable."""

    page_view: ModelPageView
    listing: ModelListingHandler
    query: ModelQueryHandler
    management: ModelManagementHandler
    civitai: ModelCivitaiHandler
    move: ModelMoveHandler
    auto_organize: ModelAutoOrganizeHandler
    workflow: ModelWorkflowHandler
    updates: ModelUpdateHandler

    def to_route_mapping(self) -> dict[str, Handler]:
        return flatten_handlers(
            self.page_view, self.listing, self.query, self.management, self.civitai, self.move, self.auto_organize,
            self.workflow, self.updates,
        )
