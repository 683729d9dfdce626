"""Whether the library has the models a workflow references, and where: present at the path the
workflow names, present under another path (the same file name elsewhere, or the same SHA256 /
AutoV2 when the workflow or its image carries hashes), or missing; for missing ones, CivitAI
candidates (by hash first, then by name) with what a download needs to land in the right folder.

Reads the index (through ``LibraryNames`` and the hash index) and asks CivitAI; it must not
write files or start downloads (the client does that through the download route).
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from ...errors import LibraryError
from ..civitai.civitai_client import CivitaiClient
from ..civitai.civitai_metadata_merge import civitai_model_type_matches, normalize_base_model
from ..library.model_library import ModelLibrary
from ..library.model_names import LibraryNames
from ..library.model_records import ModelEntry
from ..shared.model_types import ModelType
from .workflow_references import ReferenceKind, ReferenceSource, WorkflowReference, stem_of

_log = logging.getLogger(__name__)

__all__ = ["Candidate", "LocalMatch", "ModelResolver", "ReferenceStatus", "Resolution"]

MAX_NAME_SEARCHES = 20  # CivitAI name searches per request (each is one call through the limiter)
MAX_HASH_LOOKUPS = 40  # single by-hash calls for AutoV2 hashes (full SHA256s go in batches of 100)
CANDIDATES_PER_REFERENCE = 3
_SEARCH_TYPES = {ModelType.LORA: ("LORA", "LoCon", "DoRA"), ModelType.CHECKPOINT: ("Checkpoint",),
                 ModelType.EMBEDDING: ("TextualInversion",)}
_KIND_TYPES = {ReferenceKind.LORA: ModelType.LORA, ReferenceKind.CHECKPOINT: ModelType.CHECKPOINT,
               ReferenceKind.EMBEDDING: ModelType.EMBEDDING}
# the other loaders (VAE, ControlNet, ...) by ComfyUI folder name: managed once the type has a folder
_FOLDER_TYPES = {key: t for t in ModelType if not t.is_core for key in t.spec.folder_keys}
_SEARCH_TYPES.update({ModelType.VAE: ("VAE",), ModelType.CONTROLNET: ("Controlnet",),
                      ModelType.UPSCALER: ("Upscaler",), ModelType.HYPERNETWORK: ("Hypernetwork",)})
_HF_HOSTS = ("huggingface.co", "hf.co")


class ReferenceStatus(str, Enum):
    PRESENT = "present"  # found at the name the workflow uses
    MOVED = "moved"  # not there, but the same file is elsewhere (by name or by hash)
    MISSING = "missing"
    NOT_MANAGED = "not_managed"  # a loader kind the library does not manage (VAE, ControlNet, ...)


@dataclass(slots=True, frozen=True, kw_only=True)
class LocalMatch:
    """A library file that is (or may be) the referenced model."""

    file_path: str
    name: str  # how the workflow should name it: ComfyUI's relative path
    match: str  # "path" | "hash" | "file_name"
    model_name: str = ""
    sub_type: str = ""
    loadable: bool = True  # False: the loader that names it cannot load from that folder kind


@dataclass(slots=True, frozen=True, kw_only=True)
class Candidate:
    """A file that could be downloaded for a missing reference."""

    source: str  # "civitai" | "huggingface"
    match: str  # "hash" | "file_name" | "name" | "workflow_link"
    model_type: ModelType
    file_name: str
    model_name: str = ""
    version_name: str = ""
    base_model: str = ""
    size: int = 0
    sha256: str = ""
    model_id: int | None = None
    version_id: int | None = None
    url: str = ""  # the HuggingFace file URL, or the CivitAI model page
    download: dict[str, Any] = field(default_factory=dict)  # the body for POST /api/lm/download-model


@dataclass(slots=True, frozen=True, kw_only=True)
class Resolution:
    reference: WorkflowReference
    status: ReferenceStatus
    model_type: ModelType | None = None
    file_path: str = ""  # PRESENT: the file
    matches: tuple[LocalMatch, ...] = ()  # MOVED: where it is now, best first
    candidates: tuple[Candidate, ...] = ()  # MISSING: what could be downloaded
    download_folder: str = ""  # MISSING: the folder below the root the workflow's name implies

    def with_candidates(self, candidates: Iterable[Candidate]) -> "Resolution":
        return replace(self, candidates=tuple(candidates))


def _fold(name: str) -> str:
    return name.replace("\\", "/").strip().strip("/").casefold()


def _without_extension(name: str) -> str:
    folder, _, base = name.rpartition("/")
    stem = stem_of(base)
    return f"{folder}/{stem}" if folder else stem


def _fits(ref: WorkflowReference, entry: ModelEntry) -> bool:
    """Whether the reference's loader can load ``entry`` (UNETLoader: diffusion models only)."""
    if ref.kind is not ReferenceKind.CHECKPOINT:
        return True
    wants_diffusion = ref.sub_type == "diffusion_model"
    return (entry.sub_type == "diffusion_model") == wants_diffusion


