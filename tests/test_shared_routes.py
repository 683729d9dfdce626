"""Global routes: previews, settings, health, version, sockets, static files, i18n, pages."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from .fixtures import services_of


async def test_preview_serves_media_inside_the_library_only(make_client, library, tmp_path):
    library.add_lora("pic", preview="png")
    (library.loras / "notes.txt").write_text("secret")
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG")
    client = await make_client(library)
    ok = await client.get("/api/lm/previews", params={"path": str(library.loras / "pic.png")})
    assert ok.status == 200 and ok.headers["Content-Type"] == "image/png"
    assert "must-revalidate" in ok.headers["Cache-Control"] and ok.headers["ETag"]
    again = await client.get("/api/lm/previews", params={"path": str(library.loras / "pic.png")},
                             headers={"If-None-Match": ok.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/api/lm/previews", params={"path": str(outside)})).status == 403
    assert (await client.get("/api/lm/previews", params={"path": str(library.loras / "notes.txt")})).status == 403
    assert (await client.get("/api/lm/previews", params={"path": str(library.loras / "gone.png")})).status == 404
    traversal = str(library.loras) + "/../../outside.png"
    assert (await client.get("/api/lm/previews", params={"path": traversal})).status == 403
    assert (await client.get("/api/lm/previews")).status == 400


async def test_settings_round_trip_is_validated_and_hides_the_api_key(client):
    resp = await client.post("/api/lm/settings", json={"civitai_api_key": "sekrit-key", "language": "de",
                                                       "default_lora_strength": 0.75})
    assert resp.status == 200
    body = await resp.json()
    assert body["civitai_api_key_set"] is True
    assert "sekrit-key" not in json.dumps(body)
    got = await (await client.get("/api/lm/settings")).json()
    assert got["settings"]["language"] == "de" and got["settings"]["default_lora_strength"] == 0.75
    assert "civitai_api_key" not in got["settings"] and got["civitai_api_key_set"] is True
    path = services_of(client).settings.path
    assert json.loads(path.read_text())["civitai_api_key"] == "sekrit-key"


@pytest.mark.parametrize("payload", [
    {"unknown_key": 1}, {"language": "xx"}, {"default_lora_strength": "high"}, {"blur_mature_content": "yes"},
    {"mature_blur_level": "Z"}, {"download_concurrency": 99}, [], "text", {},
])
async def test_settings_reject_bad_values_with_400(client, payload):
    resp = await client.post("/api/lm/settings", json=payload)
    assert resp.status == 400
    assert (await resp.json())["success"] is False


async def test_settings_reject_malformed_json(client):
    resp = await client.post("/api/lm/settings", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_settings_post_from_another_site_is_refused(client):
    resp = await client.post("/api/lm/settings", json={"language": "fr"}, headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    resp = await client.post("/api/lm/settings", json={"language": "fr"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    assert (await (await client.get("/api/lm/settings")).json())["settings"]["language"] == "en"


async def test_health_check_and_version_info(client):
    health = await (await client.get("/api/lm/health-check")).json()
    assert health["success"] is True and health["ready"] == {"lora": True, "checkpoint": True, "embedding": True}
    version = await (await client.get("/api/lm/version-info")).json()
    major, rest = version["plugin_version"].split(".", 1)
    assert version["success"] is True and major.isdigit() and "-" in rest


async def test_version_info_states_the_api_level_the_browser_extension_needs(client):
    """Issue 14: the extension warns "backend outdated" below 1.1.4; ``version`` is plain semver."""
    version = await (await client.get("/api/lm/version-info")).json()
    assert version["version"] == version["api_version"]
    level = tuple(int(part) for part in version["version"].split("."))
    assert len(level) == 3 and level >= (1, 1, 4)


async def test_init_progress_socket_replays_the_last_payload_of_every_type(client):
    ws = await client.ws_connect("/ws/init-progress")
    messages = [await ws.receive_json(timeout=5) for _ in range(3)]
    assert {m["model_type"] for m in messages} == {"lora", "checkpoint", "embedding"}
    assert all(m["type"] == "init_progress" and m["ready"] is True for m in messages)
    await ws.close()


async def test_finished_hashes_are_announced_once_per_burst(make_client, library):
    client = await make_client(library)
    ws = await client.ws_connect("/ws/fetch-progress")
    for i in range(5):
        library.add_lora(f"to_hash_{i}")
    await client.post("/api/lm/loras/scan")
    seen: list[dict] = []
    while not any(m["type"] == "models_changed" and m.get("reason") == "hashed" for m in seen):
        seen.append(await ws.receive_json(timeout=10))
    progress = [m for m in seen if m["type"] == "hash_progress"]
    hashed = [m for m in seen if m.get("reason") == "hashed"]
    assert len(progress) == 1 and progress[0]["model_type"] == "lora" and "queued" in progress[0]
    assert len(hashed) == 1 and len(hashed[0]["paths"]) == 5
    await ws.close()


async def test_shutdown_is_not_held_by_an_open_socket(make_client, library):
    client = await make_client(library)
    ws = await client.ws_connect("/ws/fetch-progress")
    await asyncio.wait_for(client.server.app.shutdown(), timeout=5)
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_fetch_progress_socket_receives_models_changed(make_client, library):
    client = await make_client(library)
    ws = await client.ws_connect("/ws/fetch-progress")
    library.add_lora("new_one")
    await client.post("/api/lm/loras/scan")
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "models_changed" and msg["model_type"] == "lora"
    assert any(p.endswith("new_one.safetensors") for p in msg["paths"])
    await ws.close()


async def test_static_files_are_served_from_web_app_only(client):
    app_dir = services_of(client).plugin_dir / "web" / "app"
    app_dir.mkdir(parents=True, exist_ok=True)
    probe = app_dir / "_probe_test.js"
    probe.write_text("export const x = 1;\n")
    try:
        resp = await client.get("/lm/static/_probe_test.js")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/javascript")
    finally:
        probe.unlink()
    assert (await client.get("/lm/static/../../pyproject.toml")).status in (403, 404)
    assert (await client.get("/lm/static/%2e%2e/%2e%2e/pyproject.toml")).status in (403, 404)
    assert (await client.get("/lm/static/nope.js")).status == 404


async def test_i18n_messages_fall_back_to_english(client):
    body = await (await client.get("/api/lm/i18n", params={"lang": "xx"})).json()
    assert body["lang"] == "en" and body["messages"]["app"]["title"]
    langs = await (await client.get("/api/lm/i18n/languages")).json()
    assert "en" in langs["languages"]


async def test_page_renders_models_page_and_redirect(make_client, library):
    library.add_lora("paged")
    client = await make_client(library)
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "./loras"  # relative: kept under a proxy's sub-path (issue 12)
    for prefix in ("loras", "checkpoints", "embeddings"):
        page = await client.get(f"/{prefix}")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        html = await page.text()
        assert f'data-prefix="{prefix}"' in html
        assert (await client.get(f"/lm/{prefix}")).status == 200


async def test_page_shows_the_initializing_view_while_cold(aiohttp_client, library, tmp_path):
    from aiohttp import web
    from lm_plugin.py.app import register_routes
    from lm_plugin.py.app_services import build_services

    services = build_services(library.config(state_dir=tmp_path / "s"))
    app = web.Application()
    routes = web.RouteTableDef()
    _, controllers = register_routes(routes, services)
    app.add_routes(routes)
    for controller in controllers:  # attached, but nothing scanned yet
        controller.attach_service(services.library[controller.model_type])
    client = await aiohttp_client(app)
    html = await (await client.get("/loras")).text()
    assert 'data-initializing="true"' in html and 'id="initializing"' in html


async def test_translation_filter_is_registered_once_per_environment(client):
    from lm_plugin.py.app import register_routes

    services = services_of(client)
    env = services.pages.env
    first = env.filters["t"]
    _, controllers = register_routes(web.RouteTableDef(), services)
    for controller in controllers:
        controller.attach_service(services.library[controller.model_type])
    assert env.filters["t"] is first and services.pages.env is env
