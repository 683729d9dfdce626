""""Download update" with replace carries the user's data of the old sidecar (notes, tags,
favourite, own trigger words, usage tips, ``user_edited`` fields) to the new version's file
before the old one goes to the recoverable delete: the user's data is never lost (issue 14)."""
from __future__ import annotations

import json

from lm_plugin.py.services.use_cases.check_updates import carried_user_data

from .civitai_app import place as place_model
from .civitai_app import poll, read_sidecar
from .civitai_fixtures import civitai  # noqa: F401
from .test_update_checks import PREFIX, app_for, check, detail_tweaker, listing, sidecar_for  # noqa: F401

USAGE = json.dumps({"strength_min": 0.4, "strength_max": 0.8})


def users_sidecar(civitai, version) -> dict:  # noqa: F811
    data = sidecar_for(civitai, version)
    data.update({
        "model_name": "My tweaker", "notes": "works best at 0.6", "tags": ["detail", "Mine"], "favorite": True,
        "trigger_words": ["tweak_it"], "usage_tips": USAGE, "modelDescription": "my own words",
        "base_model": "Pony", "preview_url": "/somewhere/old.png", "custom_tool_key": {"kept": "only in the old one"},
        "user_edited": ["model_name", "modelDescription", "base_model", "preview_url"],
    })
    return data


def assert_carried(new_sidecar: dict, v3) -> None:
    assert new_sidecar["notes"] == "works best at 0.6"
    assert new_sidecar["favorite"] is True
    assert new_sidecar["tags"][:2] == ["detail", "Mine"]
    assert new_sidecar["trigger_words"] == ["tweak_it"]
    assert new_sidecar["usage_tips"] == USAGE
    assert new_sidecar["model_name"] == "My tweaker" and new_sidecar["modelDescription"] == "my own words"
    assert {"model_name", "modelDescription"} <= set(new_sidecar["user_edited"])
    # what describes the old file or its version is the new file's own
    assert new_sidecar["civitai"]["id"] == 503 and new_sidecar["sha256"] == v3.sha256
    assert new_sidecar["base_model"] == "SD 1.5" and "base_model" not in new_sidecar["user_edited"]
    assert new_sidecar.get("preview_url") != "/somewhere/old.png"


async def test_replace_carries_the_users_data_to_the_new_file(app_for, library, civitai, detail_tweaker):  # noqa: F811
    v1, _, v3 = detail_tweaker
    old = place_model(library, v1, "tweaker_v1", folder="style", sidecar=users_sidecar(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/download-update", json={"file_path": str(old), "version_id": 503, "replace": True})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["replaced"] is True and not old.exists()
    new = old.parent / v3.file_name
    assert_carried(read_sidecar(new), v3)
    [item] = (await listing(client))["items"]
    assert item["file_name"] == new.stem and item["favorite"] is True and item["model_name"] == "My tweaker"
    assert (await listing(client, favorites_only="true"))["items"][0]["file_name"] == new.stem
    # the old sidecar, with everything in it, is in the recoverable delete
    undo = await client.post("/api/lm/undo-delete", json={"batch_id": data["batch_id"]})
    assert undo.status == 200, await undo.text()
    assert read_sidecar(old)["custom_tool_key"] == {"kept": "only in the old one"}


async def test_a_replace_that_finishes_later_carries_the_users_data_too(app_for, library, civitai, detail_tweaker):  # noqa: F811
    v1, _, v3 = detail_tweaker
    old = place_model(library, v1, "tweaker_v1", sidecar=users_sidecar(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/download-update",
                             json={"file_path": str(old), "version_id": 503, "replace": True, "wait": False})
    assert resp.status == 200, await resp.text()

    async def replaced():
        return not old.exists()

    await poll(replaced, what="the old file to be replaced")
    assert_carried(read_sidecar(old.parent / v3.file_name), v3)


async def test_without_replace_the_old_sidecar_stays_as_it_was(app_for, library, civitai, detail_tweaker):  # noqa: F811
    v1, _, v3 = detail_tweaker
    old = place_model(library, v1, "tweaker_v1", sidecar=users_sidecar(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/download-update", json={"file_path": str(old), "version_id": 503})
    assert resp.status == 200, await resp.text()
    assert read_sidecar(old) == users_sidecar(civitai, v1)


def test_the_users_values_win_and_lists_merge():
    old = {"notes": "mine", "tags": ["Ink", "style"], "trigger_words": ["a"], "favorite": True, "usage_tips": "",
           "model_name": "Renamed", "sha256": "1" * 64, "file_name": "old",
           "user_edited": ["model_name", "sha256", "file_name", "notes", "nickname"], "nickname": "x"}
    new = {"notes": "", "tags": ["ink", "new"], "trigger_words": ["b"], "favorite": False, "usage_tips": "tips",
           "model_name": "Detail Tweaker", "sha256": "2" * 64, "file_name": "new", "user_edited": []}
    merged, edited = carried_user_data(old, new)
    assert merged == {"notes": "mine", "tags": ["Ink", "style", "new"], "trigger_words": ["a", "b"], "favorite": True,
                      "usage_tips": "tips", "model_name": "Renamed", "sha256": "2" * 64, "file_name": "new",
                      "user_edited": [], "nickname": "x"}
    assert edited == ["model_name", "notes", "nickname"]
    assert new["tags"] == ["ink", "new"]  # not mutated
    assert carried_user_data({}, new) == (new, [])
