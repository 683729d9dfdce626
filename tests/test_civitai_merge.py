"""The merge policy of CivitAI data into sidecars, on realistic JSON from the test server."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from lm_plugin.py.services.civitai.civitai_metadata_merge import (
    NO_NSFW_LIMIT,
    choose_preview_image,
    civitai_model_type_matches,
    mark_checked_not_found,
    merge_civitai_into_sidecar,
    normalize_base_model,
    nsfw_threshold_from_settings,
)
from lm_plugin.py.services.library.model_records import ModelType
from lm_plugin.py.services.shared.sidecar_store import record_user_edits

from .civitai_server import CivitaiTestServer

NOW = 1_760_000_000.0
ORIGIN = "http://civitai.test"


@pytest.fixture
def fixture_data() -> tuple[dict[str, Any], dict[str, Any]]:
    """(version as by-hash returns it, model as /models/{id} returns it)."""
    server = CivitaiTestServer()
    model = server.add_model(name="Detail Tweaker", tags=["concept", "detail"], creator="alice")
    version = server.add_version(model, base_model="SDXL 1.0", trained_words=["detailed", "intricate"])
    return server.version_json(version.id, ORIGIN), server.model_json(model.id, ORIGIN)


def bare_sidecar(**fields: Any) -> dict[str, Any]:
    return {
        "file_name": "detail_tweaker_xl",
        "model_name": "detail_tweaker_xl",
        "file_path": "/library/loras/detail_tweaker_xl.safetensors",
        "sha256": "ab" * 32,
        "size": 4096,
        "modified": 1_700_000_000.0,
        "base_model": "",
        "preview_url": "",
        "notes": "",
        "tags": [],
        "trigger_words": [],
        "from_civitai": False,
        "civitai": {},
        **fields,
    }


def test_version_is_stored_under_civitai_with_model_creator_and_licence(fixture_data) -> None:
    version, model = fixture_data
    merged = merge_civitai_into_sidecar(bare_sidecar(), version, model, now=NOW)
    civitai = merged["civitai"]
    assert civitai["id"] == version["id"] and civitai["files"] == version["files"]
    assert civitai["trainedWords"] == ["detailed", "intricate"]
    assert civitai["creator"] == {"username": "alice", "image": f"{ORIGIN}/images/avatar-alice.png"}
    assert civitai["model"] == {
        "name": "Detail Tweaker", "type": "LORA", "nsfw": False, "poi": False,
        "tags": ["concept", "detail"], "allowNoCredit": True, "allowCommercialUse": ["Image", "RentCivit"],
        "allowDerivatives": True, "allowDifferentLicense": False,
    }
    assert "modelVersions" not in civitai
    assert merged["modelDescription"] == "<p>Adds fine detail.</p>"
    assert merged["from_civitai"] is True and merged["last_checked_at"] == NOW


def test_names_tags_and_base_model_fill_an_empty_sidecar(fixture_data) -> None:
    version, model = fixture_data
    merged = merge_civitai_into_sidecar(bare_sidecar(), version, model, now=NOW)
    assert merged["model_name"] == "Detail Tweaker"  # the file-name placeholder is replaced
    assert merged["tags"] == ["concept", "detail"]
    assert merged["base_model"] == "SDXL 1.0"


def test_trained_words_never_become_the_users_trigger_words(fixture_data) -> None:
    version, model = fixture_data
    merged = merge_civitai_into_sidecar(bare_sidecar(trigger_words=["mine"]), version, model, now=NOW)
    assert merged["trigger_words"] == ["mine"]
    assert merged["civitai"]["trainedWords"] == ["detailed", "intricate"]


def test_user_edited_fields_survive_a_refresh(fixture_data) -> None:
    version, model = fixture_data
    sidecar = record_user_edits(
        bare_sidecar(model_name="detail_tweaker_xl", base_model="Pony", tags=[], notes="n", usage_tips="{}"),
        ["model_name", "base_model", "tags"],
    )
    merged = merge_civitai_into_sidecar(sidecar, version, model, now=NOW)
    assert merged["user_edited"] == ["base_model", "model_name", "tags"]
    assert (merged["model_name"], merged["base_model"], merged["tags"]) == ("detail_tweaker_xl", "Pony", [])
    assert (merged["notes"], merged["usage_tips"]) == ("n", "{}")


def test_existing_name_and_tags_are_kept_without_user_edited(fixture_data) -> None:
    version, model = fixture_data
    sidecar = bare_sidecar(model_name="My Detailer", tags=["favourite"], preview_url="/x/a.webp",
                           preview_nsfw_level=1, favorite=True)
    merged = merge_civitai_into_sidecar(sidecar, version, model, now=NOW)
    assert merged["model_name"] == "My Detailer" and merged["tags"] == ["favourite"]
    assert (merged["preview_url"], merged["preview_nsfw_level"], merged["favorite"]) == ("/x/a.webp", 1, True)


def test_empty_values_from_civitai_never_overwrite_known_data(fixture_data) -> None:
    version, model = fixture_data
    first = merge_civitai_into_sidecar(bare_sidecar(), version, model, now=NOW)
    poorer = {**version, "trainedWords": [], "description": None, "baseModel": "", "images": []}
    merged = merge_civitai_into_sidecar(first, poorer, {**model, "description": ""}, now=NOW + 1)
    assert merged["civitai"]["trainedWords"] == ["detailed", "intricate"]
    assert merged["civitai"]["images"] == version["images"]
    assert merged["civitai"]["description"] == version["description"]
    assert merged["modelDescription"] == "<p>Adds fine detail.</p>"
    assert merged["base_model"] == "SDXL 1.0"


def test_other_never_replaces_a_known_base_model(fixture_data) -> None:
    version, model = fixture_data
    merged = merge_civitai_into_sidecar(bare_sidecar(base_model="Illustrious"), {**version, "baseModel": "Other"},
                                        model, now=NOW)
    assert merged["base_model"] == "Illustrious"


def test_refresh_without_model_details_keeps_stored_model_details(fixture_data) -> None:
    version, model = fixture_data
    first = merge_civitai_into_sidecar(bare_sidecar(), version, model, now=NOW)
    merged = merge_civitai_into_sidecar(first, version, None, now=NOW + 1)
    assert merged["civitai"]["model"] == first["civitai"]["model"]
    assert merged["civitai"]["creator"] == first["civitai"]["creator"]


def test_a_newer_block_from_another_tool_is_not_downgraded(fixture_data) -> None:
    version, model = fixture_data
    stored = copy.deepcopy(version)
    stored.update(updatedAt="2026-01-01T00:00:00.000Z", name="v1.0 (edited on site)", otherTool={"x": 1})
    stored["model"] = {"name": "Detail Tweaker", "type": "LORA"}
    merged = merge_civitai_into_sidecar(bare_sidecar(civitai=stored, from_civitai=True), version, model, now=NOW)
    civitai = merged["civitai"]
    assert civitai["updatedAt"] == "2026-01-01T00:00:00.000Z" and civitai["name"] == "v1.0 (edited on site)"
    assert civitai["otherTool"] == {"x": 1}
    assert civitai["model"]["tags"] == ["concept", "detail"]  # gaps still filled


def test_an_older_block_is_refreshed_field_wise(fixture_data) -> None:
    version, model = fixture_data
    stored = {"id": version["id"], "updatedAt": "2020-01-01T00:00:00.000Z", "name": "old", "legacy": True}
    merged = merge_civitai_into_sidecar(bare_sidecar(civitai=stored), version, model, now=NOW)
    assert merged["civitai"]["name"] == version["name"] and merged["civitai"]["legacy"] is True


def test_relink_to_another_version_replaces_the_block(fixture_data) -> None:
    version, model = fixture_data
    stored = {"id": 1, "name": "someone else", "trainedWords": ["old"]}
    merged = merge_civitai_into_sidecar(bare_sidecar(civitai=stored), version, model, now=NOW)
    assert merged["civitai"]["trainedWords"] == ["detailed", "intricate"] and merged["civitai"]["id"] == version["id"]


def test_unknown_keys_preserved_and_input_untouched(fixture_data) -> None:
    version, model = fixture_data
    sidecar = bare_sidecar(db_checked=True, some_tool={"k": [1, 2]}, civitai_deleted=True)
    before = copy.deepcopy(sidecar)
    merged = merge_civitai_into_sidecar(sidecar, version, model, now=NOW)
    assert sidecar == before
    assert merged["db_checked"] is True and merged["some_tool"] == {"k": [1, 2]}
    assert merged["civitai_deleted"] is False


def test_version_from_model_versions_list_gets_model_id_and_name(fixture_data) -> None:
    _, model = fixture_data
    embedded = model["modelVersions"][0]
    assert "model" not in embedded and "modelId" not in embedded
    merged = merge_civitai_into_sidecar(bare_sidecar(model_name=""), embedded, model, now=NOW)
    assert merged["civitai"]["modelId"] == model["id"]
    assert merged["civitai"]["model"]["type"] == "LORA" and merged["model_name"] == "Detail Tweaker"


def test_not_found_keeps_everything(fixture_data) -> None:
    version, model = fixture_data
    known = merge_civitai_into_sidecar(bare_sidecar(), version, model, now=NOW)
    checked = mark_checked_not_found(known, now=NOW + 5)
    assert checked == {**known, "last_checked_at": NOW + 5}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("SD 1.5", "SD 1.5"), ("SDXL 1.0", "SDXL 1.0"), ("Pony", "Pony"), ("Illustrious", "Illustrious"),
     ("Flux.1 D", "Flux.1 D"), ("sd15", "SD 1.5"), ("SDXL", "SDXL 1.0"), ("flux.1-dev", "Flux.1 D"),
     ("  Wan  Video 14B  ", "Wan Video 14B"), (None, ""), ("pony", "Pony")],
)
def test_base_model_names_are_normalised(raw: Any, expected: str) -> None:
    assert normalize_base_model(raw) == expected


def images(*levels: int | None, video_first: bool = False) -> dict[str, Any]:
    result = [{"url": f"{ORIGIN}/images/{i}.webp", "type": "image", "nsfwLevel": level}
              for i, level in enumerate(levels)]
    if video_first:
        result.insert(0, {"url": f"{ORIGIN}/images/v.mp4", "type": "video", "nsfwLevel": 1})
    return {"images": result}


def test_preview_is_the_first_image_within_the_threshold() -> None:
    chosen = choose_preview_image(images(8, 16, 2, 1), max_nsfw_level=3)
    assert chosen["nsfwLevel"] == 2


def test_no_preview_when_every_image_is_too_mature() -> None:
    assert choose_preview_image(images(4, 8), max_nsfw_level=3) is None


def test_blocked_and_unrated_images() -> None:
    assert choose_preview_image(images(32), max_nsfw_level=NO_NSFW_LIMIT) is None
    assert choose_preview_image(images(None), max_nsfw_level=8) is None
    assert choose_preview_image(images(None), max_nsfw_level=NO_NSFW_LIMIT)["url"].endswith("0.webp")


def test_videos_count_unless_excluded() -> None:
    assert choose_preview_image(images(1, video_first=True), max_nsfw_level=3)["type"] == "video"
    assert choose_preview_image(images(1, video_first=True), max_nsfw_level=3, allow_video=False)["type"] == "image"


@pytest.mark.parametrize(
    ("blur", "level", "threshold"),
    [(False, "R", 31), (True, "R", 3), (True, "PG13", 1), (True, "PG-13", 1), (True, "X", 7),
     (True, "XXX", 15), (True, "PG", 0), (True, "nonsense", 3)],
)
def test_nsfw_threshold_from_settings(blur: bool, level: str, threshold: int) -> None:
    assert nsfw_threshold_from_settings(blur, level) == threshold


@pytest.mark.parametrize(
    ("civitai_type", "ours", "matches"),
    [("LORA", "lora", True), ("LoCon", "lora", True), ("DoRA", ModelType.LORA, True),
     ("Checkpoint", "checkpoint", True), ("TextualInversion", "embedding", True),
     ("Checkpoint", "lora", False), ("LORA", "embedding", False), ("VAE", "checkpoint", False),
     ("lora", "loras", True)],
)
def test_civitai_model_type_matches(civitai_type: str, ours: Any, matches: bool) -> None:
    assert civitai_model_type_matches(civitai_type, ours) is matches
