"""The full pages of the standalone server behind a reverse proxy's sub-path (issue 12): a
small proxy in the test (HTTP and WebSockets, `/models/...` → the server's `/...`, 404 for
anything outside the prefix) and Chromium following every link, loading every script, style
and preview, opening the sockets and changing a model through the prefix. Needs no ComfyUI
(test_full_pages.py puts ComfyUI behind the same proxy)."""
from __future__ import annotations

import json
from typing import Iterator

import pytest

from ..fixtures import LibraryBuilder
from .harness import (
    CHROMIUM_ARGS,
    PageWatch,
    StandaloneServer,
    ThreadedServer,
    build_subpath_proxy,
    chromium_path,
    crawl_library_pages,
    open_library_page,
)
from .real_comfyui import screenshot_dir

pytestmark = pytest.mark.browser

PREFIX = "/models"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    lib = LibraryBuilder(tmp_path_factory.mktemp("subpath") / "library")
    lib.add_lora("proxied_alpha", preview="webp", sidecar={"trigger_words": ["alpha"]})
    lib.add_lora("proxied_beta", "sub", preview="png")
    lib.add_checkpoint("proxied_checkpoint", preview="png")
    lib.add_embedding("proxied_negative")
    return lib


@pytest.fixture(scope="module")
def server(library: LibraryBuilder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    standalone = StandaloneServer(library.base, tmp_path_factory.mktemp("subpath-state"))
    standalone.wait_ready({"loras": 2, "checkpoints": 1, "embeddings": 1})
    yield standalone
    standalone.stop()


@pytest.fixture(scope="module")
def proxied(server: StandaloneServer) -> Iterator[str]:
    proxy = ThreadedServer(build_subpath_proxy(server.url, PREFIX))
    url = proxy.start()
    yield f"{url}{PREFIX}"
    proxy.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    pg = ctx.new_page()
    pg.set_default_timeout(15000)
    yield pg
    ctx.close()


def test_the_proxy_refuses_what_leaves_the_prefix(proxied, page):
    # the check below relies on it: a URL escaping the sub-path is a 404, not the server's page
    outside = proxied.removesuffix(PREFIX)
    assert page.goto(f"{outside}/loras").status == 404
    assert page.goto(f"{proxied}/loras").status == 200


def test_the_root_redirect_stays_under_the_prefix(proxied, page):
    watch = PageWatch(page)
    shown = open_library_page(page, f"{proxied}/")
    assert shown["url"] == f"{proxied}/loras" and shown["prefix"] == "loras"
    assert watch.problems == []


@pytest.mark.parametrize("entry", ["/loras", "/lm/checkpoints", "/lm/embeddings", "/embeddings"])
def test_every_link_behind_a_sub_path_leads_to_a_library_page_under_it(proxied, page, entry: str):
    watch = PageWatch(page)
    pages = crawl_library_pages(page, f"{proxied}{entry}")
    assert {shown["prefix"] for shown in pages.values()} == {"loras", "checkpoints", "embeddings"}, list(pages)
    for url, shown in pages.items():
        assert url.startswith(f"{proxied}/"), url
        assert shown["current"] == shown["prefix"] and shown["styled"] and shown["broken"] == [], shown
        if shown["prefix"] != "embeddings":
            assert shown["previews"] >= 1, shown
    # scripts, styles, previews, API calls and sockets: all under the prefix
    local = [u for u in watch.requests if u.split("/", 3)[:3] == proxied.split("/", 3)[:3]]
    assert local and all(u.startswith(f"{proxied}/") for u in local), [u for u in local if not u.startswith(f"{proxied}/")]
    ours = {url: n for url, n in watch.sockets.items() if "/ws/" in url}
    assert ours and all(url.startswith(proxied.replace("http", "ws", 1) + "/ws/") for url in ours), ours
    assert any(n for url, n in ours.items() if "/ws/init-progress" in url), ours
    assert watch.problems == []


def test_a_change_made_behind_the_sub_path_is_saved_and_pushed_back(proxied, server, page, library):
    watch = PageWatch(page)
    open_library_page(page, f"{proxied}/loras")
    card = page.locator(".lm-card[data-path]", has=page.locator(".lm-card-name", has_text="proxied_beta"))
    card.hover()
    sidecar = library.loras / "sub" / "proxied_beta.metadata.json"
    # the POST went through the proxy (trust policy: same-origin) and the sidecar holds it
    # (the card shows the star at once; the answer to its save is what says it is written)
    with page.expect_response(lambda r: r.url.endswith("/api/lm/loras/save-metadata") and r.request.method == "POST") as saved:
        card.locator("[data-action=favorite]").click()
    assert saved.value.ok, saved.value.status
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('.lm-card[data-path]')].some((c) => c.textContent.includes(name) && c.querySelector('[data-action=favorite][aria-pressed=true]'))",
        arg="proxied_beta")
    assert json.loads(sidecar.read_text(encoding="utf-8"))["favorite"] is True
    # a rescan announced on the socket reaches the page through the proxy: the grid shows a new file
    library.add_lora("proxied_gamma", preview="webp")
    page.evaluate("(root) => fetch(`${root}/api/lm/loras/scan`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})", proxied)
    page.locator(".lm-card-name", has_text="proxied_gamma").wait_for(timeout=20000)
    page.screenshot(path=str(screenshot_dir() / "full-page-subpath.png"))
    assert watch.problems == []
