"""Typed records for models in the library: the in-memory entry and its JSON form.

Owns the shape of one indexed model and its conversion to the listing item; it must
not touch the disk (the scanner builds entries, the sidecar store reads and writes files).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from ..shared.model_types import ModelType

__all__ = ["FileStamp", "HashStatus", "MetadataStatus", "ModelEntry", "ModelType", "civitai_summary"]


class HashStatus(str, Enum):
    PENDING = "pending"
    HASHING = "hashing"
    DONE = "done"
    FAILED = "failed"


class MetadataStatus(str, Enum):
    """How the sidecar (or header) of a model was read; anything but OK is a flag."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT_SIDECAR = "corrupt_sidecar"
    CORRUPT_HEADER = "corrupt_header"
    UNREADABLE = "unreadable"


@dataclass(slots=True, frozen=True, kw_only=True)
class FileStamp:
    """What a stat-only walk compares: a file is unchanged while all three agree."""

    size: int
    mtime_ns: int
    inode: int

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


@dataclass(slots=True, frozen=True, kw_only=True)
class ModelEntry:
    """One model file as the library knows it (the fields a listing or filter needs)."""

    model_type: ModelType
    file_path: str  # absolute, forward slashes
    root: str  # the library root it lies in (absolute, forward slashes)
    folder: str  # relative folder inside the root ('' at top level)
    file_name: str  # stem, without extension
    extension: str  # '.safetensors'
    stamp: FileStamp
    sub_type: str = ""  # 'checkpoint' / 'diffusion_model' for checkpoints; '' otherwise
    model_name: str = ""
    sha256: str = ""
    autov2: str = ""
    autov3: str = ""
    hash_status: HashStatus = HashStatus.PENDING
    base_model: str = ""
    preview_path: str = ""  # absolute path of the preview file, '' when none
    preview_nsfw_level: int = 0
    tags: tuple[str, ...] = ()
    trigger_words: tuple[str, ...] = ()
    favorite: bool = False
    notes: str = ""
    exclude: bool = False
    from_civitai: bool = False
    civitai: dict[str, Any] = field(default_factory=dict)
    creator: str = ""
    usage_tips: str = ""
    metadata_status: MetadataStatus = MetadataStatus.MISSING
    sidecar_mtime_ns: int = 0  # 0 = no sidecar file
    # The full sidecar stays on disk: 10,000 parsed CivitAI documents would not fit the
    # memory budget. ``civitai`` holds only ``civitai_summary`` of it.

    @property
    def display_name(self) -> str:
        return self.model_name or self.file_name

    @property
    def relative_path(self) -> str:
        """Path relative to the root, with extension (what ComfyUI's loaders take)."""
        name = self.file_name + self.extension
        return f"{self.folder}/{name}" if self.folder else name

    @property
    def modified(self) -> float:
        return self.stamp.mtime

    def evolve(self, **changes: Any) -> "ModelEntry":
        return replace(self, **changes)


def civitai_summary(civitai: dict[str, Any]) -> dict[str, Any]:
    """The small CivitAI part of a listing item (full data stays in the sidecar)."""
    if not civitai:
        return {}
    model = civitai.get("model") if isinstance(civitai.get("model"), dict) else {}
    return {
        "id": civitai.get("id"),
        "modelId": civitai.get("modelId"),
        "name": civitai.get("name"),
        "trainedWords": list(civitai.get("trainedWords") or []),
        "model_name": model.get("name"),
        "type": model.get("type"),
    }