def _download_folder(name: str) -> str:
    """The folder part of the workflow's name, if it is a safe one ('' otherwise)."""
    folder = name.replace("\\", "/").rpartition("/")[0].strip("/")
    parts = folder.split("/") if folder else []
    if any(not p or p in (".", "..") or p.startswith(".") or ":" in p for p in parts):
        return ""
    return folder


class ModelResolver:
    """``resolve(refs)`` → one ``Resolution`` per reference, local look-ups only (instant);
    ``add_candidates(resolutions)`` asks CivitAI for the missing ones.

    ``add_candidates`` never raises for CivitAI trouble: it returns the error text beside the
    resolutions (the local answer is still worth showing).
    """

    def __init__(self, *, library: ModelLibrary, names: LibraryNames, civitai: CivitaiClient) -> None:
        self._library = library
        self._names = names
        self._civitai = civitai

    # ---------------------------------------------------------------- local
    def resolve(self, refs: Sequence[WorkflowReference]) -> list[Resolution]:
        return [self._resolve_one(ref) for ref in refs]

    def _resolve_one(self, ref: WorkflowReference) -> Resolution:
        model_type = _KIND_TYPES.get(ref.kind)
        if model_type is None and ref.kind is ReferenceKind.OTHER:
            other = _FOLDER_TYPES.get(ref.folder)
            library = self._library.get(other) if other is not None else None
            model_type = other if library is not None and library.roots else None
        if model_type is None:
            return Resolution(reference=ref, status=ReferenceStatus.NOT_MANAGED)
        wanted = _fold(ref.name)
        by_name = self._names.find(model_type, ref.name) if ref.name else []
        exact = [e for e in by_name if _fold(e.relative_path) in (wanted, _without_extension(wanted)) or
                 _fold(_without_extension(e.relative_path)) == wanted]
        text_only = all(u.source in (ReferenceSource.TEXT, ReferenceSource.PARAMETERS) for u in ref.uses)
        if text_only and ref.kind is ReferenceKind.LORA and len(by_name) == 1:
            exact = by_name  # <lora:name> text is looked up by file name by every node that reads it
        exact = [e for e in exact if _fits(ref, e)]
        if exact:
            return Resolution(reference=ref, status=ReferenceStatus.PRESENT, model_type=model_type,
                              file_path=exact[0].file_path)
        matches: dict[str, LocalMatch] = {}
        for value in (ref.sha256, ref.short_hash):
            if not value:
                continue
            for entry in self._library[model_type].find_by_hash(value):
                matches.setdefault(entry.file_path, self._match(entry, ref, "hash"))
        for entry in by_name:
            matches.setdefault(entry.file_path, self._match(entry, ref, "file_name"))
        if matches:
            ordered = sorted(matches.values(), key=lambda m: (not m.loadable, m.match != "hash", m.name.casefold()))
            return Resolution(reference=ref, status=ReferenceStatus.MOVED, model_type=model_type,
                              matches=tuple(ordered))
        return Resolution(reference=ref, status=ReferenceStatus.MISSING, model_type=model_type,
                          download_folder=_download_folder(ref.name))

    @staticmethod
    def _match(entry: ModelEntry, ref: WorkflowReference, how: str) -> LocalMatch:
        name = entry.relative_path
        if all(u.source is ReferenceSource.TEXT for u in ref.uses) and ref.kind is not ReferenceKind.CHECKPOINT:
            name = _without_extension(name)  # <lora:style/ink> and embedding:style/ink take no extension
        return LocalMatch(file_path=entry.file_path, name=name, match=how, model_name=entry.model_name,
                          sub_type=entry.sub_type, loadable=_fits(ref, entry))

    # ---------------------------------------------------------------- CivitAI
    async def add_candidates(self, resolutions: Sequence[Resolution]) -> tuple[list[Resolution], str]:
        """The resolutions with candidates for every missing one; and '' or the CivitAI error."""
        missing = [i for i, r in enumerate(resolutions) if r.status is ReferenceStatus.MISSING]
        out = list(resolutions)
        found: dict[int, list[Candidate]] = {i: self._workflow_links(out[i]) for i in missing}
        errors: list[str] = []
        try:
            await self._by_hash(out, missing, found)
        except LibraryError as exc:
            errors.append(exc.message)
        searched = 0
        for i in missing:
            if any(c.source == "civitai" for c in found[i]) or searched >= MAX_NAME_SEARCHES or errors:
                continue
            searched += 1
            try:
                found[i] += await self._by_name(out[i])
            except LibraryError as exc:
                errors.append(exc.message)
        for i in missing:
            out[i] = out[i].with_candidates(found[i][:CANDIDATES_PER_REFERENCE + 1])
        return out, errors[0] if errors else ""

    async def _by_hash(self, out: list[Resolution], missing: list[int], found: dict[int, list[Candidate]]) -> None:
        full = {out[i].reference.sha256 for i in missing if out[i].reference.sha256}
        versions = await self._civitai.get_versions_by_hashes(sorted(full)) if full else {}
        short = [i for i in missing if not out[i].reference.sha256 and out[i].reference.short_hash][:MAX_HASH_LOOKUPS]
        answers = await asyncio.gather(*(self._civitai.get_version_by_hash(out[i].reference.short_hash) for i in short))
        by_short = dict(zip(short, answers))
        for i in missing:
            ref = out[i].reference
            version = versions.get(ref.sha256) if ref.sha256 else by_short.get(i)
            if not version:
                continue
            candidate = self._candidate(out[i], version, "hash", ref.sha256 or ref.short_hash)
            if candidate is not None:
                found[i].insert(0, candidate)

    async def _by_name(self, resolution: Resolution) -> list[Candidate]:
        ref, model_type = resolution.reference, resolution.model_type
        assert model_type is not None
        stem = stem_of(ref.name)
        query = re.sub(r"[_\-.]+", " ", stem).strip() or stem
        if model_type not in _SEARCH_TYPES:  # CLIP vision, GLIGEN ...: no CivitAI type to search by
            return []
        models = await self._civitai.search_models(query, types=_SEARCH_TYPES[model_type], limit=5)
        wanted_file = ref.name.rsplit("/", 1)[-1].casefold()
        by_file: list[Candidate] = []
        by_model: list[Candidate] = []
        for model in models:
            if not civitai_model_type_matches(str(model.get("type") or ""), model_type):
                continue
            versions = [v for v in model.get("modelVersions") or () if isinstance(v, dict)]
            hit = None
            for version in versions:
                for file in version.get("files") or ():
                    if isinstance(file, dict) and str(file.get("name") or "").casefold() in (
                        wanted_file, f"{stem.casefold()}.safetensors"
                    ):
                        hit = (version, file)
                        break
                if hit:
                    break
            if hit is not None:
                candidate = self._candidate(resolution, {**hit[0], "modelId": model.get("id"), "model": model},
                                            "file_name", file=hit[1])
                if candidate:
                    by_file.append(candidate)
            elif versions:
                candidate = self._candidate(resolution, {**versions[0], "modelId": model.get("id"), "model": model}, "name")
                if candidate:
                    by_model.append(candidate)
        return by_file + by_model

    def _candidate(self, resolution: Resolution, version: Mapping[str, Any], match: str, hash_value: str = "",
                   *, file: Mapping[str, Any] | None = None) -> Candidate | None:
        model_type = resolution.model_type
        assert model_type is not None
        model = version.get("model") if isinstance(version.get("model"), dict) else {}
        if model.get("type") and not civitai_model_type_matches(str(model["type"]), model_type):
            return None
        files = [f for f in version.get("files") or () if isinstance(f, dict)]
        if file is None and hash_value:
            file = next((f for f in files if any(str(h).lower().startswith(hash_value.lower())
                                                  for h in (f.get("hashes") or {}).values())), None)
        if file is None:
            file = next((f for f in files if f.get("primary")), files[0] if files else None)
        if file is None or not isinstance(version.get("id"), int):
            return None
        model_id = version.get("modelId") if isinstance(version.get("modelId"), int) else None
        return Candidate(
            source="civitai", match=match, model_type=model_type, file_name=str(file.get("name") or ""),
            model_name=str(model.get("name") or ""), version_name=str(version.get("name") or ""),
            base_model=normalize_base_model(version.get("baseModel")),
            size=int(float(file.get("sizeKB") or 0) * 1024), sha256=str((file.get("hashes") or {}).get("SHA256") or "").lower(),
            model_id=model_id, version_id=int(version["id"]),
            url=f"https://civitai.com/models/{model_id}?modelVersionId={version['id']}" if model_id else "",
            download=self._download_body(resolution, {"model_version_id": int(version["id"])}),
        )

    def _workflow_links(self, resolution: Resolution) -> list[Candidate]:
        """HuggingFace links the workflow itself lists for the file (its ``models`` entries)."""
        model_type = resolution.model_type
        assert model_type is not None
        out = []
        for url in resolution.reference.urls:
            host = (urlsplit(url).hostname or "").lower()
            if host not in _HF_HOSTS or ("/resolve/" not in url and "/blob/" not in url):
                continue
            out.append(Candidate(
                source="huggingface", match="workflow_link", model_type=model_type,
                file_name=urlsplit(url).path.rsplit("/", 1)[-1], url=url,
                download=self._download_body(resolution, {"hf_url": url}),
            ))
        return out

    def _download_body(self, resolution: Resolution, source: dict[str, Any]) -> dict[str, Any]:
        model_type = resolution.model_type
        assert model_type is not None
        body: dict[str, Any] = {**source, "model_type": model_type.value,
                                "relative_path": resolution.download_folder, "use_default_paths": False}
        if resolution.reference.kind is ReferenceKind.CHECKPOINT:
            sub = "diffusion_model" if resolution.reference.sub_type == "diffusion_model" else "checkpoint"
            roots = self._library[model_type].root_paths(sub)
            if roots:
                body["model_root"] = roots[0]
        return body
