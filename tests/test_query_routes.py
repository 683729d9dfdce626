"""Read-only query routes: every answer ``{"success": true, ...}``, bad input → 400."""
from __future__ import annotations

import shutil

import pytest

from .fixtures import SD15_KOHYA, wait_hashed


@pytest.fixture
async def populated(make_client, library):
    library.add_lora("alpha", "style/anime", preview="webp", sidecar={
        "model_name": "Alpha", "tags": ["style", "anime"], "notes": "my note",
        "modelDescription": "<p>desc</p>", "usage_tips": "{\"strength\": 0.7}",
        "from_civitai": True, "civitai": {"id": 22, "modelId": 11, "trainedWords": ["alpha_tw"]}})
    library.add_lora("beta", "character", metadata=SD15_KOHYA, sidecar={"tags": ["character", "anime"]})
    library.add_lora("Ölstudie_日本", "character")
    library.add_checkpoint("base_xl", preview="png")
    library.add_diffusion_model("flux_dev", extension=".gguf")
    library.add_embedding("easynegative")
    client = await make_client(library)
    return client, library


async def get_ok(client, path, **params):
    resp = await client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["success"] is True
    return body


async def test_top_tags_and_search_tags(populated):
    client, _ = populated
    body = await get_ok(client, "/api/lm/loras/top-tags")
    assert body["tags"][0] == {"tag": "anime", "count": 2}
    body = await get_ok(client, "/api/lm/loras/search-tags", q="cha")
    assert body["tags"] == [{"tag": "character", "count": 1}]


async def test_base_models_counts(populated):
    client, _ = populated
    body = await get_ok(client, "/api/lm/loras/base-models")
    assert {"name": "SD 1.5", "count": 1} in body["base_models"]
    assert {"name": "SDXL 1.0", "count": 2} in body["base_models"]


async def test_roots_folders_and_trees(populated):
    client, library = populated
    root = str(library.loras)
    assert (await get_ok(client, "/api/lm/loras/roots"))["roots"] == [root]
    assert (await get_ok(client, "/api/lm/loras/folders"))["folders"] == ["character", "style/anime"]
    tree = (await get_ok(client, "/api/lm/loras/folder-tree", model_root=root))["tree"]
    assert tree == {"character": {}, "style": {"anime": {}}}
    assert (await get_ok(client, "/api/lm/loras/unified-folder-tree"))["tree"] == tree


async def test_folder_tree_needs_a_known_model_root(populated):
    client, _ = populated
    for params in ({}, {"model_root": "/etc"}):
        resp = await client.get("/api/lm/loras/folder-tree", params=params)
        assert resp.status == 400
        assert (await resp.json())["success"] is False


async def test_find_duplicates_groups_same_sha256_and_omits_singletons(make_client, library):
    original = library.add_lora("one")
    shutil.copy(original, library.loras / "copy_of_one.safetensors")
    library.add_lora("unique")
    client = await make_client(library)
    await wait_hashed(client)
    body = await get_ok(client, "/api/lm/loras/find-duplicates")
    assert len(body["groups"]) == 1
    assert sorted(m["file_name"] for m in body["groups"][0]["models"]) == ["copy_of_one", "one"]


async def test_find_filename_conflicts(make_client, library):
    library.add_lora("same", "a")
    library.add_lora("same", "b")
    library.add_lora("other")
    client = await make_client(library)
    body = await get_ok(client, "/api/lm/loras/find-filename-conflicts")
    assert [g["file_name"] for g in body["groups"]] == ["same"]
    assert len(body["groups"][0]["models"]) == 2


async def test_metadata_description_notes_and_urls(populated):
    client, library = populated
    path = str(library.loras / "style/anime/alpha.safetensors")
    meta = await get_ok(client, "/api/lm/loras/metadata", file_path=path)
    assert meta["metadata"]["notes"] == "my note"
    assert (await get_ok(client, "/api/lm/loras/model-description", file_path=path))["description"] == "<p>desc</p>"
    assert (await get_ok(client, "/api/lm/loras/get-notes", file_path=path))["notes"] == "my note"
    preview = (await get_ok(client, "/api/lm/loras/preview-url", file_path=path))["preview_url"]
    assert preview.startswith("/api/lm/previews?path=")
    url = (await get_ok(client, "/api/lm/loras/civitai-url", file_path=path))["civitai_url"]
    assert url == "https://civitai.com/models/11?modelVersionId=22"


