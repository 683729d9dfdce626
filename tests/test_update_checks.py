"""Update checks (issue 14, part 1): newer versions found with the batch model endpoint, the
same-base-model rule on and off, ignore lists per model and per version, progress, cancel,
the background check and its persistence across a restart, download-update with and
without replace (and its undo), and the number of CivitAI calls for 1,000 models."""
from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from .civitai_app import fast_limiter, place, point_app_at, poll
from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer, FakeVersion, start_civitai_server
from .fixtures import services_of

PREFIX = "/api/lm/loras"


def sidecar_for(civitai: CivitaiTestServer, version: FakeVersion) -> dict:
    """A sidecar as a refresh writes it: the version's CivitAI block and its base model."""
    return {
        "file_name": version.file_name.rsplit(".", 1)[0], "model_name": civitai.models[version.model_id].name,
        "base_model": version.base_model, "sha256": version.sha256, "from_civitai": True,
        "civitai": civitai.version_json(version.id),
    }


@pytest.fixture
def detail_tweaker(civitai: CivitaiTestServer):
    """Model 500 with an SD 1.5 v1 (January), an SDXL v2 (February) and an SD 1.5 v3 (March)."""
    model = civitai.add_model(model_id=500, name="Detail Tweaker")
    v1 = civitai.add_version(model, version_id=501, name="v1", base_model="SD 1.5", published_at="2025-01-01T00:00:00.000Z")
    v2 = civitai.add_version(model, version_id=502, name="v2 XL", base_model="SDXL 1.0",
                             published_at="2025-02-01T00:00:00.000Z", size_kb=2048.0)
    v3 = civitai.add_version(model, version_id=503, name="v3", base_model="SD 1.5",
                             published_at="2025-03-01T00:00:00.000Z", size_kb=1024.0)
    return v1, v2, v3


@pytest.fixture
async def app_for(make_client, library, civitai: CivitaiTestServer, monkeypatch):
    point_app_at(monkeypatch, civitai)

    async def factory(**options):
        client = await make_client(library, **options)
        fast_limiter(client)
        return client

    return factory


async def check(client) -> dict:
    resp = await client.post(f"{PREFIX}/check-updates", json={"wait": True})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def updates_of(client, path) -> list[dict]:
    resp = await client.get(f"{PREFIX}/updates", params={"file_path": str(path), "include_ignored": "true"})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["updates"]


async def listing(client, **params) -> dict:
    resp = await client.get(f"{PREFIX}/list", params={"page_size": "100", **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def flags(client) -> dict[str, bool]:
    return {item["file_name"]: item["has_update"] for item in (await listing(client))["items"]}


async def test_a_newer_version_of_the_same_base_model_is_an_update(app_for, library, civitai, detail_tweaker):
    v1, _, v3 = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    library.add_lora("unrelated")
    client = await app_for()
    civitai.reset_counts()
    summary = await check(client)
    assert summary["status"] == "completed" and summary["total"] == 1 and summary["with_updates"] == 1
    assert civitai.count("models") == 1 and civitai.count() == 1
    [update] = await updates_of(client, old)
    assert update["model_id"] == 500 and update["base_model"] == "SD 1.5" and update["has_update"] is True
    assert update["newest_local_version_id"] == 501
    # the SDXL version is newer too, but of another base model
    assert [(v["version_id"], v["base_model"], v["size"], v["published_at"][:10]) for v in update["versions"]] == [
        (503, "SD 1.5", 1024 * 1024, "2025-03-01")]
    assert await flags(client) == {"tweaker_v1": True, "unrelated": False}
    filtered = await listing(client, has_update="true")
    assert [item["file_name"] for item in filtered["items"]] == ["tweaker_v1"] and filtered["total"] == 1


async def test_without_the_same_base_model_rule_every_newer_version_counts(app_for, library, civitai, detail_tweaker):
    _, v2, _ = detail_tweaker
    path = place(library, v2, "tweaker_xl", sidecar=sidecar_for(civitai, v2))
    client = await app_for()
    await check(client)
    # same base model (default): v3 is SD 1.5, the library's newest is SDXL → no update
    [update] = await updates_of(client, path)
    assert update["versions"] == [] and update["has_update"] is False
    assert await flags(client) == {"tweaker_xl": False}
    calls = civitai.count()
    resp = await client.post("/api/lm/settings", json={"update_same_base_model": False})
    assert resp.status == 200, await resp.text()
    [update] = await updates_of(client, path)
    assert [v["version_id"] for v in update["versions"]] == [503] and update["base_model"] == ""
    assert await flags(client) == {"tweaker_xl": True}
    assert civitai.count() == calls  # the rule applies to what the last check stored: no new call


async def test_the_newest_local_version_decides_not_each_file(app_for, library, civitai, detail_tweaker):
    v1, _, v3 = detail_tweaker
    place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    place(library, v3, "tweaker_v3", folder="newer", sidecar=sidecar_for(civitai, v3))
    client = await app_for()
    await check(client)
    assert await flags(client) == {"tweaker_v1": False, "tweaker_v3": False}
    assert (await listing(client, has_update="true"))["total"] == 0


async def test_ignoring_a_version_hides_it_and_survives_unignore(app_for, library, civitai, detail_tweaker):
    v1, _, _ = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/ignore-update", json={"version_id": 503, "ignore": True})
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"success": True, "version_id": 503, "model_id": 500, "ignored": True, "changed": True}
    [update] = await updates_of(client, old)
    assert update["has_update"] is False and update["versions"][0]["ignored"] is True
    assert await flags(client) == {"tweaker_v1": False}
    assert (await (await client.get(f"{PREFIX}/updates")).json())["updates"] == []
    await client.post(f"{PREFIX}/ignore-update", json={"version_id": 503, "ignore": False})
    assert await flags(client) == {"tweaker_v1": True}


async def test_ignoring_a_model_hides_all_its_versions(app_for, library, civitai, detail_tweaker):
    v1, _, _ = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    await client.post("/api/lm/settings", json={"update_same_base_model": False})
    resp = await client.post(f"{PREFIX}/ignore-update", json={"model_id": 500})
    assert resp.status == 200 and (await resp.json())["ignored"] is True
    [update] = await updates_of(client, old)
    assert update["ignored"] is True and update["has_update"] is False and len(update["versions"]) == 2
    assert (await listing(client, has_update="true"))["total"] == 0


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"version_id": 999}, 404, "no checked CivitAI model has a version 999"),
    ({"model_id": 77}, 404, "no checked CivitAI model has the id 77"),
    ({}, 400, "give exactly one of 'model_id' and 'version_id'"),
    ({"model_id": 500, "version_id": 503}, 400, "give exactly one of 'model_id' and 'version_id'"),
    ({"model_id": "x"}, 400, None),
    ({"model_id": 500, "ignore": "yes"}, 400, "'ignore' must be true or false"),
])
async def test_ignore_update_rejects_bad_requests(app_for, library, civitai, detail_tweaker, body, status, error):
    v1, _, _ = detail_tweaker
    place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/ignore-update", json=body)
    assert resp.status == status
    data = await resp.json()
    assert data["success"] is False
    if error:
        assert data["error"] == error


