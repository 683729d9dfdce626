"""Test data that reads like the product: libraries of real files, and the app over them.

``LibraryBuilder`` writes real safetensors files (via the safetensors library), sidecars
in the de-facto format and real images (Pillow); ``make_app_client`` starts the real
``build_app`` on such a library and waits until every model type is ready.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from lm_plugin.py.app import build_app
from lm_plugin.py.app_keys import SERVICES
from lm_plugin.py.app_services import LibraryConfig
from lm_plugin.py.services.library.model_scanner import library_roots
from PIL import Image
from safetensors.numpy import save_file

SDXL_KOHYA = {"ss_base_model_version": "sdxl_base_v1-0", "ss_output_name": "x"}
SD15_KOHYA = {"ss_base_model_version": "sd_v1", "ss_output_name": "x"}
FLUX_SPEC = {"modelspec.architecture": "flux-1-dev/lora"}


def png_bytes(color: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (64, 80), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


class LibraryBuilder:
    """Creates model roots under one folder and fills them with real files."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.loras = base / "loras"
        self.checkpoints = base / "checkpoints"
        self.diffusion_models = base / "diffusion_models"
        self.embeddings = base / "embeddings"
        for folder in (self.loras, self.checkpoints, self.diffusion_models, self.embeddings):
            folder.mkdir(parents=True, exist_ok=True)
        self._counter = 0

    def _write_model(
        self,
        root: Path,
        name: str,
        folder: str,
        *,
        metadata: dict[str, str] | None,
        sidecar: dict[str, Any] | None,
        preview: str | None,
        extension: str = ".safetensors",
        values: int = 8,
    ) -> Path:
        directory = root / folder if folder else root
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}{extension}"
        self._counter += 1
        tensor = np.arange(values, dtype=np.float32) + self._counter  # distinct bytes per file
        if extension == ".safetensors":
            save_file({"lora_up.weight": tensor}, str(path), metadata=metadata)
        else:
            path.write_bytes(b"GGUF" + tensor.tobytes() if extension == ".gguf" else tensor.tobytes())
        if sidecar is not None:
            (directory / f"{name}.metadata.json").write_text(json.dumps(sidecar), encoding="utf-8")
        if preview:
            fmt = {"webp": "WEBP", "png": "PNG", "jpg": "JPEG", "preview.png": "PNG"}.get(preview, "PNG")
            (directory / f"{name}.{preview}").write_bytes(png_bytes(fmt=fmt))
        return path

    def add_lora(self, name: str, folder: str = "", *, metadata: dict[str, str] | None = None,
                 sidecar: dict[str, Any] | None = None, preview: str | None = None, values: int = 8) -> Path:
        return self._write_model(self.loras, name, folder, metadata=metadata if metadata is not None else SDXL_KOHYA,
                                 sidecar=sidecar, preview=preview, values=values)

    def add_checkpoint(self, name: str, folder: str = "", *, metadata: dict[str, str] | None = None,
                       sidecar: dict[str, Any] | None = None, preview: str | None = None, extension: str = ".safetensors") -> Path:
        return self._write_model(self.checkpoints, name, folder, metadata=metadata or {}, sidecar=sidecar, preview=preview, extension=extension)

    def add_diffusion_model(self, name: str, folder: str = "", *, extension: str = ".safetensors",
                            sidecar: dict[str, Any] | None = None) -> Path:
        return self._write_model(self.diffusion_models, name, folder, metadata=FLUX_SPEC, sidecar=sidecar, preview=None, extension=extension)

    def add_embedding(self, name: str, folder: str = "", *, sidecar: dict[str, Any] | None = None, extension: str = ".safetensors") -> Path:
        return self._write_model(self.embeddings, name, folder, metadata={}, sidecar=sidecar, preview=None, extension=extension)

    def config(self, *, state_dir: Path, watch: bool = False, **kwargs: Any) -> LibraryConfig:
        return LibraryConfig(
            roots=library_roots(
                loras=[str(self.loras)], checkpoints=[str(self.checkpoints)],
                diffusion_models=[str(self.diffusion_models)], embeddings=[str(self.embeddings)],
            ),
            settings_path=state_dir / "settings.json",
            cache_dir=state_dir / "cache",
            watch=watch,
            **kwargs,
        )


async def wait_ready(app, timeout: float = 20.0) -> None:
    services = app[SERVICES]
    for service in services.library.values():
        await service.wait_ready(timeout)
    # the initial task also starts the watcher; let it finish so tests see a settled app
    await services.library.wait_started(timeout)


async def make_app_client(aiohttp_client, lib: LibraryBuilder, *, state_dir: Path, watch: bool = False, **kwargs: Any):
    app = build_app(lib.config(state_dir=state_dir, watch=watch, **kwargs))
    client = await aiohttp_client(app)
    await wait_ready(app)
    return client


def services_of(client):
    return client.server.app[SERVICES]


async def wait_hashed(client, timeout: float = 20.0) -> None:
    await services_of(client).hash_queue.wait_idle(timeout)
