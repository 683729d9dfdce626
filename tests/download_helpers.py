"""Helpers for download tests: start downloads through the real routes and watch them.

Owns only request shortcuts and polling; the app, the CivitAI test server and the files
are the real ones.
"""
from __future__ import annotations

from typing import Any

from .civitai_app import poll


async def start_download(client: Any, **payload: Any) -> dict[str, Any]:
    """POST download-model with ``wait: false``; asserts 200 and returns the body."""
    resp = await client.post("/api/lm/download-model", json={"wait": False, **payload})
    body = await resp.json()
    assert resp.status == 200, body
    return body


async def progress_of(client: Any, download_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/lm/download-progress/{download_id}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def wait_status(client: Any, download_id: str, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll the progress route until the download reaches one of ``statuses``."""

    async def check() -> dict[str, Any] | None:
        snap = await progress_of(client, download_id)
        return snap if snap["status"] in statuses else None

    return await poll(check, timeout=timeout, what=f"download {download_id} to be {'/'.join(statuses)}")


async def wait_bytes(client: Any, download_id: str, minimum: int, timeout: float = 15.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        snap = await progress_of(client, download_id)
        return snap if snap["bytes_downloaded"] >= minimum and snap["status"] == "downloading" else None

    return await poll(check, timeout=timeout, what=f"download {download_id} to pass {minimum} bytes")
