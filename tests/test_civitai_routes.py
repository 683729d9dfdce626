"""CivitAI routes (issue 4) through the real app and the local CivitAI test server: single refresh,
merge policy on disk, previews, relink, proxied lookups, local availability, errors."""
from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from .civitai_app import fast_limiter, place, point_app_at, read_sidecar
from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer
from .fixtures import services_of, wait_hashed

SECRET = "sk-route-SECRET-0123456789"


@pytest.fixture
async def app_for(make_client, library, civitai: CivitaiTestServer, monkeypatch):
    """Factory: the real app over ``library``, talking to the local CivitAI server."""
    point_app_at(monkeypatch, civitai)

    async def factory():
        client = await make_client(library)
        fast_limiter(client)
        return client

    return factory


async def fetch(client, path, prefix="loras"):
    return await client.post(f"/api/lm/{prefix}/fetch-civitai", json={"file_path": str(path)})


# ------------------------------------------------------------------ fetch-civitai


async def test_fetch_civitai_merges_the_version_into_a_new_sidecar(app_for, library, civitai):
    model = civitai.add_model(name="Detail Tweaker", tags=["concept", "detail"], creator="alice")
    version = civitai.add_version(model, base_model="SDXL 1.0", trained_words=["detailed"])
    path = place(library, version, "detail_tweaker")
    client = await app_for()
    resp = await fetch(client, path)
    assert resp.status == 200, await resp.text()
    item = (await resp.json())["metadata"]
    assert item["from_civitai"] is True and item["model_name"] == "Detail Tweaker"
    assert item["civitai"]["id"] == version.id and item["civitai"]["modelId"] == model.id
    assert item["civitai_trigger_words"] == ["detailed"] and item["base_model"] == "SDXL 1.0"
    assert item["tags"] == ["concept", "detail"] and item["creator"] == "alice"
    sidecar = read_sidecar(path)
    assert sidecar["sha256"] == version.sha256 and sidecar["modelDescription"] == model.description
    assert sidecar["civitai"]["model"]["allowCommercialUse"] == ["Image", "RentCivit"]
    listed = (await (await client.get("/api/lm/loras/list")).json())["items"][0]
    assert listed["civitai"]["id"] == version.id  # index and cache updated before the answer


async def test_fetch_civitai_downloads_a_preview_when_there_is_none(app_for, library, civitai):
    version = civitai.add_version(images=[8, 1])  # first image X: over the default threshold (R blurred)
    path = place(library, version, "with_preview")
    client = await app_for()
    item = (await (await fetch(client, path)).json())["metadata"]
    preview = path.with_suffix(".webp")
    assert preview.is_file() and item["preview_url"] and item["preview_type"] == "image"
    with Image.open(preview) as image:
        assert image.format == "WEBP"
    assert read_sidecar(path)["preview_nsfw_level"] == 1
    asked = [r.path for r in civitai.requests if r.route == "image"]
    assert asked == [f"/images/{version.id}-1.webp"]
    served = await client.get(item["preview_url"])
    assert served.status == 200 and served.headers["Content-Type"] == "image/webp"


async def test_fetch_civitai_keeps_an_existing_preview(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "has_png", preview="png")
    before = path.with_suffix(".png").read_bytes()
    client = await app_for()
    item = (await (await fetch(client, path)).json())["metadata"]
    assert path.with_suffix(".png").read_bytes() == before and not path.with_suffix(".webp").exists()
    assert "has_png.png" in item["preview_url"]
    assert civitai.count("image") == 0


async def test_fetch_civitai_stores_a_video_preview_as_mp4(app_for, library, civitai):
    version = civitai.add_version(images=[{"type": "video", "nsfwLevel": 1}])
    path = place(library, version, "moving")
    client = await app_for()
    item = (await (await fetch(client, path)).json())["metadata"]
    assert path.with_suffix(".mp4").is_file() and item["preview_type"] == "video"


