"""HuggingFace from the page (issue 14, part 4): a file link pasted into the download dialog is
recognised, the type is left to the server's guess (the file's header says LoRA) and the file
lands in the library, with the local hub + CDN test servers standing in for huggingface.co."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ..civitai_server import make_safetensors
from ..comfyui.harness import ThreadedServer
from ..huggingface_server import HuggingFaceTestServer
from .library_builder import LibraryServer, build_small_library

pytestmark = pytest.mark.browser


@pytest.fixture
def hub() -> Iterator[HuggingFaceTestServer]:
    server = HuggingFaceTestServer()
    cdn, hub = ThreadedServer(server.cdn_app), ThreadedServer(server.hub_app)
    server.cdn_origin = cdn.start()
    server.hub_origin = hub.start()
    server.add_file("acme/ink", "ink_style_lora.safetensors", make_safetensors(seed=9, base_model="sdxl_base_v1-0"))
    yield server
    hub.stop()
    cdn.stop()


@pytest.fixture
def library_server(tmp_path: Path, hub: HuggingFaceTestServer) -> Iterator[LibraryServer]:
    server = LibraryServer(build_small_library(tmp_path / "library"), env={"HF_ENDPOINT": hub.hub_origin}).start()
    yield server
    server.stop()


def test_a_huggingface_link_downloads_from_the_dialog(library_server, hub, open_page, artifacts):
    page, errors = open_page(f"{library_server.base_url}/loras")
    page.wait_for_selector("body[data-socket='open']")
    page.click("[data-tool='download']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-role='download-ref']").fill(hub.url("acme/ink", "ink_style_lora.safetensors", kind="blob"))
    dialog.locator("button[type='submit']").click()
    dialog.locator("[data-role='download-type']").wait_for()
    assert "acme/ink" in dialog.locator("[role='status']").inner_text()
    dialog.locator("input[aria-label='Subfolder']").fill("from-hf")
    page.screenshot(path=str(artifacts / "download-dialog-huggingface.png"))
    dialog.locator("[data-modal-action='start']").click()
    dialog.locator(".lm-download-progress", has_text="Completed").wait_for(timeout=20_000)
    assert (library_server.library.loras / "from-hf" / "ink_style_lora.safetensors").is_file()
    assert errors.all() == []
