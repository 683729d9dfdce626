"""Mutation routes (issue 3): success, bad input, outside the library, cross-site, missing
model and conflict for each, and after every successful mutation the index equals a
fresh scan of the disk.
"""
from __future__ import annotations

import io
import json
import os
import shutil

import pytest
from aiohttp import FormData, web
from PIL import Image

from .fixtures import png_bytes, services_of
from .mutation_helpers import CROSS_SITE_HEADERS, assert_matches_fresh_scan, disk_snapshot, get_json

WRONG_SHA = "0" * 64


@pytest.fixture
async def lib_client(make_client, library):
    """A small library of every type, with sidecars, previews and a .civitai.info."""
    library.add_lora("alpha", "style", preview="webp", sidecar={
        "model_name": "Alpha", "tags": ["style"], "custom_key": {"kept": True}, "file_name": "alpha",
        "file_path": str(library.loras / "style" / "alpha.safetensors")})
    (library.loras / "style" / "alpha.civitai.info").write_text(json.dumps({"id": 5, "model": {"name": "A"}}))
    library.add_lora("beta", "character", preview="png", sidecar={"tags": ["character"]})
    library.add_lora("gamma")
    library.add_checkpoint("base_xl", preview="png")
    library.add_diffusion_model("flux_dev")
    library.add_embedding("easyneg")
    client = await make_client(library)
    return client


def lora(library, rel: str) -> str:
    return str(library.loras / rel)


