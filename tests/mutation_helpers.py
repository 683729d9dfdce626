"""Helpers of the mutation tests: what the server lists, what the disk holds, and the
index-equals-fresh-scan check (the contract of every mutation, issue 3).
"""
from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

from .fixtures import LibraryBuilder, make_app_client, services_of, wait_hashed

PREFIXES = ("loras", "checkpoints", "embeddings")
CROSS_SITE_HEADERS = ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"})
_fresh_ids = itertools.count()


async def get_json(client, path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def listing_snapshot(client) -> dict[str, Any]:
    """Everything a client can list: every page of every type, and the derived views.

    No field is left out: ``preview_url``'s ``v=`` is the sidecar's (or file's) mtime and
    hashes are compared after both servers finished hashing, so nothing here is volatile.
    """
    snapshot: dict[str, Any] = {}
    for prefix in PREFIXES:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await get_json(client, f"/api/lm/{prefix}/list", page=page, page_size=100)
            items.extend(body["items"])
            if page >= body["total_pages"]:
                break
            page += 1
        snapshot[prefix] = {
            "items": items,
            "excluded": (await get_json(client, f"/api/lm/{prefix}/excluded"))["items"],
            "top_tags": (await get_json(client, f"/api/lm/{prefix}/top-tags", limit=1000))["tags"],
            "base_models": (await get_json(client, f"/api/lm/{prefix}/base-models"))["base_models"],
            "folders": (await get_json(client, f"/api/lm/{prefix}/folders"))["folders"],
            "duplicates": (await get_json(client, f"/api/lm/{prefix}/find-duplicates"))["groups"],
            "filename_conflicts": (await get_json(client, f"/api/lm/{prefix}/find-filename-conflicts"))["groups"],
        }
        for item in items[:3]:
            by_hash = await get_json(client, f"/api/lm/{prefix}/list", hash=item["sha256"] or "none")
            snapshot[prefix].setdefault("by_hash", []).append([i["file_path"] for i in by_hash["items"]])
    return snapshot


async def assert_matches_fresh_scan(aiohttp_client, client, library: LibraryBuilder, tmp_path: Path) -> None:
    """The running server lists exactly what a newly started one (new cache) lists, and its
    SQLite cache holds exactly its in-memory index (what a warm restart would serve)."""
    await wait_hashed(client)
    running = await listing_snapshot(client)
    services = services_of(client)
    for model_type, service in services.library.items():
        cached = await services.cache.load_entries(model_type)
        assert cached == service.index.entries, f"{model_type.value}: the SQLite cache differs from the index"
    fresh_client = await make_app_client(aiohttp_client, library, state_dir=tmp_path / f"fresh-{next(_fresh_ids)}")
    try:
        await wait_hashed(fresh_client)
        fresh = await listing_snapshot(fresh_client)
    finally:
        await fresh_client.close()
    for prefix in PREFIXES:
        assert running[prefix] == fresh[prefix]  # the index differs from a fresh scan


def disk_snapshot(base: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``base`` (hidden ones too): relative path → (mtime_ns, sha256)."""
    out: dict[str, tuple[int, str]] = {}
    for directory, _, names in os.walk(base):
        for name in names:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if os.path.islink(path):
                digest = "link:" + os.readlink(path)
            else:
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[os.path.relpath(path, base)] = (st.st_mtime_ns, digest)
    return out
