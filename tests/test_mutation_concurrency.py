"""Concurrent edits of one model (issue 3): 50 parallel tag edits racing renames lose no
update, the companions stay together and the index equals a fresh scan.
"""
from __future__ import annotations

import asyncio
import json
import os

from .fixtures import services_of
from .mutation_helpers import assert_matches_fresh_scan

TAGS = [f"tag{i:02d}" for i in range(50)]


async def add_tag_wherever_it_is(client, paths: tuple[str, str], tag: str) -> str:
    """Add ``tag`` to the model, which a concurrent rename may have moved to the other name
    (a 404 means it is not there right now: try the other one, as the UI would)."""
    for attempt in range(500):
        path = paths[attempt % 2]
        resp = await client.post("/api/lm/loras/add-tags", json={"file_path": path, "tags": [tag]})
        if resp.status == 200:
            return path
        assert resp.status == 404, await resp.text()
    raise AssertionError(f"tag {tag} was never added")


async def rename_back_and_forth(client, paths: tuple[str, str], times: int) -> None:
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    for i in range(times):
        resp = await client.post("/api/lm/loras/rename", json={"file_path": paths[i % 2], "new_file_name": names[(i + 1) % 2]})
        assert resp.status == 200, await resp.text()


async def test_parallel_tag_edits_and_renames_lose_no_update(aiohttp_client, make_client, library, tmp_path):
    library.add_lora("subject", preview="webp", sidecar={"tags": ["base"], "custom_key": 1})
    library.add_lora("bystander", sidecar={"tags": []})
    client = await make_client(library)
    paths = (str(library.loras / "subject.safetensors"), str(library.loras / "renamed.safetensors"))
    bystander = str(library.loras / "bystander.safetensors")

    results = await asyncio.gather(
        rename_back_and_forth(client, paths, 11),  # ends at the second name
        *(add_tag_wherever_it_is(client, paths, tag) for tag in TAGS),
        *(client.post("/api/lm/loras/add-tags", json={"file_path": bystander, "tags": [tag]}) for tag in TAGS),
    )
    assert all(r.status == 200 for r in results[1 + len(TAGS):])

    final = paths[1]
    assert sorted(os.listdir(library.loras)) == sorted(
        ["bystander.metadata.json", "bystander.safetensors", "renamed.metadata.json", "renamed.safetensors", "renamed.webp"])
    sidecar = json.loads((library.loras / "renamed.metadata.json").read_text())
    assert sorted(sidecar["tags"]) == sorted(["base", *TAGS]) and sidecar["custom_key"] == 1
    assert sorted(json.loads((library.loras / "bystander.metadata.json").read_text())["tags"]) == TAGS

    service = next(s for s in services_of(client).library.values() if s.prefix == "loras")
    assert sorted(service.index.get(final).tags) == sorted(["base", *TAGS])
    assert service.index.get(paths[0]) is None
    assert service.index.tag_counts["tag07"] == 2
    await assert_matches_fresh_scan(aiohttp_client, client, library, tmp_path)