async def post(client, path: str, body, *, status: int = 200, headers=None) -> dict:
    resp = await client.post(path, json=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, text
    data = json.loads(text)
    assert data["success"] is (status == 200)
    return data


def assert_error(body: dict, code: str) -> None:
    assert body["success"] is False and body["code"] == code and body["error"]


async def listed_paths(client, prefix: str = "loras") -> list[str]:
    body = await get_json(client, f"/api/lm/{prefix}/list", page_size=100)
    return sorted(i["file_path"] for i in body["items"])


# --- cross-site, outside the library, missing models: every mutation route ---------------

ROUTES = ("delete", "bulk-delete", "exclude", "unexclude", "save-metadata", "add-tags", "remove-tags",
          "set-preview-from-url", "rename", "verify-duplicates", "move_model", "move_models_bulk")


def body_for(route: str, path: str, folder: str) -> dict:
    return {
        "delete": {"file_path": path},
        "bulk-delete": {"file_paths": [path]},
        "exclude": {"file_path": path},
        "unexclude": {"file_path": path},
        "save-metadata": {"file_path": path, "notes": "x"},
        "add-tags": {"file_path": path, "tags": ["x"]},
        "remove-tags": {"file_path": path, "tags": ["x"]},
        "set-preview-from-url": {"model_path": path, "image_url": "https://image.civitai.com/x.png"},
        "rename": {"file_path": path, "new_file_name": "renamed"},
        "verify-duplicates": {"file_paths": [path]},
        "move_model": {"file_path": path, "target_path": folder},
        "move_models_bulk": {"file_paths": [path], "target_path": folder},
    }[route]


async def test_every_mutation_refuses_cross_site_requests_and_changes_nothing(lib_client, library):
    before = disk_snapshot(library.base)
    path, folder = lora(library, "style/alpha.safetensors"), lora(library, "character")
    for route in ROUTES + ("replace-preview",):
        for headers in CROSS_SITE_HEADERS:
            if route == "replace-preview":
                form = FormData()
                form.add_field("model_path", path)
                form.add_field("preview_file", png_bytes(), filename="p.png", content_type="image/png")
                resp = await lib_client.post("/api/lm/loras/replace-preview", data=form, headers=headers)
            else:
                resp = await lib_client.post(f"/api/lm/loras/{route}", json=body_for(route, path, folder), headers=headers)
            assert resp.status == 403, (route, headers)
            assert_error(await resp.json(), "cross_site_request")
    resp = await lib_client.post("/api/lm/undo-delete", json={"batch_id": "0" * 16}, headers=CROSS_SITE_HEADERS[0])
    assert resp.status == 403
    assert disk_snapshot(library.base) == before


async def test_same_origin_browser_requests_pass(lib_client, library):
    host = f"{lib_client.server.host}:{lib_client.server.port}"
    body = await post(lib_client, "/api/lm/loras/add-tags", {"file_path": lora(library, "gamma.safetensors"), "tags": ["ok"]},
                      headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert body["tags"] == ["ok"]


async def test_every_mutation_refuses_paths_outside_the_library(lib_client, library, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.safetensors").write_bytes(b"x" * 32)
    before = disk_snapshot(tmp_path / "outside"), disk_snapshot(library.base)
    inside_path, inside_folder = lora(library, "gamma.safetensors"), lora(library, "character")
    for route in ROUTES:
        for path, folder in (
            (str(outside / "victim.safetensors"), inside_folder),
            (str(library.loras) + "/../../outside/victim.safetensors", inside_folder),
            (str(library.checkpoints / "base_xl.safetensors"), inside_folder),  # another type's root
        ):
            body = await post(lib_client, f"/api/lm/loras/{route}", body_for(route, path, folder), status=403)
            assert_error(body, "path_outside_library")
    for route in ("move_model", "move_models_bulk"):
        for folder in (str(outside), str(library.checkpoints)):
            await post(lib_client, f"/api/lm/loras/{route}", body_for(route, inside_path, folder), status=403)
    assert (disk_snapshot(tmp_path / "outside"), disk_snapshot(library.base)) == before


async def test_every_single_model_mutation_answers_404_for_a_missing_model(lib_client, library):
    missing = lora(library, "nope.safetensors")
    for route in ("delete", "exclude", "unexclude", "save-metadata", "add-tags", "remove-tags",
                  "set-preview-from-url", "rename", "move_model"):
        body = await post(lib_client, f"/api/lm/loras/{route}", body_for(route, missing, lora(library, "character")), status=404)
        assert_error(body, "model_not_found")


@pytest.mark.parametrize("route", ROUTES)
async def test_every_mutation_answers_400_for_a_body_that_is_not_a_json_object(lib_client, route):
    for raw in (b"", b"not json", b"[1, 2]", b'{"file_path": 5, "file_paths": "x", "model_path": 5}'):
        resp = await lib_client.post(f"/api/lm/loras/{route}", data=raw, headers={"Content-Type": "application/json"})
        assert resp.status == 400, (route, raw)
        assert_error(await resp.json(), "invalid_input")


# --- delete, bulk delete, undo ------------------------------------------------------------------

async def test_delete_moves_the_model_and_its_companions_to_the_trash(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "style/alpha.safetensors")
    body = await post(lib_client, "/api/lm/loras/delete", {"file_path": path})
    assert body["file_path"] == path and len(body["batch_id"]) == 16
    assert sorted(os.listdir(library.loras / "style")) == []
    trashed = library.loras / ".lm-trash" / body["batch_id"] / "files" / "style"
    assert sorted(os.listdir(trashed)) == [  # ComfyUI's own lists filter by extension: .deleted hides them
        "alpha.civitai.info.deleted", "alpha.metadata.json.deleted", "alpha.safetensors.deleted", "alpha.webp.deleted"]
    assert path not in await listed_paths(lib_client)
    assert "style" not in (await get_json(lib_client, "/api/lm/loras/folders"))["folders"]
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_delete_broadcasts_models_changed(lib_client, library):
    ws = await lib_client.ws_connect("/ws/fetch-progress")
    await post(lib_client, "/api/lm/loras/delete", {"file_path": lora(library, "gamma.safetensors")})
    message = await ws.receive_json(timeout=5)
    while message.get("type") != "models_changed":
        message = await ws.receive_json(timeout=5)
    assert message["reason"] == "delete" and message["paths"] == [lora(library, "gamma.safetensors")]
    await ws.close()


async def test_delete_rejects_bad_input(lib_client):
    for body, status in (({}, 400), ({"file_path": ""}, 400), ({"file_path": 3}, 400), ({"file_paths": ["x"]}, 400),
                         ({"file_path": "relative/x.safetensors"}, 403)):
        resp = await lib_client.post("/api/lm/loras/delete", json=body)
        assert resp.status == status, body


async def test_bulk_delete_reports_per_file_and_undo_restores_everything(aiohttp_client, lib_client, library, tmp_path):
    paths = [lora(library, "style/alpha.safetensors"), lora(library, "character/beta.safetensors"), lora(library, "gone.safetensors")]
    before = disk_snapshot(library.loras)
    body = await post(lib_client, "/api/lm/loras/bulk-delete", {"file_paths": paths})
    assert [r["success"] for r in body["results"]] == [True, True, False]
    assert body["results"][2]["code"] == "model_not_found" and (body["succeeded"], body["failed"]) == (2, 1)
    assert await listed_paths(lib_client) == [lora(library, "gamma.safetensors")]
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)

    undo = await post(lib_client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]})
    assert undo["succeeded"] == 2 and undo["remaining"] == 0
    assert disk_snapshot(library.loras) == before  # same bytes, same mtimes, no trash left
    assert not (library.loras / ".lm-trash").exists()
    assert paths[0] in await listed_paths(lib_client)
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)
    again = await post(lib_client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]}, status=404)
    assert_error(again, "not_found")


