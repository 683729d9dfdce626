"""Finding models by the names workflows use: ComfyUI's relative path (``style/foo.safetensors``),
the path without its extension, or a bare file stem (``<lora:foo>``, ``embedding:foo``).

Owns the name tables of one type's index, built once per index version and shared by every
look-up until the index changes; it must not scan the disk (the index is the truth here).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..shared.model_types import ModelType
from .model_index import ModelIndex
from .model_records import ModelEntry

if TYPE_CHECKING:
    from .type_library import TypeLibrary

__all__ = ["LibraryNames", "ModelNames"]


@dataclass(slots=True, frozen=True)
class _Tables:
    version: int
    by_relative: dict[str, str]  # casefolded relative path (with extension) -> file path
    by_relative_stem: dict[str, list[str]]  # ... without extension -> file paths
    by_stem: dict[str, list[str]]  # casefolded file stem -> file paths


def _fold(name: str) -> str:
    return name.replace("\\", "/").strip("/").casefold()


class ModelNames:
    """Look-ups by workflow name over one ``ModelIndex`` (whichever the type holds now)."""

    def __init__(self) -> None:
        self._tables: _Tables | None = None
        self._index_id = 0

    def _of(self, index: ModelIndex) -> _Tables:
        tables = self._tables
        if tables is None or self._index_id != id(index) or tables.version != index.version:
            by_relative: dict[str, str] = {}
            by_relative_stem: dict[str, list[str]] = {}
            by_stem: dict[str, list[str]] = {}
            for path, entry in list(index.entries.items()):
                relative = _fold(entry.relative_path)
                by_relative.setdefault(relative, path)
                by_relative_stem.setdefault(relative.rsplit(".", 1)[0], []).append(path)
                by_stem.setdefault(entry.file_name.casefold(), []).append(path)
            tables = _Tables(index.version, by_relative, by_relative_stem, by_stem)
            self._tables, self._index_id = tables, id(index)
        return tables

    def find(self, index: ModelIndex, name: str) -> list[ModelEntry]:
        """Entries a workflow name stands for: the exact relative path first, then the same
        path without its extension, then every file with that stem (ambiguous: all of them)."""
        tables = self._of(index)
        key = _fold(name)
        if key in tables.by_relative:
            paths = [tables.by_relative[key]]
        elif key in tables.by_relative_stem:
            paths = tables.by_relative_stem[key]
        else:
            stem = key.rsplit("/", 1)[-1]
            paths = tables.by_stem.get(stem) or tables.by_stem.get(stem.rsplit(".", 1)[0], [])
        return [index.entries[p] for p in paths if p in index.entries]


class LibraryNames:
    """``ModelNames`` for every type of a library: the one place workflow names are looked up
    (nodes, the prompt hook, the workflow routes)."""

    def __init__(self, library: Mapping[ModelType, "TypeLibrary"]) -> None:
        self._library = library
        self._names = {model_type: ModelNames() for model_type in library}

    def find(self, model_type: ModelType, name: str) -> list[ModelEntry]:
        return self._names[model_type].find(self._library[model_type].index, name)

    def first(self, model_type: ModelType, name: str) -> ModelEntry | None:
        found = self.find(model_type, name)
        return found[0] if found else None