async def test_fetch_civitai_hashes_a_pending_model_once(app_for, library, civitai):
    version = civitai.add_version()
    client = await app_for()
    await wait_hashed(client)
    services = services_of(client)
    done_before = services.hash_queue.snapshot()["done"]
    path = place(library, version, "fresh_file")
    await client.post("/api/lm/loras/scan")
    assert services.library[next(iter(services.library))].index.get(str(path)) is not None
    entry = services.library.for_path(str(path)).index.get(str(path))
    assert entry.hash_status.value == "pending"
    resp = await fetch(client, path)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["metadata"]["sha256"] == version.sha256
    await wait_hashed(client)
    assert services.hash_queue.snapshot()["done"] == done_before + 1


async def test_fetch_civitai_unknown_model_is_404_and_keeps_the_sidecar(app_for, library, civitai):
    path = library.add_lora("homemade", sidecar={"model_name": "Mine", "notes": "keep", "custom": {"x": 1}})
    before = path.with_suffix(".metadata.json").read_bytes()
    client = await app_for()
    resp = await fetch(client, path)
    assert resp.status == 404
    body = await resp.json()
    assert body["success"] is False and body["code"] == "upstream_not_found"
    assert "homemade.safetensors' is not on CivitAI" in body["error"] and "kept" in body["error"]
    assert path.with_suffix(".metadata.json").read_bytes() == before


async def test_fetch_civitai_upstream_500_is_502_with_the_reason(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "flaky", sidecar={"model_name": "Kept"})
    client = await app_for()
    civitai.fail_next("by-hash", status=500, times=None)
    resp = await fetch(client, path)
    assert resp.status == 502
    body = await resp.json()
    assert body["code"] == "upstream_unavailable" and "HTTP 500" in body["error"]
    assert read_sidecar(path) == {"model_name": "Kept"}


async def test_fetch_civitai_rate_limited_to_the_end_is_503(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "throttled")
    client = await app_for()
    civitai.fail_next("by-hash", status=429, times=None)
    resp = await fetch(client, path)
    assert resp.status == 503
    assert (await resp.json())["code"] == "rate_limited"


async def test_fetch_civitai_passes_401_through(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "locked")
    client = await app_for()
    civitai.fail_next("by-hash", status=401)
    resp = await fetch(client, path)
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "authentication_required" and "API key" in body["error"]


@pytest.mark.parametrize("payload", [{}, {"file_path": 5}, {"file_path": ""}, [1]])
async def test_fetch_civitai_rejects_bad_input_with_400(app_for, payload):
    client = await app_for()
    resp = await client.post("/api/lm/loras/fetch-civitai", json=payload)
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_input"


async def test_fetch_civitai_rejects_paths_outside_and_unknown_models(app_for, library, tmp_path):
    client = await app_for()
    outside = await client.post("/api/lm/loras/fetch-civitai", json={"file_path": str(tmp_path / "x.safetensors")})
    assert outside.status == 403
    missing = await client.post("/api/lm/loras/fetch-civitai", json={"file_path": str(library.loras / "nope.safetensors")})
    assert missing.status == 404 and (await missing.json())["code"] == "model_not_found"