async def test_undo_never_overwrites_a_file_that_appeared_meanwhile(lib_client, library):
    path = lora(library, "gamma.safetensors")
    body = await post(lib_client, "/api/lm/loras/delete", {"file_path": path})
    with open(path, "wb") as fh:
        fh.write(b"a new file with the old name")
    conflict = await post(lib_client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]}, status=409)
    assert_error(conflict, "conflict")
    assert conflict["results"][0]["code"] == "conflict" and conflict["remaining"] == 1
    assert open(path, "rb").read() == b"a new file with the old name"
    os.unlink(path)
    await post(lib_client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]})
    assert os.path.getsize(path) > 100


async def test_undo_rejects_malformed_and_unknown_batch_ids(lib_client):
    for batch_id in (None, "", 5, "../../etc", "x" * 16, "0" * 15):
        await post(lib_client, "/api/lm/undo-delete", {"batch_id": batch_id}, status=400)
    await post(lib_client, "/api/lm/undo-delete", {"batch_id": "0123456789abcdef"}, status=404)


async def test_undo_survives_a_restart(make_client, aiohttp_client, library, tmp_path):
    from .fixtures import make_app_client
    library.add_lora("keep", preview="webp", sidecar={"notes": "n"})
    first = await make_client(library)
    path = lora(library, "keep.safetensors")
    body = await post(first, "/api/lm/loras/delete", {"file_path": path})
    await first.close()
    second = await make_app_client(aiohttp_client, library, state_dir=tmp_path / "restarted")
    assert path not in await listed_paths(second)
    await post(second, "/api/lm/undo-delete", {"batch_id": body["batch_id"]})
    assert path in await listed_paths(second)
    assert (library.loras / "keep.webp").exists() and (library.loras / "keep.metadata.json").exists()


# --- exclude / unexclude --------------------------------------------------------------------------

async def test_exclude_hides_a_model_and_unexclude_shows_it_again(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "character/beta.safetensors")
    size = os.path.getsize(path)
    body = await post(lib_client, "/api/lm/loras/exclude", {"file_path": path})
    assert body["item"]["exclude"] is True
    assert path not in await listed_paths(lib_client)
    assert [i["file_path"] for i in (await get_json(lib_client, "/api/lm/loras/excluded"))["items"]] == [path]
    assert os.path.getsize(path) == size
    sidecar = json.loads((library.loras / "character" / "beta.metadata.json").read_text())
    assert sidecar["exclude"] is True and sidecar["tags"] == ["character"]
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)
    await post(lib_client, "/api/lm/loras/unexclude", {"file_path": path})
    assert path in await listed_paths(lib_client)
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


# --- save-metadata ---------------------------------------------------------------------------------