async def test_progress_travels_over_the_socket_and_polling(app_for, library, civitai, detail_tweaker):
    v1, _, _ = detail_tweaker
    place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    idle = await (await client.get(f"{PREFIX}/check-updates-progress")).json()
    assert idle["status"] == "idle"
    ws = await client.ws_connect("/ws/fetch-progress")
    resp = await client.post(f"{PREFIX}/check-updates", json={})
    assert resp.status == 200 and (await resp.json())["status"] in ("started", "processing", "completed")
    seen = []
    while not seen or seen[-1]["status"] != "completed":
        message = await ws.receive_json(timeout=10)
        if message.get("type") == "update_check_progress":
            seen.append(message)
    assert seen[-1]["processed"] == seen[-1]["total"] == 1 and seen[-1]["calls"] == 1
    await ws.close()
    polled = await (await client.get("/api/lm/checkpoints/check-updates-progress")).json()
    assert polled["status"] == "completed" and polled["job_id"] == seen[-1]["job_id"]


async def test_a_second_check_while_one_runs_is_409_and_cancel_stops_it(app_for, library, civitai, detail_tweaker):
    v1, _, _ = detail_tweaker
    place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    civitai.fail_next("models", kind="hang")
    first = await client.post(f"{PREFIX}/check-updates", json={})
    assert first.status == 200
    second = await client.post(f"{PREFIX}/check-updates", json={})
    assert second.status == 409 and (await second.json())["code"] == "already_running"
    resp = await client.post(f"{PREFIX}/cancel-update-check")
    assert (await resp.json())["cancelled"] is True

    async def cancelled():
        data = await (await client.get(f"{PREFIX}/check-updates-progress")).json()
        return data["status"] == "cancelled"

    await poll(cancelled, what="the check to be cancelled")
    assert services_of(client).update_store.last_check_at is None  # an unfinished check is no check


async def test_background_check_runs_after_the_first_scan_and_results_survive_a_restart(
    app_for, library, civitai, detail_tweaker
):
    v1, _, _ = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    civitai.reset_counts()
    client = await app_for(update_check_delay=0)
    store = services_of(client).update_store

    async def checked():
        data = await (await client.get(f"{PREFIX}/check-updates-progress")).json()
        return data if data["status"] == "completed" else None

    background = await poll(checked, what="the background check")
    assert background["background"] is True and store.last_check_at is not None
    assert civitai.count("models") == 1
    await client.post(f"{PREFIX}/ignore-update", json={"version_id": 503})
    await client.close()

    # a restart: the store is read back, and a check less than a day old is not repeated
    again = await app_for(update_check_delay=0)
    [update] = await updates_of(again, old)
    assert [v["version_id"] for v in update["versions"]] == [503] and update["versions"][0]["ignored"] is True
    assert services_of(again).update_scheduler.next_due() > services_of(again).update_store.last_check_at
    resp = await again.post(f"{PREFIX}/ignore-update", json={"version_id": 503, "ignore": False})
    assert resp.status == 200
    assert await flags(again) == {"tweaker_v1": True}
    assert civitai.count("models") == 1


