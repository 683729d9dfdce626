"""Generated model libraries for the browser tests: real safetensors files, sidecars and
WebP previews (Pillow), plus a standalone server started on them in a subprocess.

Files are written through the shared `LibraryBuilder` of tests/fixtures.py; the server runs
as a separate process (`standalone.py`), so the browser sees the product as a user starts it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from PIL import Image, ImageDraw

from ..fixtures import LibraryBuilder

REPO = Path(__file__).resolve().parents[2]

BASE_MODELS = ("SDXL 1.0", "SD 1.5", "Pony", "Illustrious", "Flux.1 D")
TAGS = ("character", "style", "concept", "clothing", "background", "vehicle", "anime", "photorealistic")
WORDS = ("amber", "blue", "crystal", "dusk", "ember", "frost", "golden", "haze", "iris", "jade")
NOUNS = ("portrait", "forest", "city", "knight", "garden", "robot", "dragon", "ocean", "castle", "witch")


def preview_bytes(seed: int, *, size: int = 192, fmt: str = "WEBP") -> bytes:
    """A small gradient image with a circle, distinct per seed."""
    hue = (seed * 47) % 255
    top = (hue, 90, 255 - hue)
    bottom = (40, (hue * 3) % 255, 120)
    image = Image.new("RGB", (size, int(size * 1.3)))
    draw = ImageDraw.Draw(image)
    for y in range(image.height):
        t = y / image.height
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    r = size // 4
    draw.ellipse([size // 2 - r, image.height // 3 - r, size // 2 + r, image.height // 3 + r], outline=(255, 255, 255), width=3)
    buf = io.BytesIO()
    image.save(buf, fmt, quality=70)
    return buf.getvalue()


class Library:
    """A tmp library tree written through the shared `LibraryBuilder` (tests/fixtures.py),
    with distinct gradient previews and the settings/cache paths the server is started with."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = LibraryBuilder(root / "models")
        self.loras = self.files.loras
        self.checkpoints = self.files.checkpoints
        self.diffusion_models = self.files.diffusion_models
        self.embeddings = self.files.embeddings
        self.settings = root / "settings.json"
        self.cache = root / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)

    def add_lora(
        self,
        stem: str,
        *,
        folder: str = "",
        model_name: str | None = None,
        base_model: str = "SDXL 1.0",
        tags: tuple[str, ...] = (),
        trigger_words: tuple[str, ...] = (),
        favorite: bool = False,
        notes: str = "",
        preview: bool = True,
        preview_seed: int = 0,
        nsfw_level: int = 0,
        sidecar: bool = True,
        with_hash: bool = True,
    ) -> Path:
        """Write `<folder>/<stem>.safetensors` with its sidecar (holding its SHA256 unless
        `with_hash` is false) and preview; returns the model path."""
        data: dict[str, Any] | None = None
        if sidecar:
            data = {
                "file_name": stem,
                "model_name": model_name or stem.replace("_", " ").title(),
                "base_model": base_model,
                "tags": list(tags),
                "favorite": favorite,
                "notes": notes,
                "from_civitai": False,
                "civitai": {"trainedWords": list(trigger_words)},
                "preview_nsfw_level": nsfw_level,
                "usage_tips": json.dumps({"strength": 0.8}),
            }
        model = self.files.add_lora(stem, folder, sidecar=data)
        if data is not None and with_hash:
            # a known hash spares the server's background hashing (tests stay fast and quiet)
            data["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
            model.with_suffix(".metadata.json").write_text(json.dumps(data), encoding="utf-8")
        if preview:
            model.with_suffix(".webp").write_bytes(preview_bytes(preview_seed))
        return model

    def add_checkpoint(self, stem: str) -> Path:
        return self.files.add_checkpoint(stem, metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base"})

    def add_embedding(self, stem: str) -> Path:
        return self.files.add_embedding(stem)

    def write_settings(self, **settings: Any) -> None:
        self.settings.write_text(json.dumps(settings), encoding="utf-8")


def build_small_library(root: Path) -> Library:
    """24 LoRAs over 5 base models, 8 tags and nested folders; 2 checkpoints, 2 embeddings.

    Names are predictable: `lora_00` … `lora_23` (model names 'Amber Portrait 00', ...);
    every third has no preview, `lora_05` is a favourite, `lora_07` is NSFW level 8.
    """
    lib = Library(root)
    for i in range(24):
        base = BASE_MODELS[i % len(BASE_MODELS)]
        folder = f"{base.replace(' ', '_').replace('.', '')}/{TAGS[i % len(TAGS)]}" if i % 2 else ""
        lib.add_lora(
            f"lora_{i:02d}",
            folder=folder,
            model_name=f"{WORDS[i % len(WORDS)].title()} {NOUNS[(i * 3) % len(NOUNS)].title()} {i:02d}",
            base_model=base,
            tags=(TAGS[i % len(TAGS)], TAGS[(i + 3) % len(TAGS)]),
            trigger_words=(f"{WORDS[i % len(WORDS)]} style",),
            favorite=i == 5,
            preview=i % 3 != 2,
            preview_seed=i,
            nsfw_level=8 if i == 7 else 1,
        )
    lib.add_checkpoint("base_xl")
    lib.add_checkpoint("base_15")
    lib.add_embedding("easy_negative")
    lib.add_embedding("bad_hands")
    return lib


def build_large_library(root: Path, count: int) -> Library:
    """`count` LoRAs over 100 folders with sidecars that already carry their SHA256 (so the
    server has no hashing to do and a measurement sees only the browser); 1 in 10 has a preview."""
    lib = Library(root)
    previews = [preview_bytes(i, size=64) for i in range(16)]
    for i in range(count):
        stem = f"model_{i:05d}"
        model = lib.files.add_lora(stem, f"group_{i % 100:03d}", values=4)
        sidecar = {
            "file_name": stem,
            "model_name": stem,
            "base_model": BASE_MODELS[i % len(BASE_MODELS)],
            "tags": [TAGS[i % len(TAGS)]],
            "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        }
        model.with_suffix(".metadata.json").write_text(json.dumps(sidecar), encoding="utf-8")
        if i % 10 == 0:
            model.with_suffix(".webp").write_bytes(previews[i % len(previews)])
    return lib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LibraryServer:
    """The real standalone server (`standalone.py`) on a free port, in a subprocess."""

    def __init__(self, library: Library, *, log_path: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.library = library
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or library.root / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0, ready_types: tuple[str, ...] = ("lora",)) -> "LibraryServer":
        if not self.library.settings.exists():
            self.library.write_settings()
        env = {**os.environ, "LM_CACHE_DIR": str(self.library.cache), **self.extra_env}
        cmd = [
            sys.executable, str(REPO / "standalone.py"), "--port", str(self.port),
            "--settings", str(self.library.settings), "--cache-dir", str(self.library.cache),
            "--loras", str(self.library.loras), "--checkpoints", str(self.library.checkpoints),
            "--diffusion-models", str(self.library.diffusion_models), "--embeddings", str(self.library.embeddings),
            "--no-watch", "--log-level", "WARNING",
        ]
        log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                health = self.get_json("/api/lm/health-check")
                if all(health.get("ready", {}).get(t) for t in ready_types):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def get_json(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.base_url + path, timeout=5) as resp:
            return json.loads(resp.read().decode())

    def list_loras(self, **params: str) -> dict[str, Any]:
        query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in {"page_size": "100", **params}.items())
        return self.get_json(f"/api/lm/loras/list?{query}")

    def wait_for(self, predicate, *, timeout: float = 10.0, interval: float = 0.1) -> Any:
        """Poll `predicate()` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"condition not met within {timeout}s (last: {last!r})")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None


def running_server(library: Library, **kwargs: Any) -> Iterator[LibraryServer]:
    server = LibraryServer(library).start(**kwargs)
    try:
        yield server
    finally:
        server.stop()