async def test_save_metadata_writes_editable_fields_keeps_unknown_keys_and_records_edits(
        aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "style/alpha.safetensors")
    body = await post(lib_client, "/api/lm/loras/save-metadata", {
        "file_path": path, "model_name": "  Aardvark ", "notes": "mine", "favorite": True, "base_model": "SD 1.5",
        "usage_tips": {"strength": 0.8, "clip_strength": 1}, "trigger_words": [" aard ", "aard", "vark"],
        "preview_nsfw_level": 4, "tags": ["B", " b ", "A"], "skip_metadata_refresh": True})
    item = body["item"]
    assert (item["model_name"], item["notes"], item["favorite"], item["base_model"]) == ("Aardvark", "mine", True, "SD 1.5")
    assert item["trigger_words"] == ["aard", "vark"] and item["tags"] == ["b", "a"] and item["preview_nsfw_level"] == 4
    assert json.loads(item["usage_tips"]) == {"strength": 0.8, "clip_strength": 1}
    sidecar = json.loads((library.loras / "style" / "alpha.metadata.json").read_text())
    assert sidecar["custom_key"] == {"kept": True} and sidecar["skip_metadata_refresh"] is True
    assert sidecar["user_edited"] == sorted(["model_name", "notes", "base_model", "usage_tips", "trigger_words",
                                             "preview_nsfw_level", "tags"])
    names = [i["model_name"] for i in (await get_json(lib_client, "/api/lm/loras/list"))["items"]]
    assert names[0] == "Aardvark"  # re-sorted by the new name
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


@pytest.mark.parametrize("extra", [
    {"sha256": WRONG_SHA}, {"file_name": "x"}, {"civitai": {}}, {"exclude": True}, {"nonsense": 1},
    {"model_name": 5}, {"model_name": "   "}, {"favorite": "yes"}, {"tags": "a,b"}, {"tags": [1]},
    {"preview_nsfw_level": 64}, {"preview_nsfw_level": True}, {"usage_tips": {"strength": "high"}},
    {"usage_tips": {"colour": 1}}, {"usage_tips": "not json"}, {"trigger_words": "x"}, {"notes": None}, {},
    {"notes": "bad\udc80"}, {"model_name": "\udcff"}, {"tags": ["\udc80"]}, {"trigger_words": ["\udc80"]},
])
async def test_save_metadata_rejects_protected_unknown_and_mistyped_fields(lib_client, library, extra):
    path = lora(library, "character/beta.safetensors")
    before = disk_snapshot(library.base)
    body = await post(lib_client, "/api/lm/loras/save-metadata", {"file_path": path, **extra}, status=400)
    assert_error(body, "invalid_input")
    assert disk_snapshot(library.base) == before


async def test_save_metadata_creates_a_sidecar_when_there_is_none(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "gamma.safetensors")
    await post(lib_client, "/api/lm/loras/save-metadata", {"file_path": path, "notes": "first"})
    sidecar = json.loads((library.loras / "gamma.metadata.json").read_text())
    assert sidecar["notes"] == "first" and sidecar["file_name"] == "gamma" and sidecar["user_edited"] == ["notes"]
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_save_metadata_backs_up_a_corrupt_sidecar_before_rewriting(lib_client, library):
    library.add_lora("broken")
    (library.loras / "broken.metadata.json").write_text("{not json")
    await post(lib_client, "/api/lm/loras/scan", {})
    path = lora(library, "broken.safetensors")
    await post(lib_client, "/api/lm/loras/save-metadata", {"file_path": path, "notes": "fixed"})
    backups = [n for n in os.listdir(library.loras) if n.startswith("broken.metadata.json.bak-")]
    assert len(backups) == 1 and (library.loras / backups[0]).read_text() == "{not json"


# --- tags ----------------------------------------------------------------------------------------------

async def test_add_and_remove_tags_are_normalised_and_counted(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "character/beta.safetensors")
    body = await post(lib_client, "/api/lm/loras/add-tags", {"file_path": path, "tags": [" Anime ", "ANIME", "Style"]})
    assert body["tags"] == ["character", "anime", "style"]
    top = {t["tag"]: t["count"] for t in (await get_json(lib_client, "/api/lm/loras/top-tags"))["tags"]}
    assert top["style"] == 2 and top["anime"] == 1
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)
    body = await post(lib_client, "/api/lm/loras/remove-tags", {"file_path": path, "tags": ["CHARACTER", "missing"]})
    assert body["tags"] == ["anime", "style"]
    assert "tags" in json.loads((library.loras / "character" / "beta.metadata.json").read_text())["user_edited"]
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


