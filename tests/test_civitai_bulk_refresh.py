"""``fetch-all-civitai`` (issue 4): batch requests, progress on the socket and by polling,
single flight, cancellation, 429 back-off and upstream failures, over real files and the
local CivitAI test server."""
from __future__ import annotations

import json

import pytest

from .civitai_app import fast_limiter, place, point_app_at, poll, progress, read_sidecar
from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer
from .fixtures import services_of


@pytest.fixture
async def app_for(make_client, library, civitai: CivitaiTestServer, monkeypatch):
    point_app_at(monkeypatch, civitai)

    async def factory():
        client = await make_client(library)
        fast_limiter(client)
        return client

    return factory


def known_library(civitai, library, count: int, *, models: int) -> list:
    """``count`` files CivitAI knows, spread over ``models`` CivitAI models."""
    owners = [civitai.add_model(name=f"Model {i}") for i in range(models)]
    paths = []
    for i in range(count):
        version = civitai.add_version(owners[i % models], name=f"v{i}", tensor_bytes=64)
        paths.append(place(library, version, f"m{i:03d}", folder=f"f{i % 5}"))
    return paths


async def fetch_all(client, **body):
    return await client.post("/api/lm/loras/fetch-all-civitai", json=body)


async def test_bulk_refresh_of_250_models_takes_three_batch_calls(app_for, library, civitai):
    paths = known_library(civitai, library, 250, models=30)
    unknown = library.add_lora("not_on_civitai")
    client = await app_for()
    civitai.reset_counts()
    resp = await fetch_all(client)
    assert resp.status == 200, await resp.text()
    summary = await resp.json()
    assert summary["status"] == "completed"
    assert (summary["total"], summary["processed"], summary["updated"], summary["not_found"], summary["failed"]) == (
        251, 251, 250, 1, 0)
    assert civitai.count("by-hash-batch") == 3
    assert civitai.count("models") == 1  # 30 model ids, deduplicated, one call
    assert civitai.count("by-hash") == civitai.count("model") == civitai.count("version") == 0
    assert civitai.count("image") == 250
    sidecar = read_sidecar(paths[7])
    assert sidecar["civitai"]["model"]["name"] == "Model 7" and sidecar["model_name"] == "Model 7"
    assert paths[7].with_suffix(".webp").is_file()
    assert not unknown.with_suffix(".metadata.json").exists()
    listing = await (await client.get("/api/lm/loras/list", params={"page_size": "100"})).json()
    assert sum(1 for item in listing["items"] if item["from_civitai"]) == 100


async def test_bulk_refresh_skips_models_that_already_have_civitai_data(app_for, library, civitai):
    known_library(civitai, library, 3, models=1)
    client = await app_for()
    await fetch_all(client)
    civitai.reset_counts()
    again = await (await fetch_all(client)).json()
    assert again["total"] == 0 and civitai.count() == 0
    forced = await (await fetch_all(client, force=True)).json()
    assert forced["total"] == 3 and forced["updated"] == 3 and civitai.count("by-hash-batch") == 1


async def test_bulk_refresh_does_not_ask_again_for_unknown_models(app_for, library, civitai):
    library.add_lora("homemade")
    client = await app_for()
    first = await (await fetch_all(client)).json()
    assert first["not_found"] == 1
    civitai.reset_counts()
    second = await (await fetch_all(client)).json()
    assert second["not_found"] == 1 and civitai.count() == 0
    store = services_of(client).cache

    async def persisted():
        return any(k.startswith("hash:") for k in await store.kv_get_all("civitai_not_found"))

    await poll(persisted, what="the not-found cache in SQLite")


async def test_bulk_refresh_streams_progress_on_the_socket(app_for, library, civitai):
    known_library(civitai, library, 5, models=2)
    client = await app_for()
    ws = await client.ws_connect("/ws/fetch-progress")
    summary = await (await fetch_all(client)).json()
    statuses = []
    while True:
        message = await ws.receive_json(timeout=5)
        if message.get("type") != "civitai_fetch_progress":
            continue
        statuses.append(message["status"])
        for key in ("model_type", "total", "processed", "updated", "not_found", "failed", "current_name"):
            assert key in message
        if message["status"] == "completed":
            break
    await ws.close()
    assert statuses[0] == "started" and "processing" in statuses and statuses[-1] == "completed"
    assert (await progress(client))["updated"] == summary["updated"] == 5


