""""Missing in this workflow" in a REAL ComfyUI (issue 14, part 2): loading a workflow that names
a moved LoRA and a missing one shows both in our panel; "Use this file" points the moved one's
widget at the file's new name; "Download" fetches the missing one from (a local stand-in for)
CivitAI into the library and points its widget at it; the section is gone once nothing lacks.

Run it with frontend 1.27 (ComfyUI 0.3.64's) and again with
COMFYUI_EXTRA_ARGS="--front-end-root $LM_FRONTEND_158". Screenshots go to tests/browser/artifacts/."""
from __future__ import annotations

from typing import Iterator

import pytest

from ..civitai_server import CivitaiTestServer
from ..fixtures import LibraryBuilder
from .harness import ThreadedServer
from .real_comfyui import ComfyUIProcess, open_comfyui_page, screenshot_dir, skip_unless_available

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]
skip_unless_available()

TAB_BUTTON = ".lm-model-library-tab-button, [data-testid='lm-model-library-tab-button']"
SECTION = ".lm-comfy-sidebar .lm-missing"


def node(node_id: int, node_type: str, *values, y: int = 0) -> dict:
    return {"id": node_id, "type": node_type, "pos": [40, 40 + y], "size": [320, 110], "flags": {}, "order": node_id - 1,
            "mode": 0, "properties": {}, "widgets_values": list(values)}


WORKFLOW = {
    "last_node_id": 3, "last_link_id": 0, "links": [], "groups": [], "config": {}, "extra": {}, "version": 0.4,
    "nodes": [
        node(1, "CheckpointLoaderSimple", "base.safetensors"),
        node(2, "LoraLoader", "old_folder/moved_ink.safetensors", 1.0, 1.0, y=160),
        node(3, "LoraLoader", "missing_detail.safetensors", 0.8, 0.8, y=320),
    ],
}


@pytest.fixture(scope="module")
def civitai() -> Iterator[CivitaiTestServer]:
    server = CivitaiTestServer()
    runner = ThreadedServer(server.app)
    server.bind(runner.start())
    model = server.add_model(name="Missing Detail", type="LORA")
    server.add_version(model, name="v2", file_name="missing_detail.safetensors", images=())
    try:
        yield server
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    lib = LibraryBuilder(tmp_path_factory.mktemp("missing-base") / "models")
    lib.add_lora("moved_ink", "styles")
    lib.add_checkpoint("base")
    return lib


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory, models: LibraryBuilder, civitai: CivitaiTestServer) -> Iterator[ComfyUIProcess]:
    server = ComfyUIProcess(models.base.parent, tmp_path_factory.mktemp("missing-comfyui"),
                            env={"CIVITAI_API_BASE": civitai.api_base})
    try:
        server.wait_for(lambda: server.get_json("/api/lm/loras/list?page_size=1")["total"] >= 1)
        server.skip_tutorial()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(comfyui: ComfyUIProcess):
    yield from open_comfyui_page(comfyui.url, width=1280, height=800)


def widget_value(pg, node_id: int, name: str):
    return pg.evaluate("([id, name]) => { const g = window.app.rootGraph || window.app.graph;"
                       " return g.getNodeById(id).widgets.find((w) => w.name === name).value; }", [node_id, name])


def test_a_loaded_workflow_shows_its_moved_and_missing_loras_and_fixes_them(page, models, civitai):
    page.evaluate("async (data) => { await window.app.loadGraphData(data); }", WORKFLOW)
    page.locator(TAB_BUTTON).first.click()
    section = page.locator(SECTION)
    section.locator(".lm-missing-item").nth(1).wait_for(timeout=30000)
    moved = section.locator(".lm-missing-item[data-status='moved']")
    missing = section.locator(".lm-missing-item[data-status='missing']")
    assert moved.count() == 1 and missing.count() == 1
    assert "old_folder/moved_ink.safetensors" in moved.inner_text()
    assert "styles/moved_ink.safetensors" in moved.inner_text()
    assert "missing_detail.safetensors" in missing.inner_text()
    missing.locator(".lm-missing-candidate").wait_for(timeout=30000)
    assert "Missing Detail" in missing.inner_text()
    assert section.locator(".lm-missing-count").inner_text() == "2"
    frontend = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ || '0'")
    page.screenshot(path=str(screenshot_dir() / f"missing-models-{frontend}.png"))

    moved.locator("[data-missing='use']").click()
    page.wait_for_function("() => document.querySelectorAll(\".lm-missing-item[data-status='moved']\").length === 0")
    assert widget_value(page, 2, "lora_name") == "styles/moved_ink.safetensors"
    assert widget_value(page, 3, "lora_name") == "missing_detail.safetensors"  # untouched

    section.locator("[data-missing='download']").click()
    page.wait_for_function("() => { const s = document.querySelector('.lm-comfy-sidebar .lm-missing'); return s && s.hidden; }",
                           timeout=60000)
    assert (models.loras / "missing_detail.safetensors").is_file()
    assert widget_value(page, 3, "lora_name") == "missing_detail.safetensors"
    assert page.problems == []


def test_a_workflow_with_everything_present_shows_no_section(page):
    workflow = {**WORKFLOW, "nodes": [node(1, "CheckpointLoaderSimple", "base.safetensors"),
                                      node(2, "LoraLoader", "styles/moved_ink.safetensors", 1.0, 1.0, y=160)]}
    page.evaluate("async (data) => { await window.app.loadGraphData(data); }", workflow)
    page.wait_for_function("() => { const s = document.querySelector('.lm-comfy-sidebar .lm-missing'); return s && s.hidden; }")
    assert page.problems == []
