"""The records of update checks: a CivitAI version as the check keeps it, a model's newer
versions for one local group, and the per-type view listings read.

Owns the wire forms (``to_json``) and the one reader of CivitAI's version objects
(``RemoteVersion.from_civitai``); it must not fetch, store or compare anything.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .civitai_metadata_merge import normalize_base_model

__all__ = ["ModelUpdate", "RemoteModel", "RemoteVersion", "UpdateView"]


@dataclass(slots=True, frozen=True, kw_only=True)
class RemoteVersion:
    """One published version of a CivitAI model, as an update check last saw it."""

    version_id: int
    model_id: int
    name: str = ""
    base_model: str = ""
    published_at: str = ""  # ISO 8601 from CivitAI ('' = unknown)
    size_kb: float = 0.0  # the primary file's size
    file_name: str = ""
    early_access: bool = False

    @classmethod
    def from_civitai(cls, model_id: int, data: Mapping[str, Any]) -> "RemoteVersion | None":
        """From a version object inside ``modelVersions``; None when it has no usable id."""
        vid = data.get("id")
        if isinstance(vid, bool) or not isinstance(vid, int) or vid <= 0:
            return None
        files = [f for f in data.get("files") or () if isinstance(f, dict)]
        primary = next((f for f in files if f.get("primary")), files[0] if files else {})
        size = primary.get("sizeKB")
        published = data.get("publishedAt") or data.get("createdAt") or ""
        return cls(
            version_id=vid,
            model_id=model_id,
            name=str(data.get("name") or ""),
            base_model=normalize_base_model(data.get("baseModel")),
            published_at=published if isinstance(published, str) else "",
            size_kb=float(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else 0.0,
            file_name=str(primary.get("name") or ""),
            early_access=str(data.get("availability") or "") == "EarlyAccess" or bool(data.get("earlyAccessEndsAt")),
        )

    def is_newer_than(self, other: "RemoteVersion") -> bool:
        """Published later (the id breaks ties and stands in for a missing date)."""
        if self.published_at and other.published_at and self.published_at != other.published_at:
            return self.published_at > other.published_at
        return self.version_id > other.version_id

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.version_id, "name": self.name, "base_model": self.base_model,
            "published_at": self.published_at, "size_kb": self.size_kb, "file_name": self.file_name,
            "early_access": self.early_access,
        }

    @classmethod
    def from_row(cls, model_id: int, row: Mapping[str, Any]) -> "RemoteVersion":
        return cls(
            version_id=int(row["id"]), model_id=model_id, name=str(row.get("name") or ""),
            base_model=str(row.get("base_model") or ""), published_at=str(row.get("published_at") or ""),
            size_kb=float(row.get("size_kb") or 0.0), file_name=str(row.get("file_name") or ""),
            early_access=bool(row.get("early_access")),
        )

    def to_json(self, *, ignored: bool = False) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "model_id": self.model_id,
            "name": self.name,
            "base_model": self.base_model,
            "published_at": self.published_at,
            "size": int(self.size_kb * 1024),
            "file_name": self.file_name,
            "early_access": self.early_access,
            "ignored": ignored,
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class RemoteModel:
    """A CivitAI model's versions (newest first, as CivitAI lists them) at ``checked_at``."""

    model_id: int
    name: str = ""
    type: str = ""
    versions: tuple[RemoteVersion, ...] = ()
    checked_at: float = 0.0

    @classmethod
    def from_civitai(cls, data: Mapping[str, Any], *, checked_at: float) -> "RemoteModel | None":
        mid = data.get("id")
        if isinstance(mid, bool) or not isinstance(mid, int) or mid <= 0:
            return None
        versions = []
        for raw in data.get("modelVersions") or ():
            if isinstance(raw, dict) and str(raw.get("status") or "Published") == "Published":
                version = RemoteVersion.from_civitai(mid, raw)
                if version is not None:
                    versions.append(version)
        return cls(model_id=mid, name=str(data.get("name") or ""), type=str(data.get("type") or ""),
                   versions=tuple(versions), checked_at=checked_at)

    def versions_json(self) -> str:
        return json.dumps([v.to_row() for v in self.versions], separators=(",", ":"))

    def version(self, version_id: int) -> RemoteVersion | None:
        return next((v for v in self.versions if v.version_id == version_id), None)


@dataclass(slots=True, frozen=True, kw_only=True)
class ModelUpdate:
    """The newer versions of one CivitAI model for one group of local files.

    With "same base model" on, a model's local files are grouped by base model and each
    group has its own newer versions; off, all its files form one group (``base_model`` '').
    """

    model_id: int
    model_name: str
    model_type: str
    base_model: str
    local_paths: tuple[str, ...]
    newest_local_version_id: int
    versions: tuple[RemoteVersion, ...]  # newer than every local one of the group, newest first
    ignored_versions: frozenset[int] = frozenset()
    model_ignored: bool = False

    @property
    def pending(self) -> tuple[RemoteVersion, ...]:
        """The versions the user did not ignore (none when the whole model is ignored)."""
        if self.model_ignored:
            return ()
        return tuple(v for v in self.versions if v.version_id not in self.ignored_versions)

    @property
    def has_update(self) -> bool:
        return bool(self.pending)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "model_type": self.model_type,
            "base_model": self.base_model,
            "local_paths": list(self.local_paths),
            "newest_local_version_id": self.newest_local_version_id,
            "has_update": self.has_update,
            "ignored": self.model_ignored,
            "versions": [v.to_json(ignored=v.version_id in self.ignored_versions) for v in self.versions],
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class UpdateView:
    """What listings of one type read: the paths with a pending update, and each path's group.

    ``stamp`` says which library, store and setting state it was computed from; ``version``
    is unique per computed view, so listing memos keyed on it never serve an older one.
    """

    stamp: tuple[Any, ...]
    version: int
    paths: frozenset[str] = frozenset()
    by_path: Mapping[str, ModelUpdate] = field(default_factory=dict)
    updates: tuple[ModelUpdate, ...] = ()
