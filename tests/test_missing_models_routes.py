"""``POST /api/lm/workflow/missing-models`` (issue 14, part 2) through the real app and the local
CivitAI test server: present, moved (by file name, by SHA256, by AutoV2 from A1111 text),
missing with CivitAI candidates (by hash first, then by name), the download a candidate
describes landing in the folder the workflow names, and the input errors."""
from __future__ import annotations

import json
import os

import pytest

from . import civitai_fixtures
from .civitai_app import fast_limiter, place, point_app_at
from .civitai_server import CivitaiTestServer
from .fixtures import wait_hashed

civitai = civitai_fixtures.civitai  # the local CivitAI test server, per test

ROUTE = "/api/lm/workflow/missing-models"


def ui(*nodes):
    return {"nodes": [{"id": i + 1, "type": t, "widgets_values": list(v)} for i, (t, *v) in enumerate(nodes)]}


def api(**nodes):
    return {str(k.strip("n")): {"class_type": t, "inputs": inputs} for k, (t, inputs) in nodes.items()}


@pytest.fixture
async def app(make_client, library, civitai: CivitaiTestServer, monkeypatch):
    point_app_at(monkeypatch, civitai)

    async def factory():
        client = await make_client(library)
        fast_limiter(client)
        return client

    return factory


async def ask(client, workflow, **extra):
    resp = await client.post(ROUTE, json={"workflow": workflow, **extra})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True
    return body


def ref(body, name):
    return next(r for r in body["references"] if r["name"] == name)


def posix(path) -> str:
    return str(path).replace(os.sep, "/")


async def test_a_model_at_the_named_path_is_present(app, library):
    ink = library.add_lora("ink", folder="style")
    library.add_checkpoint("base")
    client = await app()
    body = await ask(client, ui(("LoraLoader", "style/ink.safetensors", 1, 1), ("CheckpointLoaderSimple", "base.safetensors")))
    assert body["format"] == "ui"
    found = ref(body, "style/ink.safetensors")
    assert (found["status"], found["file_path"], found["model_type"]) == ("present", posix(ink), "lora")
    assert found["uses"] == [{"source": "widget", "node_id": "1", "node_type": "LoraLoader", "widget": "lora_name",
                              "widget_index": 0, "entry_index": None, "subgraph": ""}]
    assert body["summary"] == {"present": 2, "moved": 0, "missing": 0, "not_managed": 0}


async def test_the_same_file_name_in_another_folder_is_moved_with_its_new_name(app, library):
    ink = library.add_lora("ink", folder="style")
    client = await app()
    body = await ask(client, ui(("LoraLoader", "old/ink.safetensors", 1, 1)))
    found = ref(body, "old/ink.safetensors")
    assert found["status"] == "moved"
    assert found["matches"] == [{"file_path": posix(ink), "name": "style/ink.safetensors", "match": "file_name",
                                 "model_name": "ink", "sub_type": "", "loadable": True}]


async def test_a_renamed_file_is_found_by_the_sha256_our_loader_stored(app, library, civitai):
    version = civitai.add_version(civitai.add_model(name="Ink"))
    renamed = place(library, version, "renamed", folder="kept")
    client = await app()
    await wait_hashed(client)
    loras = json.dumps({"entries": [{"name": "ink_v1.safetensors", "sha256": version.sha256}]})
    body = await ask(client, api(n7=("LmLoraLoader", {"loras": loras})))
    found = ref(body, "ink_v1.safetensors")
    assert found["status"] == "moved" and found["sha256"] == version.sha256
    assert [(m["file_path"], m["name"], m["match"]) for m in found["matches"]] == [
        (posix(renamed), "kept/renamed.safetensors", "hash")]
    assert civitai.count("by-hash-batch") == 0  # nothing missing: CivitAI is not asked


