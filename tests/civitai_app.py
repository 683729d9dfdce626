"""Helpers for CivitAI route tests: the real app pointed at the local CivitAI test server.

Owns the wiring (``CIVITAI_API_BASE``, a fast rate limiter) and the placing of files
CivitAI knows into a library; the server and the app are the real ones.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from .civitai_server import CivitaiTestServer, FakeVersion
from .fixtures import LibraryBuilder, services_of


def fast_limiter(client: Any) -> None:
    """No spacing and millisecond back-off, so 429/5xx retries cost nothing in tests."""
    limiter = services_of(client).civitai.rate_limiter
    limiter.min_interval = 0.0
    limiter.base_delay = 0.005
    limiter.max_delay = 0.02
    limiter.max_retry_after = 0.02
    limiter.max_retries = 2


def place(library: LibraryBuilder, version: FakeVersion, name: str, *, folder: str = "", root: Path | None = None,
          sidecar: dict[str, Any] | None = None, preview: str | None = None) -> Path:
    """Write the version's model file into the library (the same bytes, so the same SHA256)."""
    directory = (root or library.loras) / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    path.write_bytes(version.content)
    if sidecar is not None:
        (directory / f"{name}.metadata.json").write_text(json.dumps(sidecar), encoding="utf-8")
    if preview:
        from .fixtures import png_bytes

        (directory / f"{name}.{preview}").write_bytes(png_bytes())
    return path


def read_sidecar(model_path: Path) -> dict[str, Any]:
    return json.loads(model_path.with_suffix(".metadata.json").read_text(encoding="utf-8"))


async def poll(check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, what: str = "condition") -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def progress(client: Any, prefix: str = "loras") -> dict[str, Any]:
    resp = await client.get(f"/api/lm/{prefix}/fetch-all-civitai-progress")
    assert resp.status == 200
    return await resp.json()


def point_app_at(monkeypatch: Any, civitai: CivitaiTestServer) -> None:
    monkeypatch.setenv("CIVITAI_API_BASE", civitai.api_base)
