"""The CivitAI side of metadata sync: identify a model by hash, merge CivitAI's answer into its
sidecar, fetch a preview, and answer "which versions of this model do I have".

Owns the read-merge-write of sidecars for CivitAI data (under the model lock, written
atomically, then ``refresh_paths``); the merge rules live in ``civitai_metadata_merge`` and
HTTP in ``CivitaiClient``. It must not parse requests nor edit user fields (local edits are
``MetadataEditService``'s job).
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yarl import URL

from ...errors import ConflictError, ModelNotFound, UpstreamNotFound, ValidationError
from ..library.hash_waiters import HashWaiters
from ..library.model_hasher import HashQueue, hash_key
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry, ModelType
from ..library.safetensors_header import HeaderError, guess_base_model, read_safetensors_header
from ..library.type_library import TypeLibrary
from ..shared.model_locks import ModelLocks
from ..shared.remote_image_fetcher import RemoteImageFetcher
from ..shared.settings_manager import SettingsManager
from ..shared.sidecar_store import PREVIEW_SUFFIXES, SidecarStore, check_rewritable
from .civitai_client import CivitaiClient
from .civitai_metadata_merge import (
    choose_preview_image,
    civitai_model_type_matches,
    image_nsfw_level,
    merge_civitai_into_sidecar,
    nsfw_threshold_from_settings,
)
from .civitai_preview_fetcher import CivitaiPreviewFetcher, PreviewMedia, PreviewUnavailable, store_preview

_log = logging.getLogger(__name__)

HASH_WAIT_TIMEOUT = 30 * 60.0  # a 20 GB checkpoint on a slow disk


def has_civitai_data(entry: ModelEntry) -> bool:
    return bool(entry.civitai.get("id"))


def version_sha256s(version: Mapping[str, Any]) -> list[str]:
    """Lowercase SHA256 of every file of a version."""
    out: list[str] = []
    for file in version.get("files") or ():
        hashes = file.get("hashes") if isinstance(file, dict) else None
        sha = str((hashes or {}).get("SHA256") or "").lower()
        if sha:
            out.append(sha)
    return out


@dataclass(slots=True, frozen=True, kw_only=True)
class PreviewInfo:
    """A preview just stored beside a model: its path and the NSFW level of its source image."""

    path: str
    nsfw_level: int


@dataclass(slots=True, frozen=True, kw_only=True)
class LocalFile:
    """One file of a CivitAI version and where it is in the library, if anywhere."""

    id: Any
    name: str
    sha256: str
    local_paths: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "sha256": self.sha256,
            "existsLocally": bool(self.local_paths),
            "localPath": self.local_paths[0] if self.local_paths else None,
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class LocalVersion:
    """A CivitAI version with its local presence (by file hash or by the sidecars' version id)."""

    version: dict[str, Any]
    files: tuple[LocalFile, ...]
    linked_paths: tuple[str, ...] = ()  # models whose sidecar names this version id

    @property
    def local_path(self) -> str | None:
        for file in self.files:
            if file.local_paths:
                return file.local_paths[0]
        return self.linked_paths[0] if self.linked_paths else None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.version)
        data["files"] = [
            {**(original if isinstance(original, dict) else {}), **local.to_json()}
            for original, local in zip(self.version.get("files") or [], self.files)
        ]
        data["existsLocally"] = self.local_path is not None
        data["localPath"] = self.local_path
        return data


@dataclass(slots=True, frozen=True, kw_only=True)
class CivitaiModelVersions:
    model_id: int
    name: str
    type: str
    versions: tuple[LocalVersion, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "name": self.name,
            "type": self.type,
            "versions": [v.to_json() for v in self.versions],
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class LocalModelMatch:
    model_type: ModelType
    file_path: str
    version_id: Any
    model_id: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type.value,
            "file_path": self.file_path,
            "modelVersionId": self.version_id,
            "modelId": self.model_id,
        }


