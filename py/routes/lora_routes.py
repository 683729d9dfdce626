"""LoRA routes: the common set plus letter counts, trigger words and usage tips."""
from __future__ import annotations

from ..services.library.model_records import ModelType
from .base_model_routes import BaseModelRoutes
from .model_route_registrar import ModelRouteRegistrar


class LoraRoutes(BaseModelRoutes):
    model_type = ModelType.LORA

    def setup_specific_routes(self, registrar: ModelRouteRegistrar, prefix: str) -> None:
        registrar.add("GET", f"/api/lm/{prefix}/letter-counts", self._proxy("get_letter_counts"))
        registrar.add("GET", f"/api/lm/{prefix}/get-trigger-words", self._proxy("get_trigger_words"))
        registrar.add("GET", f"/api/lm/{prefix}/usage-tips-by-path", self._proxy("get_usage_tips_by_path"))
