"""Download a CivitAI model into the library: plan the file for a validated request, start it.

Owns the checks that need CivitAI (the version exists, its type fits the target, the file is
one the library lists, it is not in the library yet), where the file goes, and the mapping of
failures to the errors handlers render (400, 401, 404, 409, 502). The request was parsed by
the handler (``request_params.download_request``); every check happens before anything is
started, so a rejected request leaves no progress entry. It must not fetch bytes.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import (
    AuthenticationRequired,
    ConflictError,
    EarlyAccessRequired,
    LibraryError,
    UpstreamNotFound,
    ValidationError,
)
from ..civitai.civitai_client import CivitaiClient
from ..civitai.civitai_metadata_merge import civitai_model_type_matches, normalize_base_model
from ..downloads.download_records import DownloadCancelledError, DownloadJob, DownloadPlan, DownloadRequest
from ..downloads.download_service import DownloadService
from ..downloads.downloader import check_model_file_name, safe_file_name
from ..downloads.huggingface_downloads import HuggingFaceDownloads
from ..jobs.job import JobStatus
from ..library.model_library import ModelLibrary
from ..library.model_records import ModelType
from ..organize.path_template import TemplateValues, first_priority_tag, render_template
from ..shared.path_guard import PathGuard
from ..shared.settings_manager import SettingsManager


class DownloadModelValidationError(ValidationError):
    """The download request is malformed or does not fit the library (HTTP 400)."""


class DownloadModelEarlyAccessError(EarlyAccessRequired):
    """CivitAI wants a login (``code`` ``authentication_required``) or early access
    (``code`` ``early_access``, ``deadline`` in the body) for this file (HTTP 401)."""


class DownloadModelUseCase:
    """``execute(payload)`` → the scheduled (or joined) download job, once it streams or ended.

    Raises ``DownloadModelValidationError`` (400, nothing scheduled), ``PathOutsideLibrary``
    (403), ``UpstreamNotFound`` (404/410), ``ConflictError`` (409: the version is already in
    the library; ``file_path`` in the body), ``DownloadModelEarlyAccessError`` (401) and the
    client's other upstream errors (502/503).
    """

    def __init__(
        self,
        *,
        downloads: DownloadService,
        client: CivitaiClient,
        library: ModelLibrary,
        guard: PathGuard,
        settings: SettingsManager,
        huggingface: HuggingFaceDownloads | None = None,
    ) -> None:
        self._huggingface = huggingface
        self._downloads = downloads
        self._client = client
        self._library = library
        self._guard = guard
        self._settings = settings

    async def execute(self, request: DownloadRequest) -> DownloadJob:
        if request.huggingface is not None:  # a HuggingFace file (issue 14)
            if self._huggingface is None:
                raise DownloadModelValidationError("HuggingFace downloads are not available in this process")
            plan = await self._huggingface.plan(request)
        else:
            plan = await self._plan(request)
        job = await self._downloads.start(plan, download_id=request.download_id)
        await self._downloads.wait_opened(job)
        if job.status is JobStatus.FAILED:
            raise failure_of(job)
        return job

    # ---------------------------------------------------------------- planning
    async def _plan(self, request: DownloadRequest) -> DownloadPlan:
        model_type, file_params = request.model_type, request.file_params
        version, model = await self._version_and_model(request.model_id, request.version_id)
        civitai_type = str((model or {}).get("type") or (version.get("model") or {}).get("type") or "")
        our_type = next((t for t in ModelType if civitai_model_type_matches(civitai_type, t)), None)
        vid = int(version["id"])
        if our_type is None:
            raise DownloadModelValidationError(
                f"CivitAI model version {vid} is a {civitai_type or 'model of unknown type'}, "
                "which the library does not manage (LoRA, checkpoint or embedding)"
            )
        if model_type is not None and model_type is not our_type:
            raise DownloadModelValidationError(
                f"CivitAI model version {vid} is a {our_type.value} ({civitai_type}), not a {model_type.value}"
            )
        file = self._choose_file(version, file_params)
        sha256 = str((file.get("hashes") or {}).get("SHA256") or "").lower()
        if sha256:
            existing = self._library.find_by_hash(sha256)
            if existing:
                raise ConflictError(
                    f"model version {vid} is already in the library at '{existing[0].file_path}'",
                    extra={"file_path": existing[0].file_path, "model_version_id": vid},
                )
        target_dir = self._target_dir(
            our_type, version, model, request.model_root, request.relative_path, request.use_default_paths
        )
        file_name = safe_file_name(str(file.get("name") or ""), f"civitai_{vid}.safetensors")
        root = self._library[our_type].root_for(target_dir)
        if root is not None:  # the guard put target_dir inside a root of our_type
            try:
                check_model_file_name(root, file_name)
            except ValidationError as exc:
                raise DownloadModelValidationError(exc.message, extra=exc.extra) from None
        return DownloadPlan(
            version_id=vid,
            model_id=int(version.get("modelId") or (model or {}).get("id") or request.model_id or 0),
            model_type=our_type,
            target_dir=target_dir,
            file_name=file_name,
            sha256=sha256,
            file_params=file_params,
            version=version,
            model=model,
        )

    async def _version_and_model(
        self, model_id: int | None, version_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        model: dict[str, Any] | None = None
        if version_id is not None:
            version = await self._client.get_version(version_id)
            if version is None:
                raise UpstreamNotFound(f"CivitAI has no model version {version_id}")
            if model_id is not None and version.get("modelId") not in (None, model_id):
                raise DownloadModelValidationError(f"model version {version_id} is not a version of model {model_id}")
        else:
            assert model_id is not None
            model = await self._client.get_model(model_id)
            if model is None:
                raise UpstreamNotFound(f"CivitAI has no model {model_id}")
            versions = [v for v in model.get("modelVersions") or () if isinstance(v, dict)]
            if not versions:
                raise UpstreamNotFound(f"CivitAI model {model_id} has no published versions")
            version = {**versions[0], "modelId": model_id}
        if model is None and version.get("modelId"):
            try:
                model = await self._client.get_model(int(version["modelId"]))
            except LibraryError:
                model = None  # details are a bonus; the version is enough to download
        return version, model

    @staticmethod
    def _choose_file(version: Mapping[str, Any], file_params: dict[str, str]) -> dict[str, Any]:
        files = [f for f in version.get("files") or () if isinstance(f, dict)]
        if not files:
            raise UpstreamNotFound(f"CivitAI model version {version.get('id')} has no files")

        def fits(f: dict[str, Any]) -> bool:
            meta = f.get("metadata") if isinstance(f.get("metadata"), dict) else {}
            for key, wanted in file_params.items():
                have = f.get("type") if key == "type" else meta.get(key)
                if str(have or "").lower() != wanted.lower():
                    return False
            return True

        if file_params:
            matching = [f for f in files if fits(f)]
            if not matching:
                raise DownloadModelValidationError(
                    f"model version {version.get('id')} has no file with {json.dumps(file_params)}"
                )
            return next((f for f in matching if f.get("primary")), matching[0])
        return next((f for f in files if f.get("primary")), files[0])

    def _target_dir(
        self,
        model_type: ModelType,
        version: dict[str, Any],
        model: dict[str, Any] | None,
        model_root: str,
        relative_path: str,
        use_default_paths: bool,
    ) -> str:
        if model_root:
            guarded = self._guard.check(model_root)
            if guarded.model_type is not model_type:
                raise DownloadModelValidationError(
                    f"'{model_root}' is a {guarded.model_type.value if guarded.model_type else 'other'} folder, "
                    f"but model version {version.get('id')} is a {model_type.value}"
                )
            base = guarded.path
        else:
            base = self._default_root(model_type)
        sub = relative_path
        if not sub and use_default_paths:
            templates = self._settings.get("download_path_templates") or {}
            template = str(templates.get(model_type.value) or "")
            sub = render_template(template, values_for_civitai(version, model, self._settings.get("priority_tags") or []))
        target = f"{base.rstrip('/')}/{sub}" if sub else base
        return self._guard.check(target, model_type=model_type).path

    def _default_root(self, model_type: ModelType) -> str:
        roots = self._guard.roots(model_type)
        if not roots:
            raise DownloadModelValidationError(f"the library has no {model_type.value} folder to download into")
        configured = str(self._settings.get(f"default_{model_type.value}_root") or "").strip()
        if configured:
            try:
                guarded = self._guard.check(configured, model_type=model_type)
            except LibraryError:
                guarded = None
            if guarded is not None:
                return guarded.path
        return roots[0]


def failure_of(job: DownloadJob) -> LibraryError:
    """The error a failed (or cancelled) download is answered with; a login or early access
    wanted by CivitAI is the use case's own 401 (``code`` says which)."""
    if job.status is JobStatus.CANCELLED:
        return DownloadCancelledError(f"download {job.id} was cancelled", extra={"download_id": job.id})
    error = job.error or LibraryError("download failed")
    if isinstance(error, (EarlyAccessRequired, AuthenticationRequired)):
        wrapped = DownloadModelEarlyAccessError(error.message, extra=error.extra)
        wrapped.code = error.code
        return wrapped.with_extra(download_id=job.id)
    return error.with_extra(download_id=job.id)


def values_for_civitai(
    version: Mapping[str, Any], model: Mapping[str, Any] | None, priority_tags: Sequence[str]
) -> TemplateValues:
    """Values of a CivitAI version (and its model, when fetched) about to be downloaded."""
    model = model or {}
    version_model = version.get("model") if isinstance(version.get("model"), Mapping) else {}
    tags = model.get("tags") if isinstance(model.get("tags"), list) else []
    creator = model.get("creator") if isinstance(model.get("creator"), Mapping) else {}
    return TemplateValues(
        base_model=normalize_base_model(version.get("baseModel")),
        first_tag=first_priority_tag([str(t) for t in tags], priority_tags),
        author=str(creator.get("username") or ""),
        model_name=str(model.get("name") or version_model.get("name") or ""),
    )
