"""``GET /api/lm/{prefix}/list``: pagination, sorting, search and filters over real files."""
from __future__ import annotations

import threading

import pytest
from lm_plugin.py.services.library import model_index, type_library
from lm_plugin.py.services.library.model_index import ModelIndex
from lm_plugin.py.services.library.model_records import ModelType

from .fixtures import SD15_KOHYA, services_of, wait_hashed


async def names(client, **params) -> list[str]:
    resp = await client.get("/api/lm/loras/list", params={"page_size": "100", **params})
    assert resp.status == 200, await resp.text()
    return [item["file_name"] for item in (await resp.json())["items"]]


async def test_listing_reports_pagination(make_client, library):
    for i in range(25):
        library.add_lora(f"model_{i:02d}")
    client = await make_client(library)
    resp = await client.get("/api/lm/loras/list", params={"page": "2", "page_size": "10"})
    body = await resp.json()
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (25, 2, 10, 3)
    assert [i["file_name"] for i in body["items"]] == [f"model_{i:02d}" for i in range(10, 20)]


async def test_listing_caps_page_size_at_100(make_client, library):
    library.add_lora("a")
    client = await make_client(library)
    body = await (await client.get("/api/lm/loras/list", params={"page_size": "500"})).json()
    assert body["page_size"] == 100


@pytest.mark.parametrize("params", [{"page": "x"}, {"page": "0"}, {"page_size": "-1"}, {"page_size": "abc"},
                                    {"sort_by": "colour"}, {"sort_by": "name:up"}, {"tag_logic": "maybe"},
                                    {"favorites_only": "perhaps"}])
