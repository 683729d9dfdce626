"""The route workflows use: models by the names ComfyUI's loaders and our LoRA list store."""
from __future__ import annotations

from urllib.parse import urlencode

from lm_plugin.py.host.comfyui import ComfyUISocket

from .fixtures import make_app_client, services_of, wait_hashed


async def test_lookup_answers_a_card_per_name_as_workflows_write_them(make_client, library):
    library.add_lora("ink, v2", "style", preview="webp", sidecar={
        "trigger_words": ["ink style"], "usage_tips": '{"strength": 0.7}', "base_model": "SDXL 1.0",
        "civitai": {"trainedWords": ["Ink Style", "bold lines"]}})
    library.add_lora("detail")
    client = await make_client(library)
    query = urlencode([("name", "style/ink, v2.safetensors"), ("name", "style\\ink, v2"), ("name", "DETAIL"),
                       ("name", "missing")])
    body = await (await client.get(f"/api/lm/loras/lookup?{query}")).json()
    models = body["models"]
    assert body["success"] is True and list(models) == ["style/ink, v2.safetensors", "style\\ink, v2", "DETAIL", "missing"]
    ink = models["style/ink, v2.safetensors"]
    assert ink["relative_path"] == "style/ink, v2.safetensors" and ink["base_model"] == "SDXL 1.0"
    assert ink["trigger_words"] == ["ink style", "bold lines"]  # a comma in a name is not a separator
    assert ink["preview_url"].startswith("/api/lm/previews?") and ink["usage_tips"] == '{"strength": 0.7}'
    assert ink["matches"] == 1 and ink["usage_count"] == 0 and ink["last_used"] is None
    assert models["style\\ink, v2"]["file_path"] == ink["file_path"]
    assert models["DETAIL"]["relative_path"] == "detail.safetensors" and models["missing"] is None


async def test_lookup_shows_usage_and_refuses_bad_input(make_client, library):
    library.add_checkpoint("base", "sd15")
    client = await make_client(library)
    await wait_hashed(client)
    services = services_of(client)
    entry = next(iter(services.library["checkpoint"].index.entries.values()))
    await services.usage.record([entry.sha256], when=1_700_000_000.0)
    card = (await (await client.get("/api/lm/checkpoints/lookup?name=sd15/base.safetensors")).json())["models"]
    assert card["sd15/base.safetensors"]["usage_count"] == 1
    assert card["sd15/base.safetensors"]["last_used"] == 1_700_000_000.0
    for query, status in (("", 400), ("?" + "&".join(f"name=n{i}" for i in range(201)), 400),
                          ("?name=" + "x" * 1025, 400), ("?name=a%00b", 400)):
        response = await client.get(f"/api/lm/checkpoints/lookup{query}")
        assert response.status == status
        assert (await response.json())["success"] is False


class PromptServerSockets:
    """What ``ComfyUISocket`` uses of ComfyUI's ``PromptServer``: its open sockets by client
    id and ``send_sync`` (here recording what each client is sent)."""

    def __init__(self) -> None:
        self.sockets: dict[str, object] = {}
        self.sent: list[tuple[str, dict, str | None]] = []

    def send_sync(self, event: str, data: dict, sid: str | None = None) -> None:
        self.sent.append((event, data, sid))


async def test_the_page_asks_the_comfyui_editor_to_add_a_model_through_comfyuis_socket(make_client, library):
    path = library.add_lora("ink", "style")
    server = PromptServerSockets()
    client = await make_client(library, host_socket=ComfyUISocket(server))
    server.sockets["tab-1"] = object()
    # no editor tab asked for our events yet: nobody to add the model
    assert (await client.post("/api/lm/graph/add", json={"file_path": str(path)})).status == 409
    assert (await client.post("/api/lm/events/listen", json={"client_id": "tab-1"})).status == 200
    server.sent.clear()
    response = await client.post("/api/lm/graph/add", json={"file_path": str(path)})
    assert response.status == 200 and (await response.json())["sent"] is True
    assert [(e, p["item"]["relative_path"], sid) for e, p, sid in server.sent] == [
        ("lm.graph_add", "style/ink.safetensors", "tab-1")]
    outside = await client.post("/api/lm/graph/add", json={"file_path": str(library.base.parent / "x.safetensors")})
    assert outside.status == 403
    assert (await client.post("/api/lm/graph/add", json={})).status == 400


async def test_comfyuis_socket_carries_our_events_only_to_the_tabs_that_asked(make_client, library):
    library.add_lora("ink")
    server = PromptServerSockets()
    client = await make_client(library, host_socket=ComfyUISocket(server))
    server.sockets.update({"asked": object(), "loading": object()})
    assert (await client.post("/api/lm/events/listen", json={"client_id": "asked"})).status == 200
    server.sent.clear()
    library.add_lora("new")
    await client.post("/api/lm/loras/scan")
    assert {sid for _, _, sid in server.sent} == {"asked"}
    assert "lm.models_changed" in {event for event, _, _ in server.sent}
    # a reload keeps the client id but opens a new socket: it is sent nothing until it asks again
    server.sockets["asked"] = object()
    server.sent.clear()
    await client.post("/api/lm/loras/scan")
    assert server.sent == []
    for body, status in (({"client_id": "gone"}, 404), ({}, 400), ({"client_id": 7}, 400),
                         ({"client_id": "x" * 129}, 400)):
        response = await client.post("/api/lm/events/listen", json=body)
        assert response.status == status and (await response.json())["success"] is False


async def test_the_standalone_server_has_no_editor_to_add_to(client, library):
    path = library.add_lora("ink")
    await client.post("/api/lm/loras/scan")
    response = await client.post("/api/lm/graph/add", json={"file_path": str(path)})
    assert response.status == 409
    assert "served by ComfyUI" in (await response.json())["error"]
    response = await client.post("/api/lm/events/listen", json={"client_id": "tab-1"})
    assert response.status == 409 and "served by ComfyUI" in (await response.json())["error"]


async def test_only_the_page_comfyui_serves_offers_add_to_workflow(make_client, aiohttp_client, library, tmp_path):
    # the page's "Add to workflow" shows only where the shell says data-host="comfyui" (model_actions.js)
    library.add_lora("ink")
    standalone = await make_client(library)
    html = await (await standalone.get("/loras")).text()
    assert 'data-host="standalone"' in html and 'data-host="comfyui"' not in html
    comfy = await make_app_client(aiohttp_client, library, state_dir=tmp_path / "comfy-state", host_name="comfyui")
    for path in ("/loras", "/lm/loras", "/checkpoints"):
        page = await comfy.get(path)
        assert page.status == 200 and 'data-host="comfyui"' in await page.text()