async def test_an_autov2_from_the_image_parameters_finds_a_renamed_file(app, library, civitai):
    version = civitai.add_version(civitai.add_model(name="Ink"))
    renamed = place(library, version, "whatever")
    client = await app()
    await wait_hashed(client)
    parameters = f'a cat\nSteps: 20, Lora hashes: "ink: {version.hashes["AutoV2"].lower()}", Version: v1'
    body = await ask(client, ui(("LoraLoader", "ink.safetensors", 1, 1)), parameters=parameters)
    found = ref(body, "ink.safetensors")
    assert found["status"] == "moved" and found["short_hash"] == version.hashes["AutoV2"].lower()
    assert found["matches"][0]["file_path"] == posix(renamed) and found["matches"][0]["match"] == "hash"


async def test_missing_models_with_hashes_get_civitai_candidates_in_one_batch_call(app, library, civitai):
    model = civitai.add_model(name="Ink Style")
    versions = [civitai.add_version(model, name=f"v{i}", base_model="SDXL 1.0") for i in range(3)]
    client = await app()
    entries = [{"name": f"style/gone{i}.safetensors", "sha256": v.sha256} for i, v in enumerate(versions)]
    body = await ask(client, api(n1=("LmLoraLoader", {"loras": json.dumps(entries)})))
    assert civitai.count("by-hash-batch") == 1 and civitai.searches == []
    for i, v in enumerate(versions):
        found = ref(body, f"style/gone{i}.safetensors")
        assert found["status"] == "missing" and found["download_folder"] == "style"
        first = found["candidates"][0]
        assert (first["source"], first["match"], first["model_version_id"], first["sha256"]) == (
            "civitai", "hash", v.id, v.sha256)
        assert first["base_model"] == "SDXL 1.0" and first["file_name"] == v.file_name
        assert first["download"] == {"model_version_id": v.id, "model_type": "lora", "relative_path": "style",
                                     "use_default_paths": False}


async def test_a_missing_model_without_hash_is_searched_by_name(app, library, civitai):
    by_file = civitai.add_model(name="Detail Tweaker")
    exact = civitai.add_version(by_file, file_name="detail_tweaker.safetensors")
    other = civitai.add_version(civitai.add_model(name="Detail Tweaker XL"), file_name="dtxl.safetensors")
    civitai.add_version(civitai.add_model(name="Detail Tweaker Ckpt", type="Checkpoint"))
    client = await app()
    body = await ask(client, ui(("CLIPTextEncode", "a cat <lora:detail_tweaker:0.5>")))
    found = ref(body, "detail_tweaker")
    assert found["status"] == "missing" and civitai.searches == ["detail tweaker"]
    assert [(c["match"], c["model_version_id"]) for c in found["candidates"]] == [
        ("file_name", exact.id), ("name", other.id)]  # the checkpoint is not a LoRA candidate
    assert found["uses"][0]["source"] == "text"


async def test_a_candidate_downloads_into_the_folder_the_workflow_names_and_then_is_present(app, library, civitai):
    version = civitai.add_version(civitai.add_model(name="Ink"), file_name="ink.safetensors")
    client = await app()
    workflow = api(n1=("LmLoraLoader", {"loras": json.dumps([{"name": "style/ink.safetensors", "sha256": version.sha256}])}))
    candidate = ref(await ask(client, workflow), "style/ink.safetensors")["candidates"][0]
    resp = await client.post("/api/lm/download-model", json=candidate["download"])
    done = await resp.json()
    assert resp.status == 200, done
    assert done["file_path"] == posix(library.loras / "style" / "ink.safetensors")
    again = ref(await ask(client, workflow), "style/ink.safetensors")
    assert again["status"] == "present" and again["file_path"] == done["file_path"]