class CivitaiSyncService:
    """Refreshes models from CivitAI and answers local-availability questions.

    Raises ``ModelNotFound`` (the file left the library), ``UpstreamNotFound`` (CivitAI does
    not know it; nothing is erased), ``ValidationError`` (bad ids, wrong model type), the
    client's upstream errors (401/502/503), ``ConflictError`` (the file could not be hashed).
    Writes sidecars and ``<stem>.webp``/``.mp4`` previews; ``refresh_paths`` broadcasts
    ``models_changed``.
    """

    def __init__(
        self,
        *,
        client: CivitaiClient,
        settings: SettingsManager,
        locks: ModelLocks,
        library: ModelLibrary,
        hash_waiters: HashWaiters,
        hash_queue: HashQueue,
        fetcher: RemoteImageFetcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self._settings = settings
        self._locks = locks
        self._library = library
        self._waiters = hash_waiters
        self._hash_queue = hash_queue
        self.previews = CivitaiPreviewFetcher(fetcher=fetcher, allowed_hosts=self.allowed_preview_hosts)
        self._clock = clock

    def allowed_preview_hosts(self) -> list[str]:
        """Image hosts from the settings plus the hosts of the configured API bases."""
        hosts = [str(h).lower() for h in self._settings.get("preview_url_hosts") or ()]
        for base in self.client.base_urls():
            host = URL(base).host
            if host:
                hosts.append(host.lower())
        return hosts

    def service(self, model_type: ModelType) -> TypeLibrary:
        return self._library[model_type]

    # ----------------------------------------------------------------- hashing

    async def ensure_hashed(self, entries: list[ModelEntry]) -> list[ModelEntry]:
        """The entries with their SHA256, hashing pending ones first (bumped to the queue's front).

        Entries whose hash failed keep an empty ``sha256``; entries gone from the index are dropped.
        """
        waits: list[tuple[str, asyncio.Future[bool]]] = []
        for entry in entries:
            if entry.sha256:
                continue
            key = hash_key(entry.model_type, entry.file_path)
            waits.append((key, self._waiters.register(key)))
            if not self._waiters.is_finishing(key):  # else its result is being recorded right now
                self._hash_queue.submit(key, entry.file_path, priority=0)  # ahead of the backlog
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*(f for _, f in waits)), HASH_WAIT_TIMEOUT)
            finally:
                for key, future in waits:
                    self._waiters.forget(key, future)
        fresh: list[ModelEntry] = []
        for entry in entries:
            current = self._library[entry.model_type].index.get(entry.file_path)
            if current is not None:
                fresh.append(current)
        return fresh

    async def _hashed(self, entry: ModelEntry) -> ModelEntry:
        fresh = await self.ensure_hashed([entry])
        if not fresh:
            raise ModelNotFound(f"no {entry.model_type.value} at '{entry.file_path}'")
        if not fresh[0].sha256:
            raise ConflictError(
                f"could not hash '{entry.file_name}{entry.extension}' (unreadable, or it changed while "
                "being read); try again"
            )
        return fresh[0]

    # ----------------------------------------------------------------- refresh

    async def refresh_model(self, entry: ModelEntry) -> ModelEntry:
        """Identify the model on CivitAI by SHA256 and merge the answer into its sidecar.

        Raises ``UpstreamNotFound`` when CivitAI does not know the file (sidecar untouched).
        """
        entry = await self._hashed(entry)
        version = await self.client.get_version_by_hash(entry.sha256, bypass_not_found_cache=True)
        if version is None:
            raise UpstreamNotFound(
                f"'{entry.file_name}{entry.extension}' is not on CivitAI (no published version has "
                f"SHA256 {entry.sha256[:12]}…); its metadata was kept"
            )
        model = None
        model_id = version.get("modelId")
        if isinstance(model_id, int) and model_id > 0:
            model = await self.client.get_model(model_id)
        preview = await self.fetch_preview(entry, version)
        await self.write_civitai(entry, version, model, preview=preview)
        return await self._refreshed(entry)

    async def relink(self, entry: ModelEntry, model_id: int, version_id: int | None = None) -> ModelEntry:
        """Attach the model to a version the user chose (default: the model's newest version).

        Raises ``ValidationError`` (version not of that model, other model type),
        ``UpstreamNotFound`` (no such model on CivitAI).
        """
        mid, vid = model_id, version_id
        model = await self.client.get_model(mid)
        if model is None:
            raise UpstreamNotFound(f"CivitAI has no model {mid}")
        self._check_type(model, entry.model_type, mid)
        versions = [v for v in model.get("modelVersions") or () if isinstance(v, dict)]
        if vid is None:
            if not versions:
                raise UpstreamNotFound(f"CivitAI model {mid} has no published versions")
            version = versions[0]
        else:
            version = next((v for v in versions if v.get("id") == vid), None)
            if version is None:
                raise ValidationError(f"version {vid} is not a version of CivitAI model {mid}")
        version = {**version, "modelId": mid}
        preview = await self.fetch_preview(entry, version)
        await self.write_civitai(entry, version, model, preview=preview)
        return await self._refreshed(entry)

    async def _refreshed(self, entry: ModelEntry) -> ModelEntry:
        fresh = await self._library[entry.model_type].refresh_paths([entry.file_path], reason="civitai")
        if not fresh:
            raise ModelNotFound(f"no {entry.model_type.value} at '{entry.file_path}'")
        return fresh[0]

    async def write_civitai(
        self,
        entry: ModelEntry,
        version: dict[str, Any],
        model: dict[str, Any] | None,
        *,
        preview: PreviewInfo | None = None,
    ) -> bool:
        """Merge ``version``/``model`` (and a freshly stored ``preview``) into the sidecar; no index update.

        Returns False when the model file is gone. Callers end with ``refresh_paths``.
        """
        async with self._locks.hold(entry.file_path):
            return await asyncio.to_thread(
                _merge_and_write, entry.file_path, _base_fields(entry), version, model, preview, self._clock(),
                self._library.sidecars,
            )

    async def fetch_preview(
        self, entry: ModelEntry, version: dict[str, Any], *, stop: asyncio.Event | None = None
    ) -> PreviewInfo | None:
        """Store the version's preview beside a model that has none; None when it has one, none
        fits the NSFW threshold, the download fails, or ``stop`` is set meanwhile.

        Writes ``<stem>.webp`` (or ``.mp4``) under the model lock; the sidecar is the caller's.
        """
        path = entry.file_path
        if await asyncio.to_thread(_has_preview, path):
            return None
        threshold = nsfw_threshold_from_settings(
            bool(self._settings.get("blur_mature_content")), str(self._settings.get("mature_blur_level") or "R")
        )
        image = choose_preview_image(version, max_nsfw_level=threshold)
        if image is None or (stop is not None and stop.is_set()):
            return None
        try:
            fetching = self.previews.fetch(str(image["url"]), expect_video=image.get("type") == "video")
            media = await fetching if stop is None else await _unless_stopped(fetching, stop)
            if media is None:
                return None
            async with self._locks.hold(path):
                stored = await asyncio.to_thread(_store_if_absent, path, media)
            if stored is None:
                return None
        except (PreviewUnavailable, OSError) as exc:
            _log.info("no preview for %s: %s", os.path.basename(path), exc)
            return None
        return PreviewInfo(path=stored.replace(os.sep, "/"), nsfw_level=image_nsfw_level(image))

    # ----------------------------------------------------------------- lookups

    async def version_by_id(self, version_id: int) -> dict[str, Any]:
        vid = version_id
        version = await self.client.get_version(vid)
        if version is None:
            raise UpstreamNotFound(f"CivitAI has no published model version {vid}")
        return version

    async def version_by_hash(self, value: str) -> dict[str, Any]:
        version = await self.client.get_version_by_hash(value)
        if version is None:
            raise UpstreamNotFound(f"CivitAI knows no model file with hash {value.strip().lower()[:64]}")
        return version

    async def versions_with_local_state(self, model_id: int, model_type: ModelType) -> CivitaiModelVersions:
        """The model's versions, each marked present or not from the hash index (no cache mutation).

        Raises ``ValidationError`` when the CivitAI model is of another type.
        """
        mid = model_id
        model = await self.client.get_model(mid)
        if model is None:
            raise UpstreamNotFound(f"CivitAI has no model {mid}")
        self._check_type(model, model_type, mid)
        return CivitaiModelVersions(
            model_id=mid,
            name=str(model.get("name") or ""),
            type=str(model.get("type") or ""),
            versions=tuple(self._local_version(v, mid, [model_type]) for v in model.get("modelVersions") or () if isinstance(v, dict)),
        )

    async def model_versions_status(self, model_id: int) -> CivitaiModelVersions:
        """Like ``versions_with_local_state`` over every model type (for dialogs and extensions)."""
        mid = model_id
        model = await self.client.get_model(mid)
        if model is None:
            raise UpstreamNotFound(f"CivitAI has no model {mid}")
        types = list(self._library)
        return CivitaiModelVersions(
            model_id=mid,
            name=str(model.get("name") or ""),
            type=str(model.get("type") or ""),
            versions=tuple(self._local_version(v, mid, types) for v in model.get("modelVersions") or () if isinstance(v, dict)),
        )

    def local_matches(self, model_id: int, version_id: int | None = None) -> list[LocalModelMatch]:
        """Library models whose CivitAI data names this model (and version), from the index only."""
        mid, vid = model_id, version_id
        matches: list[LocalModelMatch] = []
        for model_type, service in self._library.items():
            for entry in service.index.entries.values():
                civitai = entry.civitai
                if civitai.get("modelId") != mid:
                    continue
                if vid is not None and civitai.get("id") != vid:
                    continue
                matches.append(
                    LocalModelMatch(model_type=model_type, file_path=entry.file_path, version_id=civitai.get("id"), model_id=mid)
                )
        matches.sort(key=lambda m: m.file_path)
        return matches

    def _local_version(self, version: dict[str, Any], model_id: int, types: list[ModelType]) -> LocalVersion:
        files: list[LocalFile] = []
        for file in version.get("files") or ():
            if not isinstance(file, dict):
                continue
            hashes = file.get("hashes") if isinstance(file.get("hashes"), dict) else {}
            sha = str(hashes.get("SHA256") or "").lower()
            paths: list[str] = []
            if sha:
                for model_type in types:
                    paths.extend(sorted(self._library[model_type].index.hash_index.get(sha, ())))
            files.append(LocalFile(id=file.get("id"), name=str(file.get("name") or ""), sha256=sha, local_paths=tuple(paths)))
        vid = version.get("id")
        linked: list[str] = []
        for model_type in types:
            for entry in self._library[model_type].index.entries.values():
                if vid is not None and entry.civitai.get("id") == vid and entry.civitai.get("modelId") in (model_id, None):
                    linked.append(entry.file_path)
        return LocalVersion(version={**version, "modelId": model_id}, files=tuple(files), linked_paths=tuple(sorted(linked)))

    @staticmethod
    def _check_type(model: dict[str, Any], model_type: ModelType, model_id: int) -> None:
        civitai_type = str(model.get("type") or "")
        # a type CivitAI has no type for (CLIP vision, GLIGEN ...): the hash match decides
        if model_type.spec.civitai_types and not civitai_model_type_matches(civitai_type, model_type):
            raise ValidationError(
                f"CivitAI model {model_id} is a {civitai_type or 'model of unknown type'}, not a {model_type.value}"
            )


