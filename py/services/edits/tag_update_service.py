"""Adding and removing a model's tags (normalised: trimmed, case-folded, unique).

Owns the tag-list arithmetic; the sidecar write, its lock and the index refresh are the
metadata sync service's. It must not touch other sidecar fields.
"""
from __future__ import annotations

from typing import Any

from ..library.model_records import ModelEntry, ModelType
from .metadata_edit_service import MetadataEditService
from .mutation_records import normalize_tags


def _stored_tags(data: dict[str, Any]) -> list[Any]:
    value = data.get("tags")
    if isinstance(value, str):  # some tools store "a, b"
        return [v for v in value.split(",")]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class TagUpdateService:
    """Tag edits of one model at a time; each is a read-modify-write under the model's lock."""

    def __init__(self, *, metadata: MetadataEditService) -> None:
        self._metadata = metadata

    async def add_tags(self, model_type: ModelType, path: str, tags: tuple[str, ...]) -> ModelEntry:
        """Add ``tags`` (already normalised) after the model's own; returns the entry.

        Raises ``ModelNotFound``, ``ValidationError`` (more than the tag limit); writes the
        sidecar and records ``tags`` as user-edited.
        """

        def edit(data: dict[str, Any]) -> dict[str, Any]:
            data["tags"] = list(normalize_tags(_stored_tags(data) + list(tags)))
            return data

        return await self._metadata.update_sidecar(model_type, path, edit, edited=["tags"], reason="tags")

    async def remove_tags(self, model_type: ModelType, path: str, tags: tuple[str, ...]) -> ModelEntry:
        """Remove ``tags`` (compared case-folded); returns the entry. Raises ``ModelNotFound``."""
        unwanted = set(tags)

        def edit(data: dict[str, Any]) -> dict[str, Any]:
            kept = normalize_tags(_stored_tags(data))
            data["tags"] = [t for t in kept if t not in unwanted]
            return data

        return await self._metadata.update_sidecar(model_type, path, edit, edited=["tags"], reason="tags")