async def test_embeddings_in_prompts_and_not_managed_loaders(app, library):
    neg = library.add_embedding("neg")
    library.add_embedding("bad", folder="sub")
    client = await app()
    body = await ask(client, ui(("CLIPTextEncode", "embedding:neg, embedding:bad, embedding:nowhere"),
                                ("VAELoader", "sdxl_vae.safetensors")), lookup_civitai=False)
    assert ref(body, "neg")["status"] == "present" and ref(body, "neg")["file_path"] == posix(neg)
    bad = ref(body, "bad")
    assert bad["status"] == "moved" and bad["matches"][0]["name"] == "sub/bad"  # embedding: takes no extension
    assert ref(body, "nowhere")["status"] == "missing" and ref(body, "nowhere")["candidates"] == []
    vae = ref(body, "sdxl_vae.safetensors")
    assert (vae["status"], vae["kind"], vae["folder"], vae["model_type"]) == ("not_managed", "other", "vae", None)


async def test_diffusion_models_are_found_for_unet_loaders_only(app, library):
    flux = library.add_diffusion_model("flux")
    client = await app()
    body = await ask(client, ui(("UNETLoader", "flux.safetensors", "default"),
                                ("CheckpointLoaderSimple", "flux.safetensors")), lookup_civitai=False)
    unet = next(r for r in body["references"] if r["sub_type"] == "diffusion_model")
    ckpt = next(r for r in body["references"] if r["sub_type"] == "")
    assert unet["status"] == "present" and unet["file_path"] == posix(flux)
    assert ckpt["status"] == "moved" and ckpt["matches"][0]["loadable"] is False


async def test_a_missing_diffusion_model_downloads_into_the_diffusion_models_folder(app, library, civitai):
    version = civitai.add_version(civitai.add_model(name="Flux Dev", type="Checkpoint"))
    client = await app()
    workflow = ui(("UNETLoader", "flux_dev.safetensors", "default"))
    body = await ask(client, workflow, parameters=f"x\nSteps: 4, Model hash: {version.hashes['AutoV2']}, Model: flux_dev")
    found = ref(body, "flux_dev.safetensors")
    assert found["short_hash"] == version.hashes["AutoV2"].lower()
    download = found["candidates"][0]["download"]
    assert download["model_root"] == posix(library.diffusion_models) and download["model_type"] == "checkpoint"


async def test_civitai_trouble_leaves_the_local_answer(app, library, civitai):
    library.add_lora("here")
    client = await app()
    civitai.fail_next("models", status=500, times=None)
    body = await ask(client, ui(("LoraLoader", "here.safetensors", 1, 1), ("LoraLoader", "gone.safetensors", 1, 1)))
    assert ref(body, "here.safetensors")["status"] == "present"
    assert ref(body, "gone.safetensors")["status"] == "missing" and ref(body, "gone.safetensors")["candidates"] == []
    assert "HTTP 500" in body["civitai_error"]


async def test_a_workflow_sent_as_png_chunk_text_is_read(app, library):
    library.add_lora("ink")
    client = await app()
    body = await ask(client, json.dumps(ui(("LoraLoader", "ink.safetensors", 1, 1))), lookup_civitai=False)
    assert ref(body, "ink.safetensors")["status"] == "present"


@pytest.mark.parametrize("payload, message", [
    ({"workflow": [1, 2]}, "'workflow' must be a ComfyUI workflow"),
    ({"workflow": "{nope"}, "'workflow' is not valid JSON"),
    ({"workflow": {"a": 1}}, "'workflow' must be a ComfyUI workflow"),
    ({}, "'workflow' (or an image's 'parameters' text) is required"),
    ({"workflow": {"nodes": []}, "extra": 1}, "unknown field(s): extra"),
    ({"workflow": {"nodes": []}, "parameters": 5}, "'parameters' must be a string"),
    ({"workflow": {"nodes": []}, "lookup_civitai": "maybe"}, "'lookup_civitai' must be true or false"),
])
async def test_bad_input_is_a_400_naming_the_field(app, library, payload, message):
    client = await app()
    resp = await client.post(ROUTE, json=payload)
    body = await resp.json()
    assert resp.status == 400, body
    assert body["success"] is False and body["error"].startswith(message)


async def test_another_site_cannot_post_a_workflow(app, library):
    client = await app()
    resp = await client.post(ROUTE, json={"workflow": {"nodes": []}}, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