async def test_bulk_refresh_is_single_flight_and_cancellable(app_for, library, civitai):
    paths = known_library(civitai, library, 120, models=4)
    client = await app_for()
    civitai.fail_next("models", kind="hang")
    started = await fetch_all(client, wait=False)
    assert started.status == 200 and (await started.json())["status"] in ("started", "processing")

    async def model_details_asked():
        return civitai.count("models") >= 1

    await poll(model_details_asked, what="the model-details call")
    second = await fetch_all(client)
    assert second.status == 409
    body = await second.json()
    assert body["code"] == "already_running" and "already running" in body["error"]
    cancel = await client.post("/api/lm/loras/cancel-task", json={})
    assert (await cancel.json()) == {"success": True, "cancelled": True}

    async def cancelled():
        snap = await progress(client)
        return snap if snap["status"] == "cancelled" else None

    snap = await poll(cancelled, what="the cancelled status")
    assert snap["updated"] == 0 and snap["total"] == 120
    assert civitai.count("by-hash-batch") == 2 and civitai.count("models") == 1
    assert not any(p.with_suffix(".metadata.json").exists() for p in paths)
    idle = await client.post("/api/lm/loras/cancel-task", json={})
    assert (await idle.json())["cancelled"] is False
    rerun = await (await fetch_all(client)).json()
    assert rerun["status"] == "completed" and rerun["updated"] == 120


async def test_bulk_refresh_cancel_abandons_hung_preview_downloads(app_for, library, civitai):
    known_library(civitai, library, 120, models=2)
    client = await app_for()
    civitai.fail_next("image", kind="hang", times=None)  # every preview download hangs
    await fetch_all(client, wait=False)

    async def downloading():
        return civitai.count("image") >= 16  # every preview slot is busy

    await poll(downloading, what="the preview downloads")
    await client.post("/api/lm/loras/cancel-task", json={})

    async def cancelled():
        snap = await progress(client)
        return snap if snap["status"] == "cancelled" else None

    snap = await poll(cancelled, what="the cancelled status")
    # whole chunks of writes, none waiting for a preview; disk and index agree
    assert snap["processed"] == snap["updated"] < 120
    assert not list(library.loras.rglob("*.webp"))
    service = services_of(client).library.for_path(str(library.loras / "x"))
    on_disk = {str(p)[: -len(".metadata.json")] + ".safetensors" for p in library.loras.rglob("*.metadata.json")}
    in_index = {e.file_path for e in service.index.entries.values() if e.from_civitai}
    assert on_disk == in_index and len(on_disk) == snap["updated"]


async def test_bulk_refresh_survives_429s_with_and_without_retry_after(app_for, library, civitai):
    known_library(civitai, library, 150, models=3)
    client = await app_for()
    civitai.reset_counts()
    civitai.fail_next("by-hash-batch", status=429, retry_after="1")
    civitai.fail_next("by-hash-batch", status=429)
    civitai.fail_next("models", status=429)
    summary = await (await fetch_all(client)).json()
    assert summary["status"] == "completed" and summary["updated"] == 150 and summary["failed"] == 0
    assert civitai.count("by-hash-batch") == 4 and civitai.count("models") == 2


async def test_bulk_refresh_upstream_failure_is_502_and_writes_nothing(app_for, library, civitai):
    paths = known_library(civitai, library, 4, models=1)
    client = await app_for()
    civitai.fail_next("by-hash-batch", status=500, times=None)
    resp = await fetch_all(client)
    assert resp.status == 502
    body = await resp.json()
    assert body["success"] is False and body["code"] == "upstream_unavailable" and "HTTP 500" in body["error"]
    assert body["summary"]["status"] == "error" and body["summary"]["failed"] == 4
    assert not any(p.with_suffix(".metadata.json").exists() for p in paths)
    assert (await progress(client))["status"] == "error"


async def test_bulk_refresh_rejects_bad_options_with_400(app_for):
    client = await app_for()
    for body in ({"force": "yes"}, {"wait": 1}):
        resp = await fetch_all(client, **body)
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_input"
    bad_json = await client.post("/api/lm/loras/fetch-all-civitai", data=b"[", headers={"Content-Type": "application/json"})
    assert bad_json.status == 400


async def test_progress_before_any_run_is_idle(app_for):
    client = await app_for()
    assert (await progress(client, "checkpoints"))["status"] == "idle"


async def test_bulk_refresh_keeps_user_edits(app_for, library, civitai):
    version = civitai.add_version(civitai.add_model(name="Remote Name", tags=["remote"]))
    path = place(library, version, "mine", sidecar={"model_name": "Local Name", "tags": ["local"],
                                                    "user_edited": ["model_name", "tags"], "notes": "n"})
    client = await app_for()
    summary = await (await fetch_all(client)).json()
    assert summary["updated"] == 1
    sidecar = read_sidecar(path)
    assert (sidecar["model_name"], sidecar["tags"], sidecar["notes"]) == ("Local Name", ["local"], "n")
    assert sidecar["civitai"]["id"] == version.id
    assert json.dumps(sidecar).count("Remote Name") == 1  # only inside civitai.model