async def test_background_checks_can_be_turned_off(app_for, library, civitai, detail_tweaker, tmp_path):
    v1, _, _ = detail_tweaker
    place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    (tmp_path / "state").mkdir(parents=True, exist_ok=True)
    (tmp_path / "state" / "settings.json").write_text('{"update_check_interval": "off"}', encoding="utf-8")
    civitai.reset_counts()
    client = await app_for(update_check_delay=0)
    assert services_of(client).update_scheduler.next_due() is None
    # the manual check still works
    await check(client)
    assert civitai.count("models") == 1


async def test_download_update_puts_the_new_version_beside_the_old_one(app_for, library, civitai, detail_tweaker):
    v1, _, v3 = detail_tweaker
    old = place(library, v1, "tweaker_v1", folder="style", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/download-update", json={"file_path": str(old), "version_id": 503})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["status"] == "completed" and data["replaced"] is False and data["batch_id"] is None
    new = old.parent / v3.file_name
    assert data["file_path"] == str(new).replace("\\", "/") and new.read_bytes() == v3.content
    assert old.is_file()  # the old version stays
    assert await flags(client) == {"tweaker_v1": False, v3.file_name.rsplit(".", 1)[0]: False}


async def test_download_update_with_replace_trashes_the_old_file_recoverably(app_for, library, civitai, detail_tweaker):
    v1, _, v3 = detail_tweaker
    old = place(library, v1, "tweaker_v1", folder="style", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    resp = await client.post(f"{PREFIX}/download-update", json={"file_path": str(old), "version_id": 503, "replace": True})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["replaced"] is True and data["batch_id"]
    new = old.parent / v3.file_name
    assert new.is_file() and not old.exists() and not old.with_suffix(".metadata.json").exists()
    assert [item["file_name"] for item in (await listing(client))["items"]] == [new.stem]
    undo = await client.post("/api/lm/undo-delete", json={"batch_id": data["batch_id"]})
    assert undo.status == 200, await undo.text()
    assert old.read_bytes() == v1.content and old.with_suffix(".metadata.json").is_file()
    assert sorted(item["file_name"] for item in (await listing(client))["items"]) == sorted([new.stem, "tweaker_v1"])


async def test_a_failed_update_download_keeps_the_old_file(app_for, library, civitai, detail_tweaker):
    v1, _, _ = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    await check(client)
    civitai.fail_next("signed", kind="wrong_bytes", times=None)
    resp = await client.post(f"{PREFIX}/download-update", json={"file_path": str(old), "version_id": 503, "replace": True})
    assert resp.status >= 400
    assert (await resp.json())["success"] is False
    assert old.is_file()


@pytest.mark.parametrize(("body", "status"), [
    ({"version_id": 503}, 400),
    ({"file_path": "/etc/passwd", "version_id": 503}, 403),
    ({"file_path": "FILE", "version_id": 0}, 400),
    ({"file_path": "FILE"}, 400),
    ({"file_path": "FILE", "version_id": 501}, 400),
    ({"file_path": "FILE", "version_id": 503, "replace": "yes"}, 400),
])
async def test_download_update_rejects_bad_requests(app_for, library, civitai, detail_tweaker, body, status):
    v1, _, _ = detail_tweaker
    old = place(library, v1, "tweaker_v1", sidecar=sidecar_for(civitai, v1))
    client = await app_for()
    body = {k: (str(old) if v == "FILE" else v) for k, v in body.items()}
    resp = await client.post(f"{PREFIX}/download-update", json=body)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["success"] is False
    assert old.is_file() and civitai.count("download") == 0


async def test_a_thousand_models_are_checked_in_ten_calls(make_client, library, aiohttp_server, monkeypatch):
    """The closing note's figure: 1,000 CivitAI models, ``GET /models?ids=`` 100 at a time."""
    server = await start_civitai_server(aiohttp_server, synthetic_models=0)
    point_app_at(monkeypatch, server)
    model = server.add_model(model_id=7, name="Seven")
    server.add_version(model, version_id=70, published_at="2025-01-01T00:00:00.000Z")
    server.add_version(model, version_id=71, published_at="2025-02-01T00:00:00.000Z")
    for i in range(1000):
        mid = 7 if i == 0 else 1000 + i
        library.add_lora(f"m{i:04d}", folder=f"f{i % 10}", values=2, sidecar={
            "base_model": "SD 1.5", "from_civitai": True,
            "civitai": server.version_json(70) if i == 0 else {"id": 50_000 + i, "modelId": mid, "baseModel": "SD 1.5"},
        })
    client = await make_client(library)
    fast_limiter(client)
    server.reset_counts()
    summary = await check(client)
    assert summary["total"] == 1000 and summary["processed"] == 1000 and summary["failed"] == 0
    assert summary["calls"] == 10 and server.count("models") == 10 and server.count() == 10
    sizes = [len(parse_qs(r.query)["ids"][0].split(",")) for r in server.requests]
    assert sizes == [100] * 10
    assert summary["with_updates"] == 1
    assert (await listing(client, has_update="true"))["total"] == 1