@pytest.mark.parametrize("tags", [None, "anime", [1], [], ["  "], ["x" * 101], ["\udc80"]])
async def test_tag_routes_reject_bad_tags(lib_client, library, tags):
    for route in ("add-tags", "remove-tags"):
        await post(lib_client, f"/api/lm/loras/{route}", {"file_path": lora(library, "gamma.safetensors"), "tags": tags}, status=400)


# --- previews ------------------------------------------------------------------------------------------

def preview_form(path: str, content: bytes, *, filename: str = "p.png", nsfw: str | None = None) -> FormData:
    form = FormData()
    form.add_field("model_path", path)
    if nsfw is not None:
        form.add_field("nsfw_level", nsfw)
    form.add_field("preview_file", content, filename=filename, content_type="application/octet-stream")
    return form


async def test_replace_preview_reencodes_to_bounded_webp_and_replaces_old_previews(
        aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "character/beta.safetensors")
    old_url = (await get_json(lib_client, "/api/lm/loras/preview-url", file_path=path))["preview_url"]
    big = io.BytesIO()
    Image.new("RGB", (3000, 2000), (10, 200, 30)).save(big, "JPEG")
    resp = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, big.getvalue(), filename="x.gif", nsfw="2"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["preview_url"] != old_url and body["preview_url"].startswith("/api/lm/previews?path=")
    assert body["preview_nsfw_level"] == 2 and body["item"]["preview_type"] == "image"
    folder = library.loras / "character"
    assert sorted(n for n in os.listdir(folder) if not n.endswith((".safetensors", ".json"))) == ["beta.webp"]
    with Image.open(folder / "beta.webp") as img:
        assert img.format == "WEBP" and max(img.size) == 1280
    served = await lib_client.get(body["preview_url"])
    assert served.status == 200 and served.headers["Content-Type"] == "image/webp"
    sidecar = json.loads((folder / "beta.metadata.json").read_text())
    assert sidecar["preview_url"] == str(folder / "beta.webp") and sidecar["preview_nsfw_level"] == 2
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_replace_preview_keeps_videos_as_sent(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "style/alpha.safetensors")
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 200
    resp = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, mp4, filename="clip.png"))
    body = await resp.json()
    assert resp.status == 200 and body["item"]["preview_type"] == "video"
    assert (library.loras / "style" / "alpha.mp4").read_bytes() == mp4
    assert not (library.loras / "style" / "alpha.webp").exists()
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_replace_preview_sniffs_content_and_limits_size(lib_client, library):
    path = lora(library, "gamma.safetensors")
    before = disk_snapshot(library.base)
    for content, name in ((b"<svg onload=alert(1)>", "x.png"), (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "x.png"), (b"", "x.png")):
        resp = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, content, filename=name))
        assert resp.status == 400, content
        assert_error(await resp.json(), "invalid_input")
    services_of(lib_client).previews.max_bytes = 10_000
    resp = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, png_bytes(size=(900, 900)) + b"\x00" * 20_000))
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")
    not_multipart = await lib_client.post("/api/lm/loras/replace-preview", json={"model_path": path})
    assert not_multipart.status == 400
    bad_level = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, png_bytes(), nsfw="high"))
    assert bad_level.status == 400
    missing = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(lora(library, "nope.safetensors"), png_bytes()))
    assert missing.status == 404
    outside = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form("/etc/passwd", png_bytes()))
    assert outside.status == 403
    assert disk_snapshot(library.base) == before


@pytest.fixture
async def image_host(aiohttp_server):
    """A loopback image host: /ok.png, /missing, /big, /away (redirects off the allow-list)."""
    async def ok(request):
        return web.Response(body=png_bytes(size=(40, 30)), content_type="image/png")

    async def big(request):
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 200_000, content_type="image/png")

    async def away(request):
        raise web.HTTPFound("http://evil.example/x.png")

    app = web.Application()
    app.router.add_get("/ok.png", ok)
    app.router.add_get("/big", big)
    app.router.add_get("/away", away)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


