"""Downloads (issue 5) through the real app and the local CivitAI test server: success, resume
after a dropped connection and after a restart, hash mismatch, pause/resume/cancel, the
concurrency limit, error mapping, snapshots on both transports, free names, waiting GETs."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest

from .civitai_app import fast_limiter, point_app_at, poll
from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer
from .download_helpers import progress_of, start_download, wait_bytes, wait_status
from .fixtures import services_of

BIG = 400_000  # tensor bytes of files that must stream for a while
SLOW = 200_000  # bytes per second of a slow stream


@pytest.fixture
async def app_for(make_client, library, civitai: CivitaiTestServer, monkeypatch):
    """Factory: the real app over ``library``, talking to the local CivitAI server."""
    point_app_at(monkeypatch, civitai)

    async def factory():
        client = await make_client(library)
        fast_limiter(client)
        services_of(client).downloads.downloader.retry_delay = 0.01
        return client

    return factory


def parts_in(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".part", ".part.json")))


# ------------------------------------------------------------------ success


async def test_download_writes_the_verified_file_sidecar_and_preview_and_indexes_it(app_for, library, civitai):
    model = civitai.add_model(name="Detail Tweaker", tags=["style", "detail"], creator="alice")
    version = civitai.add_version(model, base_model="SDXL 1.0", trained_words=["detailed"], images=[1])
    client = await app_for()
    events = await client.ws_connect("/ws/fetch-progress")
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True and body["status"] == "completed" and body["progress"] == 100
    while (message := await asyncio.wait_for(events.receive_json(), timeout=5))["type"] != "models_changed":
        assert message["type"] == "download_progress"
    assert message["reason"] == "download" and message["paths"] == [body["file_path"]]
    await events.close()
    path = library.loras / "SDXL 1.0" / "style" / version.file_name
    assert body["file_path"] == str(path).replace(os.sep, "/")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == version.sha256
    sidecar = json.loads(path.with_suffix(".metadata.json").read_text(encoding="utf-8"))
    assert sidecar["sha256"] == version.sha256 and sidecar["civitai"]["id"] == version.id
    assert sidecar["civitai"]["trainedWords"] == ["detailed"] and sidecar["base_model"] == "SDXL 1.0"
    assert path.with_suffix(".webp").is_file()
    assert parts_in(library.loras) == []
    listed = (await (await client.get("/api/lm/loras/list")).json())["items"]
    assert [i["file_path"] for i in listed] == [body["file_path"]]
    assert listed[0]["sha256"] == version.sha256 and listed[0]["hash_status"] == "done"
    assert listed[0]["preview_url"] and listed[0]["civitai_trigger_words"] == ["detailed"]
    history = (await (await client.get("/api/lm/downloads/history")).json())["history"]
    assert [h["download_id"] for h in history] == [body["download_id"]]


async def test_download_model_get_waits_and_returns_the_file_path(app_for, library, civitai):
    version = civitai.add_version(civitai.add_model(type="Checkpoint", name="Real Vis"), base_model="SD 1.5")
    client = await app_for()
    resp = await client.get(
        "/api/lm/download-model-get",
        params={"model_version_id": str(version.id), "download_id": "ext-42"},
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["download_id"] == "ext-42" and body["status"] == "completed"
    assert body["file_path"].startswith(str(library.checkpoints).replace(os.sep, "/") + "/SD 1.5/")
    assert os.path.isfile(body["file_path"])
    snap = await progress_of(client, "ext-42")
    assert snap["status"] == "completed" and snap["file_path"] == body["file_path"]


async def test_download_model_get_with_wait_false_answers_once_scheduled(app_for, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW * 2)
    client = await app_for()
    resp = await client.get("/api/lm/download-model-get", params={"model_version_id": str(version.id), "wait": "0"})
    body = await resp.json()
    assert resp.status == 200 and body["status"] in ("queued", "downloading") and body["file_path"] == "", body
    listed = (await (await client.get("/api/lm/downloads")).json())["downloads"]
    assert [d["download_id"] for d in listed] == [body["download_id"]]
    done = await wait_status(client, body["download_id"], "completed")
    assert os.path.isfile(done["file_path"])


async def test_download_model_get_refuses_cross_site_requests(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    resp = await client.get(
        "/api/lm/download-model-get",
        params={"model_version_id": str(version.id)},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert resp.status == 403 and (await resp.json())["code"] == "cross_site_request"
    assert civitai.count("download") == 0


async def test_download_into_a_chosen_root_and_relative_path(app_for, library, civitai):
    version = civitai.add_version()
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={
        "model_version_id": version.id, "model_root": str(library.loras), "relative_path": "mine/new",
    })
    body = await resp.json()
    assert resp.status == 200, body
    assert body["file_path"] == f"{library.loras.as_posix()}/mine/new/{version.file_name}"


async def test_download_takes_a_free_name_when_the_file_exists(app_for, library, civitai):
    version = civitai.add_version(file_name="taken.safetensors")
    client = await app_for()
    target = library.loras / "mine"
    target.mkdir()
    (target / "taken.safetensors").write_bytes(b"another model")
    resp = await client.post("/api/lm/download-model", json={
        "model_version_id": version.id, "model_root": str(library.loras), "relative_path": "mine",
    })
    body = await resp.json()
    assert resp.status == 200, body
    assert body["file_path"].endswith("/mine/taken-1.safetensors")
    assert (target / "taken.safetensors").read_bytes() == b"another model"
    assert hashlib.sha256((target / "taken-1.safetensors").read_bytes()).hexdigest() == version.sha256


# ------------------------------------------------------------------ resume


async def test_download_resumes_with_range_after_a_dropped_connection(app_for, library, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="drop", after_bytes=150_000)
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 200, body
    assert hashlib.sha256(open(body["file_path"], "rb").read()).hexdigest() == version.sha256
    assert civitai.count("signed") == 2
    assert len(civitai.range_headers) == 1
    resumed_at = int(civitai.range_headers[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 150_000


async def test_download_resumes_with_range_after_our_app_restarts(make_client, library, civitai, monkeypatch):
    point_app_at(monkeypatch, civitai)
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW)
    first = await make_client(library)
    started = await start_download(first, model_version_id=version.id)
    download_id = started["download_id"]
    await wait_bytes(first, download_id, 20_000)
    await first.close()  # our app stops mid-download: the .part and its state stay
    part = library.loras / "SD 1.5" / "concept" / f"{version.file_name}.part"
    assert part.is_file() and part.stat().st_size > 0
    kept = part.stat().st_size
    civitai.clear_faults()
    civitai.reset_counts()
    second = await make_client(library)
    done = await wait_status(second, download_id, "completed", "failed")
    assert done["status"] == "completed", done
    assert civitai.range_headers == [f"bytes={kept}-"]
    assert hashlib.sha256(open(done["file_path"], "rb").read()).hexdigest() == version.sha256
    assert not part.exists() and not part.with_name(part.name + ".json").exists()
    history = (await (await second.get("/api/lm/downloads/history")).json())["history"]
    assert [h["download_id"] for h in history] == [download_id]


async def test_download_resumes_after_a_truncated_body(app_for, library, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="truncated")
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 200, body
    half = len(version.content) // 2
    assert civitai.count("signed") == 2 and civitai.range_headers == [f"bytes={half}-"]
    assert hashlib.sha256(open(body["file_path"], "rb").read()).hexdigest() == version.sha256


# ------------------------------------------------------------------ integrity and faults


async def test_download_with_a_wrong_hash_fails_and_leaves_no_file(app_for, library, civitai):
    version = civitai.add_version()
    civitai.fail_next("signed", kind="wrong_bytes")
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id, "download_id": "bad"})
    body = await resp.json()
    assert resp.status == 502 and body["code"] == "download_corrupt", body
    assert "does not match CivitAI's SHA256" in body["error"]
    assert [p for p in library.loras.rglob("*") if p.is_file()] == []
    snap = await progress_of(client, "bad")
    assert snap["status"] == "failed" and snap["code"] == "download_corrupt"


async def test_download_refuses_an_html_login_page(app_for, library, civitai):
    version = civitai.add_version()
    civitai.fail_next("signed", kind="html")
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 502 and "web page instead of the model file" in body["error"], body
    assert [p for p in library.loras.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("status, code", [(404, "upstream_not_found"), (410, "upstream_not_found")])
async def test_download_maps_missing_and_archived_files(app_for, civitai, status, code):
    version = civitai.add_version()
    civitai.fail_next("download", status=status)
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 404 and body["code"] == code, body
    assert ("removed from CivitAI" in body["error"]) == (status == 410)


async def test_download_of_an_unknown_version_is_404(app_for, civitai):
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": 987654})
    body = await resp.json()
    assert resp.status == 404 and body["code"] == "upstream_not_found"
    assert body["error"] == "CivitAI has no model version 987654"


async def test_early_access_is_401_with_its_deadline(app_for, civitai):
    version = civitai.add_version(early_access_deadline="2030-01-02T00:00:00.000Z")
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 401 and body["code"] == "early_access", body
    assert "Early Access" in body["error"] and "2030-01-02" in body["error"]
    assert body["deadline"] == "2030-01-02T00:00:00.000Z"


async def test_a_missing_api_key_is_401_with_login_wording(app_for, civitai):
    version = civitai.add_version(requires_auth=True)
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 401 and body["code"] == "authentication_required", body
    assert "requires an API key" in body["error"] and "Early Access" not in body["error"]


async def test_invalid_payloads_are_400_and_leave_no_progress_entry(app_for, civitai):
    version = civitai.add_version()
    client = await app_for()
    for payload in (
        {"download_id": "d1"},
        {"model_version_id": "abc", "download_id": "d1"},
        {"model_version_id": version.id, "relative_path": "../x", "download_id": "d1"},
        {"model_version_id": version.id, "file_params": {"bogus": "1"}, "download_id": "d1"},
        {"model_version_id": version.id, "model_type": "checkpoint", "download_id": "d1"},
        {"model_version_id": version.id, "download_id": "bad id with spaces"},
    ):
        resp = await client.post("/api/lm/download-model", json=payload)
        body = await resp.json()
        assert resp.status == 400 and body["code"] == "invalid_input", (payload, body)
    assert (await client.get("/api/lm/download-progress/d1")).status == 404
    assert services_of(client).downloads.jobs.get("d1") is None
    assert (await (await client.get("/api/lm/downloads")).json())["downloads"] == []
    assert civitai.count("download") == 0


async def test_a_model_type_mismatch_with_the_target_root_is_400(app_for, library, civitai):
    version = civitai.add_version()  # a LoRA
    client = await app_for()
    resp = await client.post("/api/lm/download-model", json={
        "model_version_id": version.id, "model_root": str(library.checkpoints), "download_id": "mm",
    })
    body = await resp.json()
    assert resp.status == 400 and "is a lora" in body["error"], body
    assert (await client.get("/api/lm/download-progress/mm")).status == 404


async def test_a_version_already_in_the_library_is_409_with_its_path(app_for, library, civitai):
    from .civitai_app import place
    from .fixtures import wait_hashed

    version = civitai.add_version()
    path = place(library, version, "already_here")
    client = await app_for()
    await wait_hashed(client)
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 409 and body["file_path"] == path.as_posix(), body
    assert "already in the library" in body["error"]


# ------------------------------------------------------------------ control


async def test_cancel_removes_the_partial_file(app_for, library, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW)
    client = await app_for()
    started = await start_download(client, model_version_id=version.id)
    await wait_bytes(client, started["download_id"], 10_000)
    assert parts_in(library.loras)
    resp = await client.get("/api/lm/cancel-download-get", params={"download_id": started["download_id"]})
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "cancelled", body
    assert parts_in(library.loras) == []
    assert [p for p in library.loras.rglob("*") if p.is_file()] == []


async def test_pause_keeps_the_partial_file_and_resume_continues_with_range(app_for, library, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW)
    client = await app_for()
    started = await start_download(client, model_version_id=version.id)
    download_id = started["download_id"]
    await wait_bytes(client, download_id, 20_000)
    paused = await (await client.get("/api/lm/pause-download", params={"download_id": download_id})).json()
    assert paused["status"] == "paused"
    part = next(library.loras.rglob("*.part"))
    kept = part.stat().st_size
    assert kept > 0
    civitai.clear_faults()
    resumed = await (await client.get("/api/lm/resume-download", params={"download_id": download_id})).json()
    assert resumed["status"] in ("queued", "downloading", "verifying", "completed")
    done = await wait_status(client, download_id, "completed", "failed")
    assert done["status"] == "completed", done
    assert civitai.range_headers == [f"bytes={kept}-"]
    assert hashlib.sha256(open(done["file_path"], "rb").read()).hexdigest() == version.sha256


async def test_a_fourth_download_waits_while_three_run(app_for, library, civitai):
    versions = [civitai.add_version(tensor_bytes=BIG) for _ in range(4)]
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW, times=None)
    client = await app_for()
    ids = [(await start_download(client, model_version_id=v.id))["download_id"] for v in versions]

    async def three_running():
        listed = (await (await client.get("/api/lm/downloads")).json())["downloads"]
        statuses = {d["download_id"]: d["status"] for d in listed}
        running = [i for i in ids if statuses.get(i) == "downloading"]
        return statuses if len(running) == 3 else None

    statuses = await poll(three_running, timeout=10, what="three downloads running")
    assert statuses[ids[3]] == "queued"
    assert civitai.count("signed") == 3
    await client.get("/api/lm/cancel-download-get", params={"download_id": ids[0]})
    await wait_bytes(client, ids[3], 1)  # the queued one takes the free slot
    for download_id in ids[1:]:
        await client.get("/api/lm/cancel-download-get", params={"download_id": download_id})
    assert parts_in(library.loras) == []


async def test_polling_and_the_websocket_see_the_same_snapshots(app_for, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW * 2)
    client = await app_for()
    ws = await client.ws_connect("/ws/download-progress?id=same-1")
    started = await start_download(client, model_version_id=version.id, download_id="same-1")
    received = []
    while True:
        message = await asyncio.wait_for(ws.receive_json(), timeout=10)
        received.append(message)
        polled = await progress_of(client, "same-1")
        if polled["status"] == message["status"] and polled["bytes_downloaded"] == message["bytes_downloaded"]:
            assert {k: v for k, v in polled.items() if k != "success"} == message
        if message["status"] == "completed":
            break
    await ws.close()
    assert started["download_id"] == "same-1"
    assert received[-1] == {k: v for k, v in (await progress_of(client, "same-1")).items() if k != "success"}
    statuses = [m["status"] for m in received]
    assert "downloading" in statuses and statuses[-1] == "completed"
    assert all(m["type"] == "download_progress" for m in received)
    assert all(0 <= m["progress"] <= 100 for m in received)


async def test_the_same_file_twice_joins_the_active_download_or_is_409_under_another_id(app_for, library, civitai):
    version = civitai.add_version(tensor_bytes=BIG)
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW, times=None)
    client = await app_for()
    first = await start_download(client, model_version_id=version.id, download_id="one")
    again = await start_download(client, model_version_id=version.id)
    assert again["download_id"] == "one"
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id, "download_id": "two",
                                                             "wait": False})
    body = await resp.json()
    assert resp.status == 409 and body["code"] == "already_running" and body["download_id"] == "one", body
    assert (await client.get("/api/lm/download-progress/two")).status == 404
    await client.get("/api/lm/cancel-download-get", params={"download_id": first["download_id"]})
    assert parts_in(library.loras) == []


async def test_a_complete_part_left_by_an_earlier_run_is_verified_and_used(app_for, library, civitai):
    version = civitai.add_version()
    client = await app_for()
    target = library.loras / "SD 1.5" / "concept"
    target.mkdir(parents=True)
    part = target / f"{version.file_name}.part"
    part.write_bytes(version.content)  # every byte arrived, the rename did not happen
    state = {"version_id": version.id, "sha256": version.sha256, "file_params": {}}
    (target / f"{version.file_name}.part.json").write_text(json.dumps(state))
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 200, body
    assert civitai.range_headers == [f"bytes={len(version.content)}-"] and civitai.count("signed") == 1
    assert body["file_path"] == (target / version.file_name).as_posix() and parts_in(library.loras) == []


async def test_the_concurrency_limit_follows_the_setting(app_for, library, civitai):
    versions = [civitai.add_version(tensor_bytes=BIG) for _ in range(2)]
    civitai.fail_next("signed", kind="slow", bytes_per_second=SLOW, times=None)
    client = await app_for()
    resp = await client.post("/api/lm/settings", json={"download_concurrency": 1})
    assert resp.status == 200
    first = await start_download(client, model_version_id=versions[0].id)
    second = await start_download(client, model_version_id=versions[1].id)
    await wait_bytes(client, first["download_id"], 1)
    assert (await progress_of(client, second["download_id"]))["status"] == "queued"
    assert civitai.count("signed") == 1
    for started in (second, first):
        await client.get("/api/lm/cancel-download-get", params={"download_id": started["download_id"]})
    assert parts_in(library.loras) == []
