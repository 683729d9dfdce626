"""A local stand-in for CivitAI: a real aiohttp app on 127.0.0.1 serving fixture data and faults.

Owns realistic version/model JSON (every hash kind, images with NSFW levels, licence flags),
the batch endpoints with their limits, downloads (307 to a signed URL, Range, faults) and
request accounting; it must never be pointed at, or proxy to, the real site.

Run standalone for benchmarks::

    python tests/civitai_server.py --port 0 --latency-ms 50 --synthetic 200

prints its origin; ``--synthetic N`` answers by-hash for ANY SHA256 with a generated version
(spread over N models; 0 = one model per hash) and ``/models`` for any id.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import itertools
import json
import logging
import re
import secrets
import sys
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

_log = logging.getLogger(__name__)

ROUTES = (
    "by-hash", "by-hash-batch", "by-hash-ids", "version", "model", "models",
    "image", "download", "signed", "login",
)
_STREAM_FAULTS = frozenset({"slow", "drop", "wrong_bytes", "truncated"})
_DEFAULT_ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    410: "Model archived",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    524: "A timeout occurred",
}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in | Civitai</title></head>"
    "<body><h1>Sign in to Civitai</h1><form>...</form></body></html>"
)
_ECOSYSTEMS = {"SD 1.5": "sd1", "SDXL 1.0": "sdxl", "Pony": "sdxl", "Illustrious": "sdxl", "Flux.1 D": "flux1"}
_AIR_TYPES = {"LORA": "lora", "LoCon": "lycoris", "DoRA": "lora", "Checkpoint": "checkpoint",
              "TextualInversion": "embedding"}
_TIMESTAMP = "2025-03-14T12:00:00.000Z"


def make_safetensors(*, seed: int, tensor_bytes: int = 4096, base_model: str = "SD 1.5") -> bytes:
    """A real, loadable safetensors file whose content (and hashes) depend on ``seed``."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    count = max(1, tensor_bytes // 4)
    tensors = {
        "lora_unet_down.lora_down.weight": rng.standard_normal(count // 2 or 1).astype(np.float32),
        "lora_unet_down.lora_up.weight": rng.standard_normal(count - count // 2 or 1).astype(np.float32),
    }
    # One metadata key only: safetensors writes metadata in hash-map order.
    return save(tensors, metadata={"ss_base_model_version": base_model})


def file_hashes(content: bytes) -> dict[str, str]:
    """Every hash kind CivitAI lists for a file, upper-case hex as CivitAI sends them.

    BLAKE3 is a stand-in (BLAKE2b-256: no blake3 module here); lookups only need it unique.
    """
    sha = hashlib.sha256(content).hexdigest().upper()
    autov1 = hashlib.sha256(content[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8].upper()
    autov3 = ""
    if len(content) >= 8:
        header_len = int.from_bytes(content[:8], "little")
        if 8 + header_len <= len(content):
            autov3 = hashlib.sha256(content[8 + header_len :]).hexdigest()[:12].upper()
    hashes = {
        "AutoV1": autov1,
        "AutoV2": sha[:10],
        "SHA256": sha,
        "CRC32": f"{zlib.crc32(content) & 0xFFFFFFFF:08X}",
        "BLAKE3": hashlib.blake2b(content, digest_size=32).hexdigest().upper(),
    }
    if autov3:
        hashes["AutoV3"] = autov3
    return hashes


@dataclass(slots=True)
class FakeFile:
    id: int
    name: str
    content: bytes
    hashes: dict[str, str]
    type: str = "Model"
    primary: bool = True
    format: str = "SafeTensor"
    size: str = "pruned"
    fp: str = "fp16"
    size_kb: float | None = None  # what CivitAI claims (default: the content's real size)

    @property
    def sha256(self) -> str:
        return self.hashes["SHA256"].lower()


@dataclass(slots=True)
class FakeModel:
    id: int
    name: str
    type: str
    tags: list[str]
    creator: str
    description: str
    nsfw: bool = False
    poi: bool = False
    allow_no_credit: bool = True
    allow_commercial_use: list[str] = field(default_factory=lambda: ["Image", "RentCivit"])
    allow_derivatives: bool = True
    allow_different_license: bool = False
    version_ids: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FakeVersion:
    id: int
    model_id: int
    name: str
    base_model: str
    trained_words: list[str]
    files: list[FakeFile]
    images: list[dict[str, Any]]
    early_access_deadline: str | None = None
    requires_auth: bool = False
    archived: bool = False
    updated_at: str = _TIMESTAMP
    published_at: str = _TIMESTAMP  # createdAt too; update checks compare it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_file(self) -> FakeFile:
        return next((f for f in self.files if f.primary), self.files[0])

    @property
    def sha256(self) -> str:
        return self.primary_file.sha256

    @property
    def hashes(self) -> dict[str, str]:
        return self.primary_file.hashes

    @property
    def content(self) -> bytes:
        return self.primary_file.content

    @property
    def file_name(self) -> str:
        return self.primary_file.name


@dataclass(slots=True)
class Fault:
    kind: str  # status | hang | malformed_json | html | slow | drop | wrong_bytes | truncated
    status: int = 0
    remaining: int | None = 1  # None = every request until cleared
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    bytes_per_second: int = 0
    after_bytes: int = 0


@dataclass(slots=True)
class RecordedRequest:
    route: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any = None


_FAULT_KEY: Any = web.RequestKey("fault", Fault) if hasattr(web, "RequestKey") else "fault"


class CivitaiTestServer:
    """Fixture CivitAI: add data with ``add_model``/``add_version``, inject faults, read counts."""

    def __init__(self, *, latency_ms: float = 0, synthetic_models: int | None = None) -> None:
        self.latency = latency_ms / 1000.0
        self.synthetic_models = synthetic_models
        self.models: dict[int, FakeModel] = {}
        self.versions: dict[int, FakeVersion] = {}
        self.valid_keys: set[str] = set()  # non-empty: any other Bearer key → 401
        self.signed_host: str | None = None  # e.g. "localhost": the signed URL is another origin
        self.models_page_size = 100
        self.requests: list[RecordedRequest] = []
        self.range_headers: list[str] = []
        self.searches: list[str] = []  # the ``query`` of every model search, in order
        self.origin = ""
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, list[Fault]] = {}
        self._hash_index: dict[str, int] = {}
        self._tokens: dict[str, tuple[int, int]] = {}
        self._images: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1001)
        self._closing = asyncio.Event()
        self._test_server: Any = None
        self.app = self._build_app()

    # ----------------------------------------------------------------- addresses

    def bind(self, origin: str) -> None:
        self.origin = origin.rstrip("/")

    @property
    def api_base(self) -> str:
        return f"{self.origin}/api/v1"

    def download_url(self, version_id: int) -> str:
        return f"{self.origin}/api/download/models/{version_id}"

    # ----------------------------------------------------------------- fixture data

    def add_model(
        self,
        *,
        model_id: int | None = None,
        name: str = "Detail Tweaker",
        type: str = "LORA",
        tags: Sequence[str] = ("concept", "detail"),
        creator: str = "alice",
        description: str = "<p>Adds fine detail.</p>",
        nsfw: bool = False,
        allow_no_credit: bool = True,
        allow_commercial_use: Sequence[str] = ("Image", "RentCivit"),
        allow_derivatives: bool = True,
        allow_different_license: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> FakeModel:
        mid = model_id if model_id is not None else next(self._ids)
        model = FakeModel(
            id=mid, name=name, type=type, tags=list(tags), creator=creator, description=description,
            nsfw=nsfw, allow_no_credit=allow_no_credit, allow_commercial_use=list(allow_commercial_use),
            allow_derivatives=allow_derivatives, allow_different_license=allow_different_license,
            extra=dict(extra or {}),
        )
        self.models[mid] = model
        return model

    def add_version(
        self,
        model: FakeModel | int | None = None,
        *,
        version_id: int | None = None,
        name: str = "v1.0",
        base_model: str = "SD 1.5",
        trained_words: Sequence[str] = ("detailed", "intricate"),
        content: bytes | None = None,
        tensor_bytes: int = 4096,
        file_name: str | None = None,
        images: Sequence[int | dict[str, Any]] = (1, 4),
        early_access_deadline: str | None = None,
        requires_auth: bool = False,
        archived: bool = False,
        updated_at: str = _TIMESTAMP,
        extra: dict[str, Any] | None = None,
        published_at: str | None = None,
        size_kb: float | None = None,
    ) -> FakeVersion:
        """Register a version with one primary model file (a real safetensors unless ``content``).

        Versions are listed newest first in their model (CivitAI's order), each added one
        first; ``published_at`` (also ``createdAt``, default ``updated_at``) and ``size_kb``
        (what CivitAI claims of the file) are what update checks read.
        """
        if model is None:
            model = self.add_model()
        elif isinstance(model, int):
            model = self.models[model]
        vid = version_id if version_id is not None else next(self._ids)
        if content is None:
            content = make_safetensors(seed=vid, tensor_bytes=tensor_bytes, base_model=base_model)
        stem = re.sub(r"[^A-Za-z0-9]+", "_", model.name).strip("_") or "model"
        fake_file = FakeFile(
            id=next(self._ids),
            name=file_name or f"{stem}_{re.sub(r'[^A-Za-z0-9]+', '', name)}.safetensors",
            content=content,
            hashes=file_hashes(content),
            size_kb=size_kb,
        )
        image_dicts = []
        for index, spec in enumerate(images):
            info = {"nsfwLevel": spec} if isinstance(spec, int) else dict(spec)
            kind = info.pop("type", "image")
            ext = info.pop("ext", "mp4" if kind == "video" else "webp")
            image_dicts.append({
                "id": next(self._ids), "path": f"/images/{vid}-{index}.{ext}", "type": kind,
                "nsfwLevel": int(info.pop("nsfwLevel", 1)), "width": 64, "height": 96, **info,
            })
        version = FakeVersion(
            id=vid, model_id=model.id, name=name, base_model=base_model,
            trained_words=list(trained_words), files=[fake_file], images=image_dicts,
            early_access_deadline=early_access_deadline, requires_auth=requires_auth,
            archived=archived, updated_at=updated_at, published_at=published_at or updated_at,
            extra=dict(extra or {}),
        )
        self.versions[vid] = version
        model.version_ids.insert(0, vid)
        for value in fake_file.hashes.values():
            self._hash_index.setdefault(value.lower(), vid)
        return version

    # ----------------------------------------------------------------- faults and accounting

    def fail_next(
        self,
        route: str = "*",
        *,
        status: int | None = None,
        kind: str | None = None,
        times: int | None = 1,
        retry_after: str | float | None = None,
        error: str | None = None,
        deadline: str | None = None,
        body: dict[str, Any] | None = None,
        bytes_per_second: int = 0,
        after_bytes: int = 0,
    ) -> None:
        """Make the next ``times`` requests of ``route`` ("*" = any) misbehave (None = forever).

        ``kind``: "status" (default when ``status`` is given), "hang", "malformed_json",
        "html" (200 login page), and for the signed file route "slow" (``bytes_per_second``),
        "drop" (close after ``after_bytes``), "wrong_bytes", "truncated".
        """
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        kind = kind or ("status" if status else None)
        if kind is None:
            raise ValueError("give a status or a kind")
        if kind == "status" and body is None:
            body = {"error": error or _DEFAULT_ERRORS.get(status or 500, "Error")}
            if status == 403 and (error is None or "early" in error.lower()):
                body = {"error": "Early Access", "deadline": deadline or "2026-12-31T00:00:00.000Z"}
        self._faults.setdefault(route, []).append(Fault(
            kind=kind, status=status or 0, remaining=times,
            retry_after=None if retry_after is None else str(retry_after), body=body,
            bytes_per_second=bytes_per_second, after_bytes=after_bytes,
        ))

    def clear_faults(self) -> None:
        self._faults.clear()

    def count(self, route: str | None = None) -> int:
        return sum(self._counts.values()) if route is None else self._counts[route]

    def reset_counts(self) -> None:
        self._counts.clear()
        self.requests.clear()
        self.range_headers.clear()

    def _take_fault(self, route: str) -> Fault | None:
        for key in (route, "*"):
            queue = self._faults.get(key)
            while queue:
                fault = queue[0]
                if fault.kind in _STREAM_FAULTS and route != "signed":
                    break
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                return fault
        return None

    # ----------------------------------------------------------------- JSON shapes

    def version_json(self, vid: int, origin: str | None = None, *, embedded: bool = True) -> dict[str, Any]:
        """The version as CivitAI serves it (``embedded=False``: as inside ``modelVersions``)."""
        origin = origin or self.origin
        v = self.versions[vid]
        model = self.models[v.model_id]
        data: dict[str, Any] = {
            "id": v.id, "modelId": v.model_id, "name": v.name,
            "createdAt": v.published_at, "updatedAt": v.updated_at, "publishedAt": v.published_at,
            "status": "Archived" if v.archived else "Published",
            "availability": "EarlyAccess" if v.early_access_deadline else "Public",
            "nsfwLevel": max((i["nsfwLevel"] for i in v.images), default=1),
            "trainedWords": list(v.trained_words), "trainingStatus": None, "trainingDetails": None,
            "baseModel": v.base_model, "baseModelType": "Standard",
            "earlyAccessEndsAt": v.early_access_deadline,
            "earlyAccessConfig": {"timeframe": 7} if v.early_access_deadline else None,
            "description": f"<p>{v.name} release notes</p>", "uploadType": "Created",
            "usageControl": "Download",
            "air": f"urn:air:{_ECOSYSTEMS.get(v.base_model, 'other')}:{_AIR_TYPES.get(model.type, 'other')}"
                   f":civitai:{model.id}@{v.id}",
            "stats": {"downloadCount": 1234, "ratingCount": 0, "rating": 0, "thumbsUpCount": 56},
            "model": {"name": model.name, "type": model.type, "nsfw": model.nsfw, "poi": model.poi},
            "files": [self._file_json(v, f, origin) for f in v.files],
            "images": [self._image_json(i, origin) for i in v.images],
            "downloadUrl": f"{origin}/api/download/models/{v.id}",
            **v.extra,
        }
        if not embedded:
            data.pop("modelId")
            data.pop("model")
        return data

    @staticmethod
    def _file_json(v: FakeVersion, f: FakeFile, origin: str) -> dict[str, Any]:
        return {
            "id": f.id, "sizeKB": f.size_kb if f.size_kb is not None else round(len(f.content) / 1024, 4),
            "name": f.name, "type": f.type,
            "pickleScanResult": "Success", "pickleScanMessage": "No Pickle imports",
            "virusScanResult": "Success", "virusScanMessage": None, "scannedAt": _TIMESTAMP,
            "metadata": {"format": f.format, "size": f.size, "fp": f.fp},
            "hashes": dict(f.hashes), "primary": f.primary,
            "downloadUrl": f"{origin}/api/download/models/{v.id}",
        }

    @staticmethod
    def _image_json(image: dict[str, Any], origin: str) -> dict[str, Any]:
        data = {k: val for k, val in image.items() if k != "path"}
        data["url"] = origin + image["path"]
        data.setdefault("hash", "U5Gb2Y-;00Rj~qxuD%t700IU?bM{")
        data.setdefault("hasMeta", True)
        data.setdefault("meta", {"prompt": "a test image", "seed": 42, "steps": 20, "sampler": "Euler a"})
        return data

    def model_json(self, mid: int, origin: str | None = None) -> dict[str, Any]:
        origin = origin or self.origin
        m = self.models[mid]
        return {
            "id": m.id, "name": m.name, "description": m.description, "type": m.type,
            "poi": m.poi, "nsfw": m.nsfw, "nsfwLevel": 1,
            "allowNoCredit": m.allow_no_credit, "allowCommercialUse": list(m.allow_commercial_use),
            "allowDerivatives": m.allow_derivatives, "allowDifferentLicense": m.allow_different_license,
            "stats": {"downloadCount": 4321, "favoriteCount": 10, "commentCount": 2, "ratingCount": 0,
                      "rating": 0, "thumbsUpCount": 99},
            "creator": {"username": m.creator, "image": f"{origin}/images/avatar-{m.creator}.png"},
            "tags": list(m.tags),
            "modelVersions": [self.version_json(vid, origin, embedded=False) for vid in m.version_ids],
            **m.extra,
        }

    def _synthetic_version(self, sha: str, origin: str) -> dict[str, Any]:
        vid = int(sha[:12], 16) + 1
        raw_mid = int(sha[12:20], 16)
        mid = (raw_mid % self.synthetic_models) + 1 if self.synthetic_models else raw_mid + 1
        upper = sha.upper()
        return {
            "id": vid, "modelId": mid, "name": "v1.0", "createdAt": _TIMESTAMP, "updatedAt": _TIMESTAMP,
            "publishedAt": _TIMESTAMP, "status": "Published", "availability": "Public", "nsfwLevel": 1,
            "trainedWords": [f"word{vid % 97}"], "baseModel": "SDXL 1.0", "baseModelType": "Standard",
            "air": f"urn:air:sdxl:lora:civitai:{mid}@{vid}",
            "model": {"name": f"Synthetic {mid}", "type": "LORA", "nsfw": False, "poi": False},
            "files": [{
                "id": vid, "sizeKB": 1.0, "name": f"synthetic_{vid}.safetensors", "type": "Model",
                "metadata": {"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
                "hashes": {"SHA256": upper, "AutoV2": upper[:10]}, "primary": True,
                "downloadUrl": f"{origin}/api/download/models/{vid}",
            }],
            "images": [{"url": f"{origin}/images/{vid}-0.webp", "nsfwLevel": 1, "width": 64,
                        "height": 96, "type": "image"}],
            "downloadUrl": f"{origin}/api/download/models/{vid}",
        }

    def _synthetic_model(self, mid: int, origin: str) -> dict[str, Any]:
        return {
            "id": mid, "name": f"Synthetic {mid}", "description": "<p>generated</p>", "type": "LORA",
            "poi": False, "nsfw": False, "allowNoCredit": True, "allowCommercialUse": ["Image"],
            "allowDerivatives": True, "allowDifferentLicense": False,
            "creator": {"username": f"maker{mid % 13}", "image": None},
            "tags": ["synthetic", f"group{mid % 7}"], "modelVersions": [],
        }

    def _lookup_hash(self, value: str, origin: str) -> dict[str, Any] | None:
        value = value.lower()
        vid = self._hash_index.get(value)
        if vid is not None:
            return self.version_json(vid, origin)
        if self.synthetic_models is not None and _SHA256_RE.match(value):
            return self._synthetic_version(value, origin)
        return None

    # ----------------------------------------------------------------- app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_get("/api/v1/model-versions/by-hash/{hash}", self._by_hash, name="by-hash")
        app.router.add_post("/api/v1/model-versions/by-hash", self._by_hash_batch, name="by-hash-batch")
        app.router.add_post("/api/v1/model-versions/by-hash/ids", self._by_hash_ids, name="by-hash-ids")
        app.router.add_get("/api/v1/model-versions/{id}", self._version, name="version")
        app.router.add_get("/api/v1/models/{id}", self._model, name="model")
        app.router.add_get("/api/v1/models", self._models, name="models")
        app.router.add_get("/images/{name}", self._image, name="image")
        app.router.add_get("/api/download/models/{id}", self._download, name="download")
        app.router.add_get("/signed/{token}/{filename}", self._signed, name="signed")
        app.router.add_get("/login", self._login, name="login")
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing.set()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        self._counts[route] += 1
        self.requests.append(RecordedRequest(
            route=route, method=request.method, path=request.path, query=request.query_string,
            headers=dict(request.headers),
        ))
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.valid_keys:
            key = _bearer(request)
            if key is not None and key not in self.valid_keys:
                return _json({"error": "Unauthorized"}, status=401)
        fault = self._take_fault(route)
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return _json(fault.body, status=fault.status, headers=headers)
            if fault.kind == "hang":
                await self._hang(request)
                return web.Response(status=504, text="hung")
            if fault.kind == "malformed_json":
                return web.Response(status=200, text='{"id": 1, "name": "trunc', content_type="application/json")
            if fault.kind == "html":
                return web.Response(status=200, text=LOGIN_PAGE, content_type="text/html")
            request[_FAULT_KEY] = fault
        return await handler(request)

    async def _hang(self, request: web.Request) -> None:
        """Answer nothing until the client gives up or the server shuts down."""
        for _ in range(1200):
            transport = request.transport
            if transport is None or transport.is_closing() or self._closing.is_set():
                return
            try:
                await asyncio.wait_for(self._closing.wait(), 0.05)
            except asyncio.TimeoutError:
                continue

    def _record_body(self, body: Any) -> None:
        self.requests[-1].body = body

    async def _by_hash(self, request: web.Request) -> web.Response:
        found = self._lookup_hash(request.match_info["hash"], _origin(request))
        if found is None:
            return _json({"error": "Model not found"}, status=404)
        return _json(found)

    async def _read_hash_list(self, request: web.Request) -> list[str] | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": "Body must be a JSON array of hashes"}, status=400)
        self._record_body(body)
        if not isinstance(body, list) or not all(isinstance(h, str) for h in body):
            return _json({"error": "Body must be a JSON array of hashes"}, status=400)
        if len(body) > 100:
            return _json({"error": "Too many hashes: at most 100 per request"}, status=400)
        lowered = [h.lower() for h in body]
        if not all(_SHA256_RE.match(h) for h in lowered):
            return _json({"error": "Only full SHA256 hashes are accepted"}, status=400)
        return lowered

    async def _by_hash_batch(self, request: web.Request) -> web.Response:
        hashes = await self._read_hash_list(request)
        if isinstance(hashes, web.Response):
            return hashes
        origin = _origin(request)
        seen: set[int] = set()
        result = []
        for value in hashes:
            found = self._lookup_hash(value, origin)
            if found is not None and found["id"] not in seen:
                seen.add(found["id"])
                result.append(found)
        return _json(result)

    async def _by_hash_ids(self, request: web.Request) -> web.Response:
        hashes = await self._read_hash_list(request)
        if isinstance(hashes, web.Response):
            return hashes
        origin = _origin(request)
        result = {}
        for value in hashes:
            found = self._lookup_hash(value, origin)
            if found is not None:
                result[value] = found["id"]
        return _json(result)

    async def _version(self, request: web.Request) -> web.Response:
        vid = _int(request.match_info["id"])
        if vid not in self.versions:
            return _json({"error": f"No model version with id {request.match_info['id']}"}, status=404)
        return _json(self.version_json(vid, _origin(request)))

    async def _model(self, request: web.Request) -> web.Response:
        mid = _int(request.match_info["id"])
        origin = _origin(request)
        if mid in self.models:
            return _json(self.model_json(mid, origin))
        if self.synthetic_models is not None and mid > 0:
            return _json(self._synthetic_model(mid, origin))
        return _json({"error": f"No model with id {request.match_info['id']}"}, status=404)

    async def _models(self, request: web.Request) -> web.Response:
        if "query" in request.query and "ids" not in request.query:
            return self._search_models(request)
        raw = ",".join(request.query.getall("ids", []))
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            return _json({"error": "ids must be integers"}, status=400)
        if len(ids) > 100:
            return _json({"error": "Too many ids: at most 100 per request"}, status=400)
        origin = _origin(request)
        items = []
        for mid in ids:
            if mid in self.models:
                items.append(self.model_json(mid, origin))
            elif self.synthetic_models is not None and mid > 0:
                items.append(self._synthetic_model(mid, origin))
        start = _int(request.query.get("cursor", "0"))
        page = items[start : start + self.models_page_size]
        metadata: dict[str, Any] = {"totalItems": len(items), "pageSize": self.models_page_size}
        if start + self.models_page_size < len(items):
            metadata["nextCursor"] = str(start + self.models_page_size)
            metadata["nextPage"] = (
                f"{origin}/api/v1/models?ids={quote(raw, safe=',')}&cursor={start + self.models_page_size}"
            )
        return _json({"items": page, "metadata": metadata})

    def _search_models(self, request: web.Request) -> web.Response:
        """``GET /models?query=&types=&limit=`` (issue 14): models whose name or a file name
        contains every word of the query, case-insensitive, in id order."""
        words = request.query.get("query", "").casefold().split()
        types = {t for raw in request.query.getall("types", []) for t in raw.split(",") if t}
        limit = max(1, min(_int(request.query.get("limit", "20") or "20"), 100))
        origin = _origin(request)
        items = []
        for mid in sorted(self.models):
            model = self.models[mid]
            files = " ".join(f.name for vid in model.version_ids for f in self.versions[vid].files)
            text = f"{model.name} {files}".casefold()
            if (not types or model.type in types) and words and all(w in text for w in words):
                items.append(self.model_json(mid, origin))
        self.searches.append(request.query.get("query", ""))
        return _json({"items": items[:limit], "metadata": {"totalItems": len(items), "pageSize": limit}})

    async def _image(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._images:
            self._images[name] = await asyncio.to_thread(_render_image, name)
        body, ctype = self._images[name]
        return web.Response(body=body, content_type=ctype)

    async def _login(self, request: web.Request) -> web.Response:
        return web.Response(text=LOGIN_PAGE, content_type="text/html")

    async def _download(self, request: web.Request) -> web.Response:
        vid = _int(request.match_info["id"])
        wants_json = request.headers.get("Content-Type", "").startswith("application/json")
        version = self.versions.get(vid)
        if version is None:
            return _json({"error": "Model not found"}, status=404)
        if version.archived:
            return _json({"error": "Model archived"}, status=410)
        key = _bearer(request)
        login = f"{_origin(request)}/login?returnUrl=%2Fmodels%2F{version.model_id}"
        if version.early_access_deadline:
            if not wants_json:
                raise web.HTTPTemporaryRedirect(login)
            return _json({"error": "Early Access", "deadline": version.early_access_deadline}, status=403)
        if version.requires_auth and not key:
            if not wants_json:
                raise web.HTTPTemporaryRedirect(login)
            return _json({"error": "Unauthorized"}, status=401)
        wanted_type = request.query.get("type")
        index = next((i for i, f in enumerate(version.files) if wanted_type and f.type == wanted_type), None)
        if index is None:
            index = version.files.index(version.primary_file)
        token = secrets.token_hex(8)
        self._tokens[token] = (vid, index)
        origin = _origin(request)
        if self.signed_host:
            origin = f"{request.scheme}://{self.signed_host}:{request.url.port}"
        raise web.HTTPTemporaryRedirect(f"{origin}/signed/{token}/{quote(version.files[index].name)}")

    async def _signed(self, request: web.Request) -> web.StreamResponse:
        target = self._tokens.get(request.match_info["token"])
        if target is None:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>",
                                content_type="application/xml")
        vid, index = target
        fake_file = self.versions[vid].files[index]
        fault: Fault | None = request.get(_FAULT_KEY)
        content = fake_file.content
        if fault is not None and fault.kind == "wrong_bytes":
            content = bytes(b ^ 0xFF for b in content[:64]) + content[64:]
        total = len(content)
        status, start, end = 200, 0, total - 1
        range_header = request.headers.get("Range")
        if range_header:
            self.range_headers.append(range_header)
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
            if match is None or int(match.group(1)) >= total:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            status = 206
        body = content[start : end + 1]
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{fake_file.name}"',
            "Accept-Ranges": "bytes",
            "ETag": f'"{fake_file.sha256[:16]}"',
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        limit = len(body)
        if fault is not None and fault.kind == "drop":
            limit = min(limit, fault.after_bytes)
        elif fault is not None and fault.kind == "truncated":
            limit = len(body) // 2
        rate = fault.bytes_per_second if fault is not None and fault.kind == "slow" else 0
        chunk = max(1, rate // 20) if rate else 64 * 1024
        sent = 0
        while sent < limit:
            piece = body[sent : min(limit, sent + chunk)]
            await response.write(piece)
            sent += len(piece)
            if rate:
                await asyncio.sleep(len(piece) / rate)
        if limit < len(body):
            # Cut the connection mid-body, as a flaky CDN would.
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response


def _render_image(name: str) -> tuple[bytes, str]:
    from PIL import Image

    ext = name.rsplit(".", 1)[-1].lower() if "." in name else "png"
    if ext not in ("png", "webp", "jpg", "jpeg"):
        return b"\x00\x00\x00\x18ftypmp42" + bytes(48), "video/mp4"
    digest = hashlib.sha256(name.encode()).digest()
    image = Image.new("RGB", (64, 96), tuple(digest[:3]))
    buffer = io.BytesIO()
    fmt = {"png": "PNG", "webp": "WEBP", "jpg": "JPEG", "jpeg": "JPEG"}[ext]
    image.save(buffer, format=fmt)
    return buffer.getvalue(), {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg"}[fmt]


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                        headers=headers)


def _bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:].strip() or None if value.startswith("Bearer ") else None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def start_civitai_server(aiohttp_server: Any, **options: Any) -> CivitaiTestServer:
    """Start a ``CivitaiTestServer`` with pytest-aiohttp's ``aiohttp_server`` (127.0.0.1)."""
    server = CivitaiTestServer(**options)
    server._test_server = await aiohttp_server(server.app)
    server.bind(str(server._test_server.make_url("/")))
    return server


async def restart_civitai_server(server: CivitaiTestServer, aiohttp_server: Any) -> None:
    """Stop ``server`` (open connections drop) and serve the same data and tokens on the same port."""
    old = server._test_server
    port = old.port
    await old.close()
    server._closing = asyncio.Event()
    server.app = server._build_app()
    server._test_server = await aiohttp_server(server.app, port=port)
    server.bind(str(server._test_server.make_url("/")))


async def _serve_forever(args: argparse.Namespace) -> None:
    server = CivitaiTestServer(latency_ms=args.latency_ms, synthetic_models=args.synthetic)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.bind(f"http://{host}:{port}")
    sys.stdout.write(server.origin + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local CivitAI test server (fixture data only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--synthetic", type=int, default=None, metavar="MODELS",
                        help="answer by-hash for any SHA256, spreading versions over MODELS models (0 = one each)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_serve_forever(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