async def test_set_preview_from_url_fetches_only_from_allowed_hosts(aiohttp_client, lib_client, library, tmp_path, image_host):
    path = lora(library, "gamma.safetensors")
    refused = await post(lib_client, "/api/lm/loras/set-preview-from-url",
                         {"model_path": path, "image_url": f"{image_host}/ok.png"}, status=400)
    assert "127.0.0.1" in refused["error"]
    for url in ("file:///etc/passwd", "ftp://image.civitai.com/x", "not a url", 5):
        await post(lib_client, "/api/lm/loras/set-preview-from-url", {"model_path": path, "image_url": url}, status=400)
    # the allowed image hosts come from the settings file (never over HTTP: issue 9)
    await services_of(lib_client).settings.update({"preview_url_hosts": ["127.0.0.1"]})
    body = await post(lib_client, "/api/lm/loras/set-preview-from-url",
                      {"model_path": path, "image_url": f"{image_host}/ok.png", "nsfw_level": 1})
    assert body["item"]["preview_type"] == "image" and body["preview_nsfw_level"] == 1
    assert (library.loras / "gamma.webp").exists()
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)
    await post(lib_client, "/api/lm/loras/set-preview-from-url", {"model_path": path, "image_url": f"{image_host}/away"}, status=400)
    await post(lib_client, "/api/lm/loras/set-preview-from-url", {"model_path": path, "image_url": f"{image_host}/missing"}, status=404)
    services_of(lib_client).previews.max_bytes = 100_000
    await post(lib_client, "/api/lm/loras/set-preview-from-url", {"model_path": path, "image_url": f"{image_host}/big"}, status=413)


# --- rename --------------------------------------------------------------------------------------------

async def test_rename_moves_the_model_and_every_companion(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "style/alpha.safetensors")
    body = await post(lib_client, "/api/lm/loras/rename", {"file_path": path, "new_file_name": "omega.safetensors"})
    new_path = lora(library, "style/omega.safetensors")
    assert body["new_file_path"] == new_path and body["old_file_path"] == path
    assert sorted(os.listdir(library.loras / "style")) == [
        "omega.civitai.info", "omega.metadata.json", "omega.safetensors", "omega.webp"]
    sidecar = json.loads((library.loras / "style" / "omega.metadata.json").read_text())
    assert sidecar["file_name"] == "omega" and sidecar["file_path"] == new_path and sidecar["custom_key"] == {"kept": True}
    paths = await listed_paths(lib_client)
    assert new_path in paths and path not in paths
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_rename_onto_an_existing_name_is_a_conflict_and_changes_nothing(lib_client, library):
    (library.loras / "epsilon.webp").write_bytes(png_bytes())  # only a companion name is taken
    library.add_lora("delta")
    library.add_lora("zeta", preview="webp")
    await post(lib_client, "/api/lm/loras/scan", {})
    before = disk_snapshot(library.base)
    conflict = await post(lib_client, "/api/lm/loras/rename",
                          {"file_path": lora(library, "zeta.safetensors"), "new_file_name": "epsilon"}, status=409)
    assert_error(conflict, "conflict")
    assert "epsilon.webp" in conflict["error"]
    clash = await post(lib_client, "/api/lm/loras/rename",
                       {"file_path": lora(library, "zeta.safetensors"), "new_file_name": "delta"}, status=409)
    assert_error(clash, "conflict")
    assert disk_snapshot(library.base) == before


@pytest.mark.parametrize("name", ["", "   ", None, 7, "../escape", "a/b", "a\\b", ".hidden", "dot.", "con", "nul.txt",
                                  "x" * 250, "tab\tname", "gamma", "\udc80", "bad\udcffname"])
