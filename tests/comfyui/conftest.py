"""Fixtures of the ComfyUI sidebar tests: a generated library served by the standalone
server, the fake ComfyUI host in front of it, and one Chromium per module."""
from __future__ import annotations

from typing import Iterator

import pytest

from ..fixtures import LibraryBuilder
from .harness import HostPage, StandaloneServer, ThreadedServer, build_fake_host, chromium_path

PLUGIN_NAME = "model-library-under-test"
LORA_CHOICES = ["alpha_style.safetensors", "chars/sub/beta.safetensors"]


@pytest.fixture(scope="module")
def sidebar_library(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    """LoRAs (one in a subfolder, with previews), a checkpoint, a diffusion model, an embedding."""
    lib = LibraryBuilder(tmp_path_factory.mktemp("sidebar") / "library")
    lib.add_lora("alpha_style", preview="webp", sidecar={"trigger_words": ["alpha girl"]})
    lib.add_lora("beta", "chars/sub", preview="png")
    lib.add_checkpoint("sdxl_base")
    lib.add_diffusion_model("flux1-dev")
    lib.add_embedding("easynegative")
    return lib


@pytest.fixture(scope="module")
def library_server(sidebar_library: LibraryBuilder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    server = StandaloneServer(sidebar_library.base, tmp_path_factory.mktemp("sidebar-state"))
    server.wait_ready({"loras": 2, "checkpoints": 2, "embeddings": 1})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def host_url(library_server: StandaloneServer) -> Iterator[str]:
    server = ThreadedServer(build_fake_host(library_server.url, PLUGIN_NAME))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from .harness import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def host(browser, host_url: str) -> Iterator[HostPage]:
    context = browser.new_context(viewport={"width": 1300, "height": 800})
    page = context.new_page()
    hp = HostPage(page, f"{host_url}/")
    hp.js("(choices) => { window.fake.choices.loras.push(...choices); }", LORA_CHOICES)
    hp.js("() => { window.fake.choices.checkpoints.push('sdxl_base.safetensors'); window.fake.choices.diffusion_models.push('flux1-dev.safetensors'); }")
    yield hp
    context.close()


@pytest.fixture
def host_factory(browser, host_url: str):
    """Open the fake host with query parameters (e.g. `locale=ja`)."""
    contexts = []

    def factory(query: str = "") -> HostPage:
        context = browser.new_context(viewport={"width": 1300, "height": 800})
        contexts.append(context)
        return HostPage(context.new_page(), f"{host_url}/?{query}")

    yield factory
    for context in contexts:
        context.close()
