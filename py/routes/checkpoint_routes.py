"""Checkpoint routes: the common set plus info by name and the two root kinds."""
from __future__ import annotations

from ..services.library.model_records import ModelType
from .base_model_routes import BaseModelRoutes
from .model_route_registrar import ModelRouteRegistrar


class CheckpointRoutes(BaseModelRoutes):
    model_type = ModelType.CHECKPOINT

    def setup_specific_routes(self, registrar: ModelRouteRegistrar, prefix: str) -> None:
        registrar.add("GET", f"/api/lm/{prefix}/info/{{name:.+}}", self._proxy("get_model_info"))
        registrar.add("GET", f"/api/lm/{prefix}/checkpoints_roots", self._proxy("get_checkpoint_roots"))
        registrar.add("GET", f"/api/lm/{prefix}/unet_roots", self._proxy("get_unet_roots"))