async def test_rename_rejects_invalid_names(lib_client, library, name):
    before = disk_snapshot(library.base)
    body = await post(lib_client, "/api/lm/loras/rename",
                      {"file_path": lora(library, "gamma.safetensors"), "new_file_name": name}, status=400)
    assert_error(body, "invalid_input")
    assert disk_snapshot(library.base) == before


# --- verify-duplicates ------------------------------------------------------------------------------

async def test_verify_duplicates_rehashes_and_fixes_a_wrong_stored_hash(aiohttp_client, lib_client, library, tmp_path):
    original = library.loras / "gamma.safetensors"
    shutil.copy(original, library.loras / "gamma_copy.safetensors")
    (library.loras / "gamma_copy.metadata.json").write_text(json.dumps({"sha256": WRONG_SHA, "notes": "copy"}))
    await post(lib_client, "/api/lm/loras/scan", {})
    from .fixtures import wait_hashed
    await wait_hashed(lib_client)
    body = await post(lib_client, "/api/lm/loras/verify-duplicates", {"file_paths": [
        str(original), str(library.loras / "gamma_copy.safetensors"), lora(library, "character/beta.safetensors"),
        lora(library, "missing.safetensors")]})
    assert body["fixed"] == 1 and len(body["groups"]) == 1
    assert sorted(body["groups"][0]["file_paths"]) == [str(original), str(library.loras / "gamma_copy.safetensors")]
    real = body["groups"][0]["hash"]
    by_path = {r["file_path"]: r for r in body["results"]}
    assert by_path[str(library.loras / "gamma_copy.safetensors")]["stored_sha256"] == WRONG_SHA
    assert "error" in by_path[lora(library, "missing.safetensors")]
    sidecar = json.loads((library.loras / "gamma_copy.metadata.json").read_text())
    assert sidecar["sha256"] == real and sidecar["notes"] == "copy"
    dupes = (await get_json(lib_client, "/api/lm/loras/find-duplicates"))["groups"]
    assert len(dupes) == 1
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_verify_duplicates_rejects_bad_input(lib_client):
    for body in ({}, {"file_paths": []}, {"file_paths": "x"}, {"file_paths": [1]}):
        await post(lib_client, "/api/lm/loras/verify-duplicates", body, status=400)


# --- moves ----------------------------------------------------------------------------------------------

async def test_move_model_moves_companions_into_a_new_folder(aiohttp_client, lib_client, library, tmp_path):
    path = lora(library, "style/alpha.safetensors")
    target = lora(library, "archive/2024")
    body = await post(lib_client, "/api/lm/loras/move_model", {"file_path": path, "target_path": target})
    assert body["new_file_path"] == f"{target}/alpha.safetensors"
    assert sorted(os.listdir(target)) == ["alpha.civitai.info", "alpha.metadata.json", "alpha.safetensors", "alpha.webp"]
    assert json.loads((library.loras / "archive/2024/alpha.metadata.json").read_text())["file_path"] == body["new_file_path"]
    assert body["item"]["folder"] == "archive/2024"
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_move_model_conflict_fails_unless_rename_is_asked(aiohttp_client, lib_client, library, tmp_path):
    library.add_lora("gamma", "character", preview="png")
    await post(lib_client, "/api/lm/loras/scan", {})
    before = disk_snapshot(library.base)
    body = {"file_path": lora(library, "gamma.safetensors"), "target_path": lora(library, "character")}
    conflict = await post(lib_client, "/api/lm/loras/move_model", body, status=409)
    assert_error(conflict, "conflict")
    assert disk_snapshot(library.base) == before
    moved = await post(lib_client, "/api/lm/loras/move_model", {**body, "on_conflict": "rename"})
    assert moved["new_file_path"] == lora(library, "character/gamma-1.safetensors")
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)
    await post(lib_client, "/api/lm/loras/move_model", {**body, "on_conflict": "overwrite"}, status=400)


async def test_move_model_target_must_be_a_visible_folder_of_the_same_type(lib_client, library):
    path = lora(library, "gamma.safetensors")
    before = disk_snapshot(library.base)
    for target, status in ((lora(library, "character/beta.safetensors"), 400), (lora(library, ".lm-trash"), 400),
                           (str(library.embeddings), 403), ("", 400), (None, 400), ("relative/folder", 403),
                           (lora(library, "bad\udc80folder"), 400)):
        await post(lib_client, "/api/lm/loras/move_model", {"file_path": path, "target_path": target}, status=status)
    assert disk_snapshot(library.base) == before


