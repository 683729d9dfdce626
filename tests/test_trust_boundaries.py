"""Trust boundaries (issue 9): no web page, rebound name or other local origin uses the library.

Each finding of the issue is reproduced here first: DNS rebinding (Host), origins and fetch
metadata on changes (GET ones included), cross-site WebSockets, protective headers, settings
that steer the CivitAI key, nested JSON, private state files and client disconnects.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import stat

import aiohttp
import pytest
from aiohttp import web

from .civitai_fixtures import civitai  # noqa: F401
from .fixtures import services_of
from .mutation_helpers import disk_snapshot

REBOUND = "attacker.example:8188"
SOCKETS = ("/ws/fetch-progress", "/ws/init-progress", "/ws/download-progress")
# Every GET route that changes something, with a query that would make it act.
STATE_CHANGING_GETS = (
    "/api/lm/loras/auto-organize",
    "/api/lm/download-model-get?model_version_id=1",
    "/api/lm/pause-download?download_id=abc",
    "/api/lm/resume-download?download_id=abc",
    "/api/lm/cancel-download-get?download_id=abc",
)
OTHER_LOCAL_ORIGIN = (
    {"Sec-Fetch-Site": "same-site"},  # <img src> from a page on another port of 127.0.0.1
    {"Sec-Fetch-Site": "cross-site"},
    {"Referer": "http://evil.example/page.html"},  # no Origin, no fetch metadata, foreign Referer
    {"Referer": "http://127.0.0.1:3000/"},  # another local port
    {"Origin": "http://127.0.0.1:3000"},
    {"Origin": "null"},
)


@pytest.fixture
async def lib_client(make_client, library):
    """Two LoRAs auto-organize would move (they have a base model and a tag)."""
    library.add_lora("alpha", sidecar={"base_model": "SDXL 1.0", "tags": ["style"]}, preview="webp")
    library.add_lora("beta", sidecar={"base_model": "SD 1.5", "tags": ["character"]})
    return await make_client(library)


def alpha(library) -> str:
    return str(library.loras / "alpha.safetensors").replace(os.sep, "/")


async def assert_refused(resp: aiohttp.ClientResponse, code: str) -> dict:
    body = await resp.json()
    assert resp.status == 403, body
    assert body["success"] is False and body["code"] == code and body["error"]
    return body


# --- 1. DNS rebinding: the Host allow-list ------------------------------------------------------


async def test_a_rebound_name_cannot_read_the_library(lib_client):
    for path in ("/api/lm/loras/list", "/api/lm/settings", "/api/lm/loras/top-tags", "/lm/static/pages/library.js"):
        body = await assert_refused(await lib_client.get(path, headers={"Host": REBOUND}), "host_not_allowed")
        assert "attacker.example" in body["error"] and "--allowed-host" in body["error"]


async def test_a_rebound_name_cannot_change_the_library(lib_client, library):
    before = disk_snapshot(library.base)
    same_origin = {"Host": REBOUND, "Origin": f"http://{REBOUND}", "Sec-Fetch-Site": "same-origin"}
    resp = await lib_client.post("/api/lm/loras/save-metadata", json={"file_path": alpha(library), "notes": "x"},
                                 headers=same_origin)
    await assert_refused(resp, "host_not_allowed")
    resp = await lib_client.post("/api/lm/settings", json={"language": "de"}, headers=same_origin)
    await assert_refused(resp, "host_not_allowed")
    assert disk_snapshot(library.base) == before
    assert services_of(lib_client).settings.get("language") == "en"


async def test_a_rebound_name_gets_a_plain_page_saying_how_to_allow_it(lib_client):
    resp = await lib_client.get("/loras", headers={"Host": REBOUND, "Accept": "text/html,*/*"})
    text = await resp.text()
    assert resp.status == 403 and resp.content_type == "text/html"
    assert "attacker.example" in text and "--allowed-host attacker.example" in text
    assert "LM_ALLOWED_HOSTS" in text and "allowed_hosts" in text


@pytest.mark.parametrize("path", SOCKETS)
async def test_a_rebound_name_cannot_open_a_socket(lib_client, path):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await lib_client.ws_connect(path, headers={"Host": REBOUND, "Origin": f"http://{REBOUND}"})
    assert caught.value.status == 403


@pytest.mark.parametrize("host", [
    "localhost:8188", "LOCALHOST", "127.0.0.1:8188", "[::1]:8188", "::1", "192.168.1.20:8188", "10.0.0.7",
    "comfy.localhost:8188",
])
async def test_loopback_lan_addresses_and_localhost_names_pass(lib_client, library, host):
    origin = f"http://[{host}]" if host.count(":") > 1 and not host.startswith("[") else f"http://{host}"
    resp = await lib_client.get("/api/lm/loras/list", headers={"Host": host})
    assert resp.status == 200
    page = await lib_client.get("/loras", headers={"Host": host, "Accept": "text/html"})
    assert page.status == 200
    resp = await lib_client.post("/api/lm/loras/add-tags", json={"file_path": alpha(library), "tags": [host.lower()]},
                                 headers={"Host": host, "Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert resp.status == 200, await resp.text()
    ws = await lib_client.ws_connect("/ws/init-progress", headers={"Host": host, "Origin": origin})
    await ws.close()


async def test_a_name_configured_by_the_host_passes_and_others_do_not(make_client, library):
    client = await make_client(library, allowed_hosts=("studio.lan", "*.farm.example"))
    for host in ("studio.lan:8188", "STUDIO.LAN", "gpu1.farm.example"):
        assert (await client.get("/api/lm/loras/list", headers={"Host": host})).status == 200
        ws = await client.ws_connect("/ws/fetch-progress", headers={"Host": host, "Origin": f"http://{host}"})
        await ws.close()
    for host in ("studio.lan.attacker.example", "farm.example.evil", "other.lan"):
        await assert_refused(await client.get("/api/lm/loras/list", headers={"Host": host}), "host_not_allowed")


async def test_names_from_the_settings_file_and_the_environment_pass(make_client, library, tmp_path, monkeypatch):
    state = tmp_path / "state"
    state.mkdir()
    (state / "settings.json").write_text(json.dumps({"allowed_hosts": ["nas-box"]}), encoding="utf-8")
    monkeypatch.setenv("LM_ALLOWED_HOSTS", "render.lan, laptop.local")
    client = await make_client(library)
    for host in ("nas-box:8188", "render.lan", "laptop.local:8188"):
        assert (await client.get("/api/lm/loras/list", headers={"Host": host})).status == 200
    await assert_refused(await client.get("/api/lm/loras/list", headers={"Host": "evil.lan"}), "host_not_allowed")


# --- 2. and 3. changes from other sites and other local origins ----------------------------------


async def test_the_origin_check_compares_with_the_allow_list_not_with_host(lib_client, library):
    before = disk_snapshot(library.base)
    for headers in ({"Origin": "http://attacker.example:8188"}, {"Origin": f"http://{REBOUND}", "Host": "localhost:8188"}):
        resp = await lib_client.post("/api/lm/loras/save-metadata", json={"file_path": alpha(library), "notes": "x"},
                                     headers=headers)
        await assert_refused(resp, "cross_site_request")
    assert disk_snapshot(library.base) == before


@pytest.mark.parametrize("headers", OTHER_LOCAL_ORIGIN)
async def test_state_changing_gets_from_another_origin_are_refused_and_change_nothing(lib_client, library, headers):
    before = disk_snapshot(library.base)
    for path in STATE_CHANGING_GETS:
        await assert_refused(await lib_client.get(path, headers=headers), "cross_site_request")
    assert disk_snapshot(library.base) == before
    downloads = await (await lib_client.get("/api/lm/downloads")).json()
    assert downloads["downloads"] == []


async def test_the_same_get_without_browser_metadata_still_works(lib_client, library):
    """The refusals above are the guard's: curl, scripts and ComfyUI's backend still organize."""
    resp = await lib_client.get("/api/lm/loras/auto-organize")
    body = await resp.json()
    assert resp.status == 200, body
    assert (library.loras / "SDXL 1.0" / "style" / "alpha.safetensors").is_file()


@pytest.mark.parametrize("headers", OTHER_LOCAL_ORIGIN)
async def test_posts_from_another_origin_are_refused(lib_client, library, headers):
    before = disk_snapshot(library.base)
    resp = await lib_client.post("/api/lm/loras/delete", json={"file_path": alpha(library)}, headers=headers)
    await assert_refused(resp, "cross_site_request")
    assert disk_snapshot(library.base) == before


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed into the address bar, a bookmark
    {},  # curl, scripts
])
async def test_same_origin_and_non_browser_changes_pass(lib_client, library, headers):
    resp = await lib_client.post("/api/lm/loras/add-tags", json={"file_path": alpha(library), "tags": ["ok"]},
                                 headers=headers)
    assert resp.status == 200, await resp.text()


async def test_this_servers_own_origin_and_referer_pass(lib_client, library):
    own = f"http://{lib_client.server.host}:{lib_client.server.port}"
    for headers in ({"Origin": own}, {"Referer": f"{own}/loras?x=1"}):
        resp = await lib_client.post("/api/lm/loras/add-tags", json={"file_path": alpha(library), "tags": ["mine"]},
                                     headers=headers)
        assert resp.status == 200, await resp.text()


async def test_a_text_plain_body_is_not_read_as_json(lib_client, library):
    before = disk_snapshot(library.base)
    body = json.dumps({"file_path": alpha(library), "notes": "from a form"})
    resp = await lib_client.post("/api/lm/loras/save-metadata", data=body, headers={"Content-Type": "text/plain"})
    data = await resp.json()
    assert resp.status == 415 and data["code"] == "unsupported_media_type" and "application/json" in data["error"]
    resp = await lib_client.post("/api/lm/loras/save-metadata", data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    assert disk_snapshot(library.base) == before


@pytest.mark.parametrize("origin", ["chrome-extension://abcdefghijklmnop", "moz-extension://0b9e1c2a-77f0-4d5b"])
async def test_browser_extensions_may_use_the_download_routes_only(lib_client, library, origin):
    headers = {"Origin": origin, "Sec-Fetch-Site": "cross-site"}
    # past the guard: the answer is the route's own (an unknown download, bad input)
    resp = await lib_client.get("/api/lm/cancel-download-get?download_id=nope", headers=headers)
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    resp = await lib_client.post("/api/lm/download-model", json={}, headers=headers)
    assert resp.status == 400
    ws = await lib_client.ws_connect("/ws/download-progress", headers={"Origin": origin})
    await ws.close()
    # and nothing else
    resp = await lib_client.post("/api/lm/loras/delete", json={"file_path": alpha(library)}, headers=headers)
    await assert_refused(resp, "cross_site_request")
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await lib_client.ws_connect("/ws/fetch-progress", headers={"Origin": origin})


async def test_an_origin_configured_by_the_host_may_change_the_library(make_client, library):
    library.add_lora("alpha")
    client = await make_client(library, allowed_origins=("http://studio.lan:3000",))
    resp = await client.post("/api/lm/loras/add-tags", json={"file_path": alpha(library), "tags": ["x"]},
                             headers={"Origin": "http://studio.lan:3000", "Sec-Fetch-Site": "cross-site"})
    assert resp.status == 200, await resp.text()
    resp = await client.post("/api/lm/loras/add-tags", json={"file_path": alpha(library), "tags": ["x"]},
                             headers={"Origin": "http://studio.lan:3001"})
    await assert_refused(resp, "cross_site_request")


# --- 4. WebSockets ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:3000", "null"])
async def test_sockets_refuse_other_origins(lib_client, path, origin):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await lib_client.ws_connect(path, headers={"Origin": origin})
    assert caught.value.status == 403


@pytest.mark.parametrize("path", SOCKETS)
async def test_sockets_accept_this_servers_pages_and_non_browser_clients(lib_client, path):
    own = f"http://{lib_client.server.host}:{lib_client.server.port}"
    for headers in ({"Origin": own}, {}):
        ws = await lib_client.ws_connect(path, headers=headers)
        await ws.close()


# --- 5. headers ---------------------------------------------------------------------------------


async def test_every_answer_says_nosniff_and_the_referrer_policy(lib_client, library):
    preview = str(library.loras / "alpha.webp")
    for path, params in (("/api/lm/loras/list", None), ("/lm/static/pages/library.js", None),
                         ("/api/lm/previews", {"path": preview}), ("/api/lm/loras/metadata", {"file_path": "relative"}),
                         ("/no/such/route", None), ("/", None)):
        resp = await lib_client.get(path, params=params, allow_redirects=False)
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", path
        assert resp.headers.get("Referrer-Policy") == "same-origin", path


async def test_pages_allow_only_our_own_resources_and_no_foreign_frames(lib_client):
    resp = await lib_client.get("/loras")
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "img-src 'self'", "media-src 'self'",
                      "frame-ancestors 'self'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "*" not in csp
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"


# --- settings that steer the key ----------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"civitai_api_base": "http://127.0.0.1:9/api/v1"},
    {"preview_url_hosts": ["127.0.0.1"]},
    {"allowed_hosts": ["attacker.example"]},
    {"allowed_origins": ["http://evil.example"]},
    {"language": "de", "civitai_api_base": "http://127.0.0.1:9/api/v1"},
])
async def test_settings_that_steer_credentials_or_fetches_are_not_writable_over_http(client, change):
    settings = services_of(client).settings
    before = settings.path.read_bytes() if settings.path.exists() else None
    resp = await client.post("/api/lm/settings", json=change)
    body = await resp.json()
    assert resp.status == 403 and body["code"] == "setting_not_writable", body
    assert "settings file" in body["error"]
    assert (settings.path.read_bytes() if settings.path.exists() else None) == before
    view = await (await client.get("/api/lm/settings")).json()
    assert {"civitai_api_base", "preview_url_hosts", "allowed_hosts", "allowed_origins"} <= set(view["read_only"])
    assert view["settings"]["language"] == "en"


async def test_the_key_never_reaches_another_host_whatever_http_says(make_client, library, aiohttp_server, monkeypatch):
    """A sink records every request; CivitAI here redirects its answers to the sink."""
    seen: list[dict] = []

    async def sink(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "authorization": request.headers.get("Authorization")})
        return web.json_response({"id": 1, "modelId": 2, "files": []})

    sink_app = web.Application()
    sink_app.router.add_route("*", "/{tail:.*}", sink)
    sink_server = await aiohttp_server(sink_app)
    sink_base = f"http://127.0.0.1:{sink_server.port}"

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{sink_base}/stolen{request.path}")

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", redirect)
    upstream = await aiohttp_server(upstream_app)
    monkeypatch.setenv("CIVITAI_API_BASE", f"http://127.0.0.1:{upstream.port}/api/v1")
    library.add_lora("hashed", sidecar={"sha256": "a" * 64})
    client = await make_client(library)
    resp = await client.post("/api/lm/settings", json={"civitai_api_key": "sekrit-key"})
    assert resp.status == 200
    resp = await client.post("/api/lm/settings", json={"civitai_api_base": f"{sink_base}/api/v1"})
    assert resp.status == 403
    await client.get(f"/api/lm/loras/civitai/model/hash/{'a' * 64}")
    await client.get("/api/lm/loras/civitai/model/version/5")
    await client.post("/api/lm/loras/fetch-civitai", json={"file_path": str(library.loras / "hashed.safetensors")})
    await client.post("/api/lm/download-model", json={"model_version_id": 5})
    assert seen, "the redirects reached the sink"
    assert all(r["authorization"] is None for r in seen), seen


# --- 11. private state files; the demo keeps its own ---------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
async def test_settings_and_cache_are_readable_by_their_owner_only(client):
    services = services_of(client)
    resp = await client.post("/api/lm/settings", json={"civitai_api_key": "sekrit-key"})
    assert resp.status == 200
    assert stat.S_IMODE(services.settings.path.stat().st_mode) == 0o600
    cache = services.cache.path
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    for companion in (cache.with_name(cache.name + "-wal"), cache.with_name(cache.name + "-shm")):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
async def test_a_new_settings_folder_is_private(tmp_path):
    from lm_plugin.py.services.shared.settings_manager import SettingsManager

    settings = SettingsManager(path=tmp_path / "config" / "comfyui-model-library" / "settings.json")
    await settings.update({"civitai_api_key": "sekrit-key"})
    assert stat.S_IMODE(settings.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
async def test_an_existing_world_readable_settings_file_is_tightened_on_write(client):
    path = services_of(client).settings.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    assert (await client.post("/api/lm/settings", json={"language": "fr"})).status == 200
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_demo_uses_its_own_settings_and_cache(tmp_path):
    from lm_plugin.py.host.standalone import config_from_args, parse_args
    from lm_plugin.py.services.shared.settings_manager import default_settings_path

    demo = tmp_path / "demo"
    config = config_from_args(parse_args(["--demo", "--demo-dir", str(demo)]))
    assert config.settings_path is not None and demo in config.settings_path.parents
    assert config.cache_dir is not None and demo in config.cache_dir.parents
    assert not default_settings_path().exists()


# --- 6. clear errors, not 500s -------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/api/lm/loras/save-metadata", "/api/lm/settings", "/api/lm/download-model",
                                   "/api/lm/loras/auto-organize", "/api/lm/undo-delete"])
@pytest.mark.parametrize("depth", [70, 100_000])
async def test_deeply_nested_json_is_a_400(lib_client, route, depth):
    body = '{"a":' * depth + "1" + "}" * depth
    resp = await lib_client.post(route, data=body, headers={"Content-Type": "application/json"})
    data = await resp.json()
    assert resp.status == 400 and data["code"] == "invalid_input" and "nested" in data["error"]


async def test_an_oversized_json_body_is_a_400(lib_client):
    body = json.dumps({"file_paths": ["x" * 1000] * 9000})
    resp = await lib_client.post("/api/lm/loras/bulk-delete", data=body, headers={"Content-Type": "application/json"})
    data = await resp.json()
    assert resp.status == 400 and "too large" in data["error"]


async def test_a_client_that_disconnects_mid_request_is_logged_at_debug(library, tmp_path, caplog):
    """On a real server (as standalone and ComfyUI run it: AppRunner + TCPSite) a body cut
    off by the client raises ConnectionResetError in the handler; nothing is logged as an error."""
    from lm_plugin.py.app import build_app

    from .fixtures import wait_ready

    caplog.set_level(logging.DEBUG)
    app = build_app(library.config(state_dir=tmp_path / "state"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await wait_ready(app)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/lm/loras/save-metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"file_path\": ")
        await writer.drain()
        await asyncio.sleep(0.05)  # the handler is reading the body
        writer.close()
        for _ in range(500):
            if any("client disconnected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # what aiohttp logs after the handler returned
    finally:
        await runner.cleanup()
    assert any("client disconnected" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- 8. downloads only write files the library lists ---------------------------------------------


@pytest.mark.parametrize("name", [".bashrc", "payload.html", "notes.txt", "model.safetensors.exe", "lora.ckpt"])
async def test_a_download_named_like_no_lora_is_refused_before_any_byte(make_client, library, civitai, monkeypatch, name):
    from .civitai_app import fast_limiter, point_app_at

    point_app_at(monkeypatch, civitai)
    version = civitai.add_version(civitai.add_model(name="Hostile", type="LORA"), file_name=name)
    client = await make_client(library)
    fast_limiter(client)
    before = disk_snapshot(library.base)
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 400 and body["code"] == "invalid_input", body
    assert "not a lora file" in body["error"] and ".safetensors" in body["error"]
    assert disk_snapshot(library.base) == before
    assert civitai.count("download") == 0
    assert (await (await client.get("/api/lm/downloads")).json())["downloads"] == []


async def test_a_checkpoint_download_may_use_any_checkpoint_extension(make_client, library, civitai, monkeypatch):
    from .civitai_app import fast_limiter, point_app_at

    point_app_at(monkeypatch, civitai)
    version = civitai.add_version(civitai.add_model(name="Old", type="Checkpoint"), file_name="old_model.ckpt")
    client = await make_client(library)
    fast_limiter(client)
    resp = await client.post("/api/lm/download-model", json={"model_version_id": version.id})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["file_path"].endswith("/old_model.ckpt")
