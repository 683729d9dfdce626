"""The kinds of model the library manages, and the URL prefix of each.

Owns the vocabulary only; what a model of a kind is on disk is the library's business.
"""
from __future__ import annotations

from enum import Enum


class ModelType(str, Enum):
    LORA = "lora"
    CHECKPOINT = "checkpoint"
    EMBEDDING = "embedding"

    @property
    def prefix(self) -> str:
        """The URL prefix of this type (`/loras`, `/api/lm/loras/...`)."""
        return self.value + "s"
