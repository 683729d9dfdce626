"""Embedding routes: the common set plus info by name."""
from __future__ import annotations

from ..services.library.model_records import ModelType
from .base_model_routes import BaseModelRoutes
from .model_route_registrar import ModelRouteRegistrar


class EmbeddingRoutes(BaseModelRoutes):
    model_type = ModelType.EMBEDDING

    def setup_specific_routes(self, registrar: ModelRouteRegistrar, prefix: str) -> None:
        registrar.add("GET", f"/api/lm/{prefix}/info/{{name:.+}}", self._proxy("get_model_info"))
