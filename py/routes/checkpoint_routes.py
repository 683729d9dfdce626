"""Checkpoint routes: the common set plus info by name and the two root kinds.

The type-specific URLs are in ``route_table.TYPE_SPECIFIC_ROUTE_DEFINITIONS``; the base
class's ``setup_specific_routes`` binds them.
"""
from __future__ import annotations

from ..services.shared.model_types import ModelType
from .base_model_routes import BaseModelRoutes


class CheckpointRoutes(BaseModelRoutes):
    model_type = ModelType.CHECKPOINT
