"""Issue 14, "Also fix": a sidecar written by hand or by another tool keeps a base model that
differs from what the file's header implies when "Fetch all" merges CivitAI's answer."""
from __future__ import annotations

import json

import pytest
from lm_plugin.py.services.civitai.civitai_metadata_merge import merge_civitai_into_sidecar

from .civitai_app import fast_limiter, place, point_app_at, read_sidecar
from .civitai_fixtures import civitai  # noqa: F401

VERSION = {"id": 11, "modelId": 1, "baseModel": "SDXL 1.0", "model": {"name": "Tweaker", "type": "LORA"}}


@pytest.mark.parametrize(("sidecar", "header", "expected"), [
    # by hand or another tool: no CivitAI data, no user_edited, not what the header says → kept
    ({"base_model": "Pony", "model_name": "mine", "notes": "n"}, "SDXL 1.0", "Pony"),
    ({"base_model": "Illustrious"}, "", "Illustrious"),
    # what the header implies (our own scan wrote it): CivitAI's value wins
    ({"base_model": "SD 1.5"}, "SD 1.5", "SDXL 1.0"),
    ({"base_model": "sd15"}, "SD 1.5", "SDXL 1.0"),  # the same base model, spelt otherwise
    # nothing stored: CivitAI fills it
    ({"base_model": ""}, "SD 1.5", "SDXL 1.0"),
    # earlier CivitAI data: a refresh may correct it
    ({"base_model": "Pony", "from_civitai": True, "civitai": {"id": 11, "baseModel": "Pony"}}, "SDXL 1.0", "SDXL 1.0"),
    # a user_edited list exists: it alone decides, and base_model is not in it
    ({"base_model": "Pony", "user_edited": ["notes"]}, "SDXL 1.0", "SDXL 1.0"),
    ({"base_model": "Pony", "user_edited": ["base_model"]}, "SDXL 1.0", "Pony"),
    # the header was not read: the old rule
    ({"base_model": "Pony"}, None, "SDXL 1.0"),
])
def test_merge_keeps_a_base_model_someone_chose(sidecar, header, expected):
    merged = merge_civitai_into_sidecar(sidecar, VERSION, None, now=1.0, header_base_model=header)
    assert merged["base_model"] == expected
    assert merged["civitai"]["id"] == 11  # the CivitAI data itself always arrives


async def test_fetch_all_keeps_a_hand_edited_base_model(make_client, library, civitai, monkeypatch):
    """Regression (issue 14): name, notes, tags and now base_model survive "Fetch all"."""
    point_app_at(monkeypatch, civitai)
    model = civitai.add_model(name="Tweaker")
    # the file's header says SD 1.5 (the fixture writes ss_base_model_version = its base model)
    version = civitai.add_version(model, base_model="SD 1.5")
    other = civitai.add_version(civitai.add_model(name="Other"), base_model="SD 1.5")
    hand = place(library, version, "hand_edited", sidecar={
        "file_name": "hand_edited", "model_name": "My name", "base_model": "Pony", "notes": "keep", "tags": ["mine"],
    })
    scanned = place(library, other, "scanned", sidecar={"file_name": "scanned", "base_model": "SD 1.5"})
    civitai.versions[other.id].base_model = "Illustrious"  # CivitAI's truth differs from the header
    client = await make_client(library)
    fast_limiter(client)
    resp = await client.post("/api/lm/loras/fetch-all-civitai", json={})
    assert resp.status == 200, await resp.text()
    kept = read_sidecar(hand)
    assert (kept["base_model"], kept["model_name"], kept["notes"], kept["tags"]) == ("Pony", "My name", "keep", ["mine"])
    assert kept["civitai"]["id"] == version.id and kept["from_civitai"] is True
    assert read_sidecar(scanned)["base_model"] == "Illustrious"
    listed = await (await client.get("/api/lm/loras/list", params={"base_model": "Pony"})).json()
    assert [item["file_name"] for item in listed["items"]] == ["hand_edited"]
    assert json.loads(hand.with_suffix(".metadata.json").read_text())["base_model"] == "Pony"
