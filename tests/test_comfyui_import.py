"""The package as ComfyUI imports it: routes registered at import on PromptServer.instance,
roots from folder_paths, events forwarded through send_sync; and harmless without ComfyUI.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
from aiohttp import web

from .conftest import ROOT

COMFY_MODULES = ("server", "folder_paths")


def import_plugin_as(name: str):
    """Import the plugin folder the way ComfyUI's load_custom_node does."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FakePromptServer:
    """The attributes of ComfyUI's PromptServer that a plugin may use at import time."""

    instance: "FakePromptServer"

    def __init__(self) -> None:
        self.routes = web.RouteTableDef()
        self.app = web.Application()
        self.loop = None  # ComfyUI's server loop; set by a test that runs node code
        self.sent: list[tuple[str, dict, object]] = []
        self.sockets: dict[str, object] = {}  # ComfyUI's open sockets by client id
        self.on_prompt_handlers: list = []

    def add_on_prompt_handler(self, handler):
        self.on_prompt_handlers.append(handler)

    def send_sync(self, event, data, sid=None):
        self.sent.append((event, data, sid))


@pytest.fixture
def fake_comfyui(monkeypatch, library, tmp_path):
    server = types.ModuleType("server")
    server.PromptServer = FakePromptServer
    FakePromptServer.instance = FakePromptServer()
    folder_paths = types.ModuleType("folder_paths")
    paths = {
        "loras": [str(library.loras)],
        "checkpoints": [str(library.checkpoints)],
        "diffusion_models": [str(library.diffusion_models)],
        "embeddings": [str(library.embeddings)],
    }
    folder_paths.folder_names_and_paths = {k: (v, set()) for k, v in paths.items()}
    folder_paths.supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

    def get_folder_paths(name):
        return list(folder_paths.folder_names_and_paths[name][0])

    folder_paths.get_folder_paths = get_folder_paths
    monkeypatch.setitem(sys.modules, "server", server)
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    monkeypatch.setenv("LM_SETTINGS_FILE", str(tmp_path / "comfy-settings.json"))
    monkeypatch.setenv("LM_CACHE_DIR", str(tmp_path / "comfy-cache"))
    yield FakePromptServer.instance


def _paths(routes: web.RouteTableDef) -> set[tuple[str, str]]:
    return {(r.method, r.path) for r in routes if isinstance(r, web.RouteDef)}


async def test_import_registers_routes_on_the_prompt_server(fake_comfyui, library, aiohttp_client):
    library.add_lora("in_comfy", "sub")
    module = import_plugin_as("custom_nodes_x_model_library_under_test")
    assert sorted(module.NODE_CLASS_MAPPINGS) == ["LmLoraLoader", "LmLoraStacker", "LmSaveImage", "LmTriggerWords"]
    assert len(fake_comfyui.on_prompt_handlers) == 1  # the usage history's prompt hook
    assert module.WEB_DIRECTORY == "./web/comfyui"
    registered = _paths(fake_comfyui.routes)
    for expected in [("GET", "/api/lm/loras/list"), ("GET", "/loras"), ("GET", "/lm/embeddings"),
                     ("GET", "/api/lm/health-check"), ("GET", "/ws/fetch-progress"),
                     ("GET", "/api/lm/checkpoints/unet_roots")]:
        assert expected in registered
    # ComfyUI serves GET /embeddings itself: never shadow it
    assert ("GET", "/embeddings") not in registered

    # what ComfyUI's add_routes then does: mount the table on its app and start it
    fake_comfyui.app.add_routes(fake_comfyui.routes)
    client = await aiohttp_client(fake_comfyui.app)
    services = module._registered if hasattr(module, "_registered") else None
    from importlib import import_module

    host = import_module("custom_nodes_x_model_library_under_test.py.host.comfyui")
    for service in host._registered.library.values():
        await service.wait_ready(10)
    body = await (await client.get("/api/lm/loras/list")).json()
    assert [i["relative_path"] for i in body["items"]] == ["sub/in_comfy.safetensors"]
    roots = await (await client.get("/api/lm/checkpoints/unet_roots")).json()
    assert roots["roots"] == [str(library.diffusion_models)]
    # events reach ComfyUI's own socket as lm.<type>, for the tabs that asked
    fake_comfyui.sockets["tab"] = object()
    assert (await client.post("/api/lm/events/listen", json={"client_id": "tab"})).status == 200
    library.add_lora("second")
    await client.post("/api/lm/loras/scan")
    assert ("lm.models_changed", "tab") in {(event, sid) for event, _, sid in fake_comfyui.sent}
    assert services is None or services  # module attribute is optional


def test_import_without_comfyui_registers_nothing_and_does_not_fail(monkeypatch):
    for name in COMFY_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = import_plugin_as("plain_import_of_model_library")
    assert set(module.NODE_DISPLAY_NAME_MAPPINGS.values()) >= {"LoRA Loader (Model Library)"}
    assert Path(ROOT / "web" / "comfyui").is_dir()


def test_pyproject_declares_comfy_registry_metadata():
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = data["project"], data["tool"]["comfy"]
    for key in ("name", "version", "description", "license", "dependencies"):
        assert key in project
    for key in ("PublisherId", "DisplayName", "Icon"):
        assert key in comfy
    assert "web" not in comfy  # with WEB_DIRECTORY set it would load the JS twice