async def _unless_stopped(work: Any, stop: asyncio.Event) -> Any:
    """``await work``, or None as soon as ``stop`` is set (the work is cancelled)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


def _has_preview(path: str) -> bool:
    """Whether any preview name of the model exists (a few stats, not a listing of the folder)."""
    stem = os.path.splitext(path)[0]
    return any(os.path.exists(stem + suffix) for suffix in PREVIEW_SUFFIXES)


def _store_if_absent(path: str, media: PreviewMedia) -> str | None:
    """Blocking: store the preview unless the model is gone or got a preview meanwhile."""
    if not os.path.isfile(path) or _has_preview(path):
        return None
    return store_preview(path, media)


def _merge_and_write(
    path: str,
    base_fields: dict[str, Any],
    version: dict[str, Any],
    model: dict[str, Any] | None,
    preview: PreviewInfo | None,
    now: float,
    sidecars: SidecarStore,
) -> bool:
    """Blocking read-merge-write of one sidecar (the caller holds the model lock).

    Raises ``UnsafeSidecar`` for a sidecar it may not read (nothing is overwritten).
    """
    if not os.path.isfile(path):
        return False
    read = sidecars.read(path)
    check_rewritable(read, path)
    base = dict(read.data)
    for key, value in base_fields.items():
        if base.get(key) in (None, ""):
            base[key] = value
    merged = merge_civitai_into_sidecar(base, version, model, now=now, header_base_model=_header_base_model(path))
    if preview is not None:
        merged["preview_url"], merged["preview_nsfw_level"] = preview.path, preview.nsfw_level
    sidecars.write(path, merged)
    return True


def _header_base_model(path: str) -> str:
    """Blocking: the base model the file's safetensors header implies ('' = none or unreadable)."""
    if not path.lower().endswith(".safetensors"):
        return ""
    try:
        return guess_base_model(read_safetensors_header(path).metadata)
    except (HeaderError, OSError):
        return ""


def _base_fields(entry: ModelEntry) -> dict[str, Any]:
    """What a sidecar written by us always carries (filled only where the sidecar lacks it)."""
    return {
        "file_name": entry.file_name,
        "model_name": entry.model_name or entry.file_name,
        "file_path": entry.file_path,
        "size": entry.stamp.size,
        "modified": entry.stamp.mtime,
        "sha256": entry.sha256,
        "base_model": entry.base_model,
    }