@pytest.mark.parametrize("route, payload", [
    ("fetch-civitai", {"file_path": "x"}), ("fetch-all-civitai", {}), ("cancel-task", {}),
    ("relink-civitai", {"file_path": "x", "model_id": 1}),
])
async def test_civitai_posts_refuse_cross_site_requests(app_for, civitai, route, payload):
    client = await app_for()
    resp = await client.post(f"/api/lm/loras/{route}", json=payload, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    assert await resp.json() == {"success": False, "error": "cross-site requests may not change the library",
                                 "code": "cross_site_request"}
    evil = await client.post(f"/api/lm/loras/{route}", json=payload, headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    assert civitai.count() == 0


# ------------------------------------------------------------------ merge policy through the route


async def test_user_edits_survive_a_refresh(app_for, library, civitai):
    model = civitai.add_model(name="CivitAI Name", tags=["civitai-tag"])
    version = civitai.add_version(model, base_model="Pony", trained_words=["cv_word"])
    path = place(library, version, "edited", sidecar={
        "model_name": "My Own Name", "tags": ["mine"], "notes": "my notes", "trigger_words": ["my_word"],
        "usage_tips": "{\"strength\": 0.7}", "base_model": "Illustrious", "favorite": True,
        "user_edited": ["model_name", "tags", "base_model"], "other_tool_key": [1, 2],
    })
    client = await app_for()
    item = (await (await fetch(client, path)).json())["metadata"]
    assert item["model_name"] == "My Own Name" and item["tags"] == ["mine"] and item["notes"] == "my notes"
    assert item["trigger_words"] == ["my_word"] and item["civitai_trigger_words"] == ["cv_word"]
    assert item["base_model"] == "Illustrious" and item["favorite"] is True
    sidecar = read_sidecar(path)
    assert sidecar["usage_tips"] == "{\"strength\": 0.7}" and sidecar["other_tool_key"] == [1, 2]
    assert sidecar["civitai"]["id"] == version.id and sidecar["from_civitai"] is True


async def test_refresh_never_erases_known_civitai_data(app_for, library, civitai):
    version = civitai.add_version(trained_words=[])
    path = place(library, version, "richer", sidecar={
        "civitai": {"id": version.id, "trainedWords": ["kept_word"], "other_tool_field": "kept"},
    })
    client = await app_for()
    item = (await (await fetch(client, path)).json())["metadata"]
    assert item["civitai_trigger_words"] == ["kept_word"]
    assert read_sidecar(path)["civitai"]["other_tool_field"] == "kept"


# ------------------------------------------------------------------ relink


async def test_relink_attaches_the_chosen_version(app_for, library, civitai):
    first = civitai.add_version(civitai.add_model(name="First"))
    other_model = civitai.add_model(name="Second")
    old_v = civitai.add_version(other_model, name="v1")
    new_v = civitai.add_version(other_model, name="v2")
    path = place(library, first, "linked")
    client = await app_for()
    await fetch(client, path)
    resp = await client.post("/api/lm/loras/relink-civitai", json={
        "file_path": str(path), "model_id": other_model.id, "model_version_id": old_v.id})
    assert resp.status == 200, await resp.text()
    item = (await resp.json())["metadata"]
    assert item["civitai"]["id"] == old_v.id and item["civitai"]["modelId"] == other_model.id
    latest = await client.post("/api/lm/loras/relink-civitai", json={"file_path": str(path), "model_id": other_model.id})
    assert (await latest.json())["metadata"]["civitai"]["id"] == new_v.id


@pytest.mark.parametrize("body_of", [
    lambda p, m, v: {"file_path": p},
    lambda p, m, v: {"file_path": p, "model_id": "abc"},
    lambda p, m, v: {"file_path": p, "model_id": m, "model_version_id": 999999},
    lambda p, m, v: {"file_path": p, "model_id": -3},
])
async def test_relink_rejects_bad_input_with_400(app_for, library, civitai, body_of):
    version = civitai.add_version()
    path = place(library, version, "relink_me")
    client = await app_for()
    resp = await client.post("/api/lm/loras/relink-civitai", json=body_of(str(path), version.model_id, version.id))
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_input"


async def test_relink_to_a_model_of_another_type_is_400(app_for, library, civitai):
    lora = civitai.add_version()
    checkpoint = civitai.add_version(civitai.add_model(name="Big", type="Checkpoint"))
    path = place(library, lora, "a_lora")
    client = await app_for()
    resp = await client.post("/api/lm/loras/relink-civitai", json={"file_path": str(path), "model_id": checkpoint.model_id})
    assert resp.status == 400
    assert "is a Checkpoint, not a lora" in (await resp.json())["error"]


async def test_relink_to_an_unknown_model_is_404(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "orphan", sidecar={"model_name": "Orphan"})
    client = await app_for()
    resp = await client.post("/api/lm/loras/relink-civitai", json={"file_path": str(path), "model_id": 424242})
    assert resp.status == 404 and (await resp.json())["code"] == "upstream_not_found"
    assert read_sidecar(path) == {"model_name": "Orphan"}


# ------------------------------------------------------------------ lookups and local availability


async def test_versions_mark_exists_locally_from_hashes(app_for, library, civitai):
    model = civitai.add_model(name="Two Versions")
    have = civitai.add_version(model, name="v1")
    missing = civitai.add_version(model, name="v2")
    path = place(library, have, "only_v1", folder="sub")
    client = await app_for()
    await wait_hashed(client)
    service = services_of(client).library.for_path(str(path))
    entries_before = dict(service.index.entries)
    resp = await client.get(f"/api/lm/loras/civitai/versions/{model.id}")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    by_id = {v["id"]: v for v in body["versions"]}
    assert by_id[have.id]["existsLocally"] is True and by_id[have.id]["localPath"] == str(path)
    assert by_id[have.id]["files"][0]["existsLocally"] is True
    assert by_id[missing.id]["existsLocally"] is False and by_id[missing.id]["localPath"] is None
    assert body["model_id"] == model.id and body["type"] == "LORA"
    assert service.index.entries == entries_before  # lookups never mutate the cache


async def test_versions_of_a_model_of_another_type_is_400(app_for, civitai):
    checkpoint = civitai.add_version(civitai.add_model(name="Ckpt", type="Checkpoint"))
    client = await app_for()
    resp = await client.get(f"/api/lm/loras/civitai/versions/{checkpoint.model_id}")
    assert resp.status == 400
    ok = await client.get(f"/api/lm/checkpoints/civitai/versions/{checkpoint.model_id}")
    assert ok.status == 200


@pytest.mark.parametrize("model_id, status", [("abc", 400), ("0", 400), ("777777", 404)])
async def test_versions_bad_or_unknown_model(app_for, model_id, status):
    client = await app_for()
    resp = await client.get(f"/api/lm/loras/civitai/versions/{model_id}")
    assert resp.status == status


async def test_versions_upstream_failure_is_502(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    civitai.fail_next("model", status=503, times=None)
    resp = await client.get(f"/api/lm/loras/civitai/versions/{version.model_id}")
    assert resp.status == 502 and (await resp.json())["code"] == "upstream_unavailable"


async def test_version_lookup_by_id(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    found = await client.get(f"/api/lm/loras/civitai/model/version/{version.id}")
    assert found.status == 200 and (await found.json())["version"]["id"] == version.id
    assert (await client.get("/api/lm/loras/civitai/model/version/9999999")).status == 404
    assert (await client.get("/api/lm/loras/civitai/model/version/abc")).status == 400


async def test_version_lookup_by_hash(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    for value in (version.sha256, version.hashes["AutoV2"]):
        found = await client.get(f"/api/lm/loras/civitai/model/hash/{value}")
        assert found.status == 200 and (await found.json())["version"]["id"] == version.id
    unknown = await client.get(f"/api/lm/loras/civitai/model/hash/{'ab' * 32}")
    assert unknown.status == 404 and (await unknown.json())["code"] == "upstream_not_found"
    assert (await client.get("/api/lm/loras/civitai/model/hash/not-a-hash")).status == 400


async def test_early_access_passes_through_as_401(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    civitai.fail_next("version", status=403, error="Early Access")
    resp = await client.get(f"/api/lm/loras/civitai/model/version/{version.id}")
    assert resp.status == 401 and (await resp.json())["code"] == "early_access"


async def test_check_model_exists_reads_the_index(app_for, library, civitai):
    version = civitai.add_version()
    path = place(library, version, "known")
    client = await app_for()
    await fetch(client, path)
    found = await (await client.get("/api/lm/check-model-exists",
                                    params={"modelId": str(version.model_id), "modelVersionId": str(version.id)})).json()
    assert found["exists"] is True and found["modelType"] == "lora" and found["models"][0]["file_path"] == str(path)
    other = await (await client.get("/api/lm/check-model-exists",
                                    params={"modelId": str(version.model_id), "modelVersionId": "5"})).json()
    assert other["exists"] is False
    assert (await client.get("/api/lm/check-model-exists")).status == 400
    assert (await client.get("/api/lm/check-model-exists", params={"modelId": "x"})).status == 400


async def test_model_versions_status_by_version_id_and_by_hash(app_for, library, civitai):
    model = civitai.add_model()
    by_hash = civitai.add_version(model, name="v1")
    absent = civitai.add_version(model, name="v2")
    path = place(library, by_hash, "hashed_only")
    client = await app_for()
    await wait_hashed(client)
    resp = await client.get("/api/lm/model-versions-status", params={"modelId": str(model.id)})
    assert resp.status == 200, await resp.text()
    versions = {v["id"]: v for v in (await resp.json())["versions"]}
    assert versions[by_hash.id]["inLibrary"] is True and versions[by_hash.id]["byHash"] is True
    assert versions[by_hash.id]["localPath"] == str(path)
    assert versions[absent.id]["inLibrary"] is False
    assert (await client.get("/api/lm/model-versions-status")).status == 400


# ------------------------------------------------------------------ the key stays secret


async def test_api_key_is_sent_but_never_shown(make_client, library, civitai, monkeypatch, caplog):
    point_app_at(monkeypatch, civitai)
    monkeypatch.setenv("CIVITAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    version = civitai.add_version()
    path = place(library, version, "keyed")
    client = await make_client(library)
    fast_limiter(client)
    texts = [await (await fetch(client, path)).text()]
    civitai.fail_next("by-hash", status=400, error=f"bad request from key {SECRET}")
    echoed = await fetch(client, path)
    assert echoed.status == 502
    texts.append(await echoed.text())
    civitai.valid_keys = {"another-key"}
    rejected = await client.get(f"/api/lm/loras/civitai/model/version/{version.id}")
    assert rejected.status == 401 and "invalid or expired" in (await rejected.json())["error"]
    texts.append(await rejected.text())
    texts.append(await (await client.get("/api/lm/settings")).text())
    assert any(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in civitai.requests)
    assert all(SECRET not in text for text in texts)
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(read_sidecar(path))


async def test_preview_from_a_host_outside_the_allow_list_is_not_fetched(app_for, library, civitai):
    version = civitai.add_version(extra={"images": [
        {"url": "http://169.254.169.254/latest/meta-data.webp", "nsfwLevel": 1, "type": "image"}]})
    path = place(library, version, "ssrf_probe")
    client = await app_for()
    resp = await fetch(client, path)
    assert resp.status == 200
    item = (await resp.json())["metadata"]
    assert item["preview_url"] == "" and not path.with_suffix(".webp").exists()
    fetcher = services_of(client).civitai_sync.previews
    assert fetcher.is_allowed(f"{civitai.origin}/images/a.webp")
    assert fetcher.is_allowed("https://image.civitai.com/x/y.jpeg")
    assert not fetcher.is_allowed("http://169.254.169.254/latest/meta-data.webp")
    assert not fetcher.is_allowed("file:///etc/passwd")


async def test_a_preview_that_is_a_web_page_or_too_big_is_skipped(app_for, library, civitai, monkeypatch):
    from lm_plugin.py.services.civitai import civitai_preview_fetcher

    first = place(library, civitai.add_version(), "html_preview")
    second = place(library, civitai.add_version(), "huge_preview")
    client = await app_for()
    civitai.fail_next("image", kind="html")
    resp = await fetch(client, first)
    assert resp.status == 200 and (await resp.json())["metadata"]["preview_url"] == ""
    monkeypatch.setattr(civitai_preview_fetcher, "MAX_IMAGE_BYTES", 16)
    resp = await fetch(client, second)
    assert resp.status == 200 and (await resp.json())["metadata"]["preview_url"] == ""
    assert not list(library.loras.glob("*.webp")) and civitai.count("image") == 2
    assert read_sidecar(second)["civitai"]["id"]  # the metadata was still merged