async def test_listing_rejects_bad_parameters_with_400(client, params):
    resp = await client.get("/api/lm/loras/list", params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["success"] is False and body["error"]


async def test_listing_item_carries_the_documented_fields(make_client, library):
    library.add_lora("alpha", "style", preview="webp", sidecar={
        "model_name": "Alpha Style", "tags": ["Style", "anime"], "favorite": True, "notes": "n",
        "from_civitai": True, "civitai": {"id": 11, "modelId": 7, "name": "v1", "trainedWords": ["alpha"],
                                          "creator": {"username": "bob"}},
        "base_model": "SDXL 1.0", "preview_nsfw_level": 2, "custom_key": {"kept": True}})
    client = await make_client(library)
    item = (await (await client.get("/api/lm/loras/list")).json())["items"][0]
    for key in ("model_name", "file_name", "file_path", "folder", "size", "modified", "sha256", "hash_status",
                "base_model", "sub_type", "preview_url", "preview_nsfw_level", "tags", "trigger_words",
                "favorite", "notes", "from_civitai", "civitai"):
        assert key in item
    assert item["model_name"] == "Alpha Style" and item["folder"] == "style"
    assert item["civitai"]["modelId"] == 7 and item["civitai"]["trainedWords"] == ["alpha"]
    assert item["creator"] == "bob" and item["preview_nsfw_level"] == 2
    preview = await client.get(item["preview_url"])
    assert preview.status == 200 and preview.headers["Content-Type"] == "image/webp"


async def test_sorting_by_name_is_natural_and_reversible(make_client, library):
    for name in ("lora10", "lora9", "Lora1", "lora2"):
        library.add_lora(name)
    client = await make_client(library)
    assert await names(client, sort_by="name") == ["Lora1", "lora2", "lora9", "lora10"]
    assert await names(client, sort_by="name:desc") == ["lora10", "lora9", "lora2", "Lora1"]


async def test_sorting_by_size_and_date(make_client, library):
    import os
    small = library.add_lora("small", values=4)
    big = library.add_lora("big", values=400)
    os.utime(small, (1_600_000_000, 1_600_000_000))
    os.utime(big, (1_700_000_000, 1_700_000_000))
    client = await make_client(library)
    assert await names(client, sort_by="size") == ["big", "small"]
    assert await names(client, sort_by="size:asc") == ["small", "big"]
    assert await names(client, sort_by="date") == ["big", "small"]
    assert await names(client, sort_by="date:asc") == ["small", "big"]


async def test_search_scopes(make_client, library):
    library.add_lora("file_match", sidecar={"model_name": "Plain"})
    library.add_lora("other", sidecar={"model_name": "Model Match"})
    library.add_lora("tagged", sidecar={"tags": ["matchtag"]})
    library.add_lora("by_creator", sidecar={"civitai": {"creator": {"username": "matchmaker"}}})
    library.add_lora("trig", sidecar={"civitai": {"trainedWords": ["matchword"]}})
    client = await make_client(library)
    assert sorted(await names(client, search="match")) == ["file_match", "other", "tagged"]
    assert await names(client, search="match", search_filename="false", search_tags="false") == ["other"]
    assert await names(client, search="matchmaker", search_creator="true") == ["by_creator"]
    assert await names(client, search="matchword", search_trigger_words="true") == ["trig"]
    assert await names(client, search="fmatch", fuzzy_search="true") == ["file_match"]
    assert await names(client, search="fmatch") == []


async def test_folder_filter_recursive_and_not(make_client, library):
    library.add_lora("top")
    library.add_lora("a1", "a")
    library.add_lora("a2", "a/deeper")
    library.add_lora("b1", "b")
    client = await make_client(library)
    assert sorted(await names(client, folder="a")) == ["a1", "a2"]
    assert await names(client, folder="a", recursive="false") == ["a1"]


async def test_base_model_tag_and_favorite_filters(make_client, library):
    library.add_lora("xl_style", sidecar={"tags": ["style", "anime"], "favorite": True})
    library.add_lora("sd_char", metadata=SD15_KOHYA, sidecar={"tags": ["character"]})
    library.add_lora("xl_char", sidecar={"tags": ["character", "anime"]})
    client = await make_client(library)
    assert sorted(await names(client, base_model="SD 1.5")) == ["sd_char"]
    assert sorted(await names(client, tag_include=["character"])) == ["sd_char", "xl_char"]
    assert sorted(await names(client, tag_include=["character", "anime"], tag_logic="all")) == ["xl_char"]
    assert sorted(await names(client, tag_exclude="anime")) == ["sd_char"]
    assert await names(client, favorites_only="true") == ["xl_style"]


async def test_hash_filter_accepts_sha256_autov2_and_autov3(make_client, library):
    library.add_lora("one", metadata={"sshs_model_hash": "ab" * 32})
    library.add_lora("two")
    client = await make_client(library)
    await wait_hashed(client)
    items = (await (await client.get("/api/lm/loras/list")).json())["items"]
    one = next(i for i in items if i["file_name"] == "one")
    assert one["hash_status"] == "done" and len(one["sha256"]) == 64
    assert await names(client, hash=one["sha256"]) == ["one"]
    assert await names(client, hash=one["sha256"][:10].upper()) == ["one"]
    assert await names(client, hash="ab" * 6) == ["one"]


async def test_routes_answer_503_until_the_service_is_attached(aiohttp_client, library, tmp_path):
    from aiohttp import web
    from lm_plugin.py.app import register_routes
    from lm_plugin.py.app_services import build_services

    services = build_services(library.config(state_dir=tmp_path / "s"))
    app = web.Application()
    routes = web.RouteTableDef()
    register_routes(routes, services)
    app.add_routes(routes)
    client = await aiohttp_client(app)
    resp = await client.get("/api/lm/loras/list")
    assert resp.status == 503
    assert await resp.json() == {"success": False, "error": "Service not ready", "code": "service_not_ready"}


async def test_a_search_before_the_search_texts_exist_waits_for_a_worker_thread_to_make_them(
    make_client, library, monkeypatch
):
    """A start-up serves its index without search texts (issue 13); they are made in a worker
    thread once every type walked the disk, and a search before that waits for them there
    instead of making 100,000 of them on the event loop."""
    library.add_lora("ink_style")
    library.add_lora("other")
    client = await make_client(library)
    service = services_of(client).library[ModelType.LORA]
    assert service.index.texts_ready  # made once the library started
    service.index = ModelIndex.build(list(service.index.entries.values()), texts=False)  # as a start-up serves it
    on_loop: list[bool] = []

    def texts_of(entries):
        on_loop.append(threading.current_thread() is threading.main_thread())
        return model_index.texts_of(entries)

    monkeypatch.setattr(type_library, "texts_of", texts_of)
    assert await names(client, search="ink") == ["ink_style"]
    assert on_loop == [False] and service.index.texts_ready
