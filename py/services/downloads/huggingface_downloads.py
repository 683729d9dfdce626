"""Downloads from HuggingFace: plan a file a request names (size, SHA256 and commit from the hub's
headers before any byte; the type from the user, or guessed from the file name and the
safetensors header read with two range requests), stream it for the ``Downloader`` (the same
``.part``, resume and verification as CivitAI files), then write its sidecar: source URL, repo,
revision, commit, licence (from the model card when cheap), base model (from the header).

Owns only what differs from CivitAI; it must not queue jobs (the download service does) nor
stream bytes to disk itself (the downloader does).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from ...errors import ConflictError, LibraryError, ValidationError
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelEntry
from ..library.safetensors_header import guess_base_model
from ..shared.model_locks import ModelLocks
from ..shared.model_types import ModelType
from ..shared.path_guard import PathGuard
from ..shared.settings_manager import SettingsManager
from .download_records import DownloadPlan, DownloadRequest
from .downloader import check_model_file_name, safe_file_name
from .huggingface_client import HuggingFaceClient
from .huggingface_refs import HuggingFaceFileRef

_log = logging.getLogger(__name__)

SOURCE = "huggingface"
_LORA_KEYS = ("lora_unet_", "lora_te", ".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", "lora_transformer_",
              ".lokr_", ".hada_", "lora.down", "lora.up")
_EMBEDDING_KEYS = frozenset({"emb_params", "string_to_param", "string_to_token", "clip_l", "clip_g"})
_FULL_CHECKPOINT_KEYS = ("first_stage_model.", "cond_stage_model.", "conditioner.", "vae.", "text_encoders.")
_DIFFUSION_KEYS = ("double_blocks.", "single_blocks.", "joint_blocks.", "transformer_blocks.", "model.diffusion_model.",
                   "blocks.0.", "input_blocks.", "img_in.", "x_embedder.")


def guess_model_type(file_name: str, header: dict[str, Any] | None) -> tuple[ModelType, str]:
    """(type, sub-type) a file most likely is: from its tensor names when the header was read,
    else from its name; a checkpoint without VAE or text encoder is a diffusion model."""
    keys = [k for k in (header or {}) if k != "__metadata__"]
    if keys:
        if any(marker in k for k in keys[:5000] for marker in _LORA_KEYS):
            return ModelType.LORA, ""
        if len(keys) <= 8 and set(keys) & _EMBEDDING_KEYS:
            return ModelType.EMBEDDING, ""
        if any(k.startswith(_FULL_CHECKPOINT_KEYS) for k in keys):
            return ModelType.CHECKPOINT, "checkpoint"
        if any(k.startswith(_DIFFUSION_KEYS) for k in keys):
            return ModelType.CHECKPOINT, "diffusion_model"
    lower = file_name.lower()
    if "lora" in lower or "lycoris" in lower or "locon" in lower:
        return ModelType.LORA, ""
    if "embedding" in lower or "textual_inversion" in lower or "negative" in lower and lower.endswith(".pt"):
        return ModelType.EMBEDDING, ""
    if lower.endswith(".gguf") or "unet" in lower or "transformer" in lower or "diffusion" in lower:
        return ModelType.CHECKPOINT, "diffusion_model"
    return ModelType.CHECKPOINT, "checkpoint"


def _metadata_of(header: dict[str, Any] | None) -> dict[str, str]:
    raw = (header or {}).get("__metadata__")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


class HuggingFaceDownloads:
    """``plan(request)`` → a ``DownloadPlan`` with ``origin["kind"] == "huggingface"``; the
    downloader then calls ``open_download`` for the bytes and ``write_metadata`` at the end.

    ``plan`` raises ``ValidationError`` (400: not the hub's URL, a folder of another type, a file
    the library would not list), ``ConflictError`` (409: the file, by SHA256, is already in the
    library), and the client's ``AuthenticationRequired`` / ``UpstreamNotFound`` /
    ``UpstreamUnavailable`` (401/404/502). Nothing is written before ``plan`` returns.
    """

    def __init__(self, *, client: HuggingFaceClient, library: ModelLibrary, guard: PathGuard,
                 settings: SettingsManager, locks: ModelLocks) -> None:
        self.client = client
        self._library = library
        self._guard = guard
        self._settings = settings
        self._locks = locks

    # ---------------------------------------------------------------- planning
    async def plan(self, request: DownloadRequest) -> DownloadPlan:
        ref: HuggingFaceFileRef = request.huggingface  # type: ignore[assignment]
        if ref.host and not self.client.is_hub_host(ref.host):
            raise ValidationError(f"'{ref.host}' is not the HuggingFace hub this library downloads from "
                                  f"({self.client.endpoint()})")
        file_name = safe_file_name(ref.file_name, "model.safetensors")
        meta = await self.client.file_metadata(ref)
        header = None
        if file_name.lower().endswith((".safetensors", ".sft")):
            try:
                header = await self.client.safetensors_header(meta.file_url)
            except LibraryError as exc:  # the header is a hint; the download may still work
                if exc.extra.get("web_page"):
                    raise  # ... but not when the file's URL serves a web page: fail before queuing
                _log.info("HuggingFace %s: header not read (%s)", ref.path, exc.message)
        guessed_type, guessed_sub = guess_model_type(file_name, header)
        model_type = request.model_type or guessed_type
        sub_type = guessed_sub if model_type is guessed_type else ("checkpoint" if model_type is ModelType.CHECKPOINT else "")
        target_dir = self._target_dir(model_type, sub_type, request.model_root, request.relative_path)
        root = self._library[model_type].root_for(target_dir)
        if root is not None:
            check_model_file_name(root, file_name)
        if meta.sha256:
            existing = self._library.find_by_hash(meta.sha256)
            if existing:
                raise ConflictError(f"'{ref.path}' of {ref.repo} is already in the library at '{existing[0].file_path}'",
                                    extra={"file_path": existing[0].file_path})
        info = await self.client.model_info(ref.repo, meta.commit or ref.revision)
        card = info.get("cardData") if isinstance(info, dict) and isinstance(info.get("cardData"), dict) else {}
        license_value = card.get("license") if isinstance(card.get("license"), str) else ""
        origin = {
            "kind": SOURCE, "label": "HuggingFace",
            "url": meta.file_url,
            "source_url": ref.source_url or self.client.file_url(ref),
            "repo": ref.repo, "path": ref.path, "revision": ref.revision, "commit": meta.commit,
            "license": license_value, "base_model": guess_base_model(_metadata_of(header)),
            "guessed_type": guessed_type.value,
        }
        return DownloadPlan(
            version_id=0, model_id=0, model_type=model_type, target_dir=target_dir, file_name=file_name,
            sha256=meta.sha256, size=meta.size, version={"name": ref.path}, model={"name": ref.repo}, origin=origin,
        )

    def _target_dir(self, model_type: ModelType, sub_type: str, model_root: str, relative_path: str) -> str:
        if model_root:
            guarded = self._guard.check(model_root)
            if guarded.model_type is not model_type:
                raise ValidationError(
                    f"'{model_root}' is a {guarded.model_type.value if guarded.model_type else 'other'} folder, "
                    f"not a {model_type.value} folder"
                )
            base = guarded.path
        else:
            base = self._default_root(model_type, sub_type)
        target = f"{base.rstrip('/')}/{relative_path}" if relative_path else base
        return self._guard.check(target, model_type=model_type).path

    def _default_root(self, model_type: ModelType, sub_type: str) -> str:
        service = self._library[model_type]
        roots = service.root_paths(sub_type or None) or service.root_paths()
        if not roots:
            raise ValidationError(f"the library has no {model_type.value} folder to download into")
        configured = str(self._settings.get(f"default_{model_type.value}_root") or "").strip()
        if configured and configured in roots:
            return configured
        return roots[0]

    # ---------------------------------------------------------------- the downloader's side
    async def open_download(self, plan: DownloadPlan, headers: dict[str, str]) -> aiohttp.ClientResponse:
        return await self.client.open_download(str(plan.origin["url"]), headers=headers)

    async def write_metadata(self, entry: ModelEntry, plan: DownloadPlan, sha256: str) -> None:
        """Write the sidecar of a downloaded file: where it came from, its licence, base model."""
        origin = plan.origin
        hub = {k: origin.get(k) or "" for k in ("repo", "path", "revision", "commit", "license")}
        hub["url"] = origin.get("source_url") or origin.get("url") or ""

        def edit(data: dict[str, Any]) -> dict[str, Any]:
            data.update({"sha256": sha256, "source": SOURCE, "source_url": hub["url"], "huggingface": hub,
                         "from_civitai": False})
            if not data.get("base_model") and origin.get("base_model"):
                data["base_model"] = origin["base_model"]
            if hub["license"]:
                data.setdefault("license", hub["license"])
            return data

        def seed() -> dict[str, Any]:
            return {"file_name": entry.file_name, "model_name": entry.model_name or entry.file_name,
                    "file_path": entry.file_path, "base_model": entry.base_model or str(origin.get("base_model") or ""),
                    "size": entry.stamp.size, "modified": entry.stamp.mtime, "tags": [], "notes": ""}

        async with self._locks.hold(entry.file_path):
            await asyncio.to_thread(self._library.sidecars.rewrite, entry.file_path, edit, seed=seed)