async def test_move_checkpoint_between_roots_of_its_type(aiohttp_client, lib_client, library, tmp_path):
    path = str(library.checkpoints / "base_xl.safetensors")
    body = await post(lib_client, "/api/lm/checkpoints/move_model", {"file_path": path, "target_path": str(library.diffusion_models)})
    assert body["item"]["sub_type"] == "diffusion_model"
    assert (library.diffusion_models / "base_xl.png").exists()
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_move_models_bulk_reports_per_file(aiohttp_client, lib_client, library, tmp_path):
    library.add_lora("beta", "archive")  # clashes with character/beta
    await post(lib_client, "/api/lm/loras/scan", {})
    paths = [lora(library, "gamma.safetensors"), lora(library, "character/beta.safetensors"), lora(library, "nope.safetensors")]
    body = await post(lib_client, "/api/lm/loras/move_models_bulk", {"file_paths": paths, "target_path": lora(library, "archive")})
    assert [r["success"] for r in body["results"]] == [True, False, False]
    assert [r.get("code") for r in body["results"][1:]] == ["conflict", "model_not_found"]
    assert body["results"][0]["new_file_path"] == lora(library, "archive/gamma.safetensors")
    assert os.path.exists(paths[1]) and (library.loras / "character" / "beta.png").exists()
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_bulk_delete_across_two_roots_of_one_type_is_one_undoable_batch(aiohttp_client, lib_client, library, tmp_path):
    paths = [str(library.checkpoints / "base_xl.safetensors"), str(library.diffusion_models / "flux_dev.safetensors")]
    body = await post(lib_client, "/api/lm/checkpoints/bulk-delete", {"file_paths": paths})
    assert body["succeeded"] == 2
    assert (library.checkpoints / ".lm-trash" / body["batch_id"]).is_dir()
    assert (library.diffusion_models / ".lm-trash" / body["batch_id"]).is_dir()
    assert await listed_paths(lib_client, "checkpoints") == []
    undo = await post(lib_client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]})
    assert undo["succeeded"] == 2 and await listed_paths(lib_client, "checkpoints") == sorted(paths)
    assert (library.checkpoints / "base_xl.png").exists()
    await assert_matches_fresh_scan(aiohttp_client, lib_client, library, tmp_path)


async def test_replace_preview_keeps_an_animated_gif_animated(lib_client, library):
    frames = [Image.new("RGB", (1600, 900), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    path = lora(library, "gamma.safetensors")
    resp = await lib_client.post("/api/lm/loras/replace-preview", data=preview_form(path, gif.getvalue(), filename="a.gif"))
    assert resp.status == 200, await resp.text()
    with Image.open(library.loras / "gamma.webp") as img:
        assert img.format == "WEBP" and img.n_frames == 3 and img.size == (1280, 720)


async def test_bulk_delete_and_undo_of_hundreds_of_models(make_client, library):
    for i in range(300):
        library.add_lora(f"bulk_{i:03d}", f"set{i % 5}", sidecar={"tags": ["bulk"]})
    client = await make_client(library)
    paths = [lora(library, f"set{i % 5}/bulk_{i:03d}.safetensors") for i in range(300)]
    body = await post(client, "/api/lm/loras/bulk-delete", {"file_paths": paths})
    assert body["succeeded"] == 300 and await listed_paths(client) == []
    manifest = json.loads((library.loras / ".lm-trash" / body["batch_id"] / "batch.json").read_text())
    assert len(manifest["models"]) == 300
    undo = await post(client, "/api/lm/undo-delete", {"batch_id": body["batch_id"]})
    assert undo["succeeded"] == 300 and len(await listed_paths(client)) == 100  # one page of 300
    top = (await get_json(client, "/api/lm/loras/top-tags"))["tags"]
    assert top == [{"tag": "bulk", "count": 300}]
