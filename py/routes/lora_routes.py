"""LoRA routes: the common set plus letter counts, trigger words and usage tips.

The type-specific URLs are in ``route_table.TYPE_SPECIFIC_ROUTE_DEFINITIONS``; the base
class's ``setup_specific_routes`` binds them.
"""
from __future__ import annotations

from ..services.shared.model_types import ModelType
from .base_model_routes import BaseModelRoutes


class LoraRoutes(BaseModelRoutes):
    model_type = ModelType.LORA