@pytest.mark.parametrize("route", ["metadata", "model-description", "get-notes", "preview-url", "civitai-url"])
async def test_file_path_queries_reject_missing_outside_and_unknown_paths(populated, route):
    client, library = populated
    assert (await client.get(f"/api/lm/loras/{route}")).status == 400
    assert (await client.get(f"/api/lm/loras/{route}", params={"file_path": "/etc/passwd"})).status == 403
    missing = str(library.loras / "nope.safetensors")
    assert (await client.get(f"/api/lm/loras/{route}", params={"file_path": missing})).status == 404
    bad = await client.get(f"/api/lm/loras/{route}", params={"file_path": "a\x00b"})
    assert bad.status == 400


async def test_relative_paths_autocomplete(populated):
    client, _ = populated
    body = await get_ok(client, "/api/lm/loras/relative-paths", search="alp")
    assert body["relative_paths"] == ["style/anime/alpha.safetensors"]


async def test_excluded_lists_hidden_models_only(make_client, library):
    library.add_lora("shown")
    library.add_lora("hidden", sidecar={"exclude": True})
    client = await make_client(library)
    body = await get_ok(client, "/api/lm/loras/excluded")
    assert [i["file_name"] for i in body["items"]] == ["hidden"]
    listing = await (await client.get("/api/lm/loras/list")).json()
    assert [i["file_name"] for i in listing["items"]] == ["shown"]


async def test_lora_letter_counts_trigger_words_and_usage_tips(populated):
    client, library = populated
    counts = (await get_ok(client, "/api/lm/loras/letter-counts"))["letter_counts"]
    assert counts["A"] == 1 and counts["B"] == 1
    path = str(library.loras / "style/anime/alpha.safetensors")
    assert (await get_ok(client, "/api/lm/loras/get-trigger-words", file_path=path))["trigger_words"] == ["alpha_tw"]
    tips = await get_ok(client, "/api/lm/loras/usage-tips-by-path", relative_path="style/anime/alpha.safetensors")
    assert tips["usage_tips"] == "{\"strength\": 0.7}"
    assert (await client.get("/api/lm/loras/usage-tips-by-path", params={"relative_path": "zzz"})).status == 404


async def test_checkpoint_info_and_roots(populated):
    client, library = populated
    info = (await get_ok(client, "/api/lm/checkpoints/info/base_xl.safetensors"))["info"]
    assert info["file_name"] == "base_xl" and info["sub_type"] == "checkpoint"
    flux = (await get_ok(client, "/api/lm/checkpoints/info/flux_dev"))["info"]
    assert flux["sub_type"] == "diffusion_model" and flux["relative_path"] == "flux_dev.gguf"
    assert (await get_ok(client, "/api/lm/checkpoints/checkpoints_roots"))["roots"] == [str(library.checkpoints)]
    assert (await get_ok(client, "/api/lm/checkpoints/unet_roots"))["roots"] == [str(library.diffusion_models)]
    assert (await client.get("/api/lm/checkpoints/info/missing")).status == 404


async def test_embedding_info(populated):
    client, _ = populated
    info = (await get_ok(client, "/api/lm/embeddings/info/easynegative"))["info"]
    assert info["model_type"] == "embedding"


async def test_non_ascii_names_are_listed_and_searchable(populated):
    client, _ = populated
    body = await (await client.get("/api/lm/loras/list", params={"search": "ölstudie"})).json()
    assert [i["file_name"] for i in body["items"]] == ["Ölstudie_日本"]


async def test_scan_route_reconciles_on_demand(populated):
    client, library = populated
    library.add_lora("late_arrival")
    resp = await client.post("/api/lm/loras/scan")
    assert resp.status == 200 and (await resp.json())["success"] is True
    body = await (await client.get("/api/lm/loras/list", params={"search": "late_arrival"})).json()
    assert body["total"] == 1
