"""The full library pages inside a REAL ComfyUI and behind a sub-path (issue 12): every page a
user can reach (the type switcher, the brand, the sidebar's "Open full library") is followed
in Chromium; each must be our page (never ComfyUI's JSON `/embeddings`, never a 404), load
its scripts, styles, previews and sockets, and stay under the prefix a reverse proxy serves
ComfyUI at.

One ComfyUI for the module (frontend 1.27 by default; run again with
COMFYUI_EXTRA_ARGS="--front-end-root $LM_FRONTEND_158"). The standalone server behind a proxy
is tested in test_full_pages_subpath.py, which needs no ComfyUI."""
from __future__ import annotations

from typing import Iterator

import pytest

from ..fixtures import LibraryBuilder
from .harness import (
    CHROMIUM_ARGS,
    PageWatch,
    ThreadedServer,
    build_subpath_proxy,
    chromium_path,
    crawl_library_pages,
    open_library_page,
)
from .real_comfyui import APP_READY, NOISE_TEXT, NOISE_URLS, ComfyUIProcess, screenshot_dir, skip_unless_available

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]
skip_unless_available()

PREFIX = "/comfy"
TYPES = {"loras", "checkpoints", "embeddings"}
TAB_BUTTON = ".lm-model-library-tab-button, [data-testid='lm-model-library-tab-button']"
# ComfyUI's own: its progress favicon is loaded from an absolute '/assets/...' path, which leaves
# a sub-path (frontend 1.27); none of it is ours
NOISE = NOISE_URLS + ("/assets/images/favicon_progress",)


def watch_page(page) -> PageWatch:
    return PageWatch(page, ignore=NOISE, ignore_text=NOISE_TEXT)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    lib = LibraryBuilder(tmp_path_factory.mktemp("pages-base") / "models")
    lib.add_lora("page_alpha", preview="webp")
    lib.add_lora("page_beta", "sub", preview="png")
    lib.add_checkpoint("page_checkpoint", preview="png")
    lib.add_embedding("page_negative")
    return lib


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory, models: LibraryBuilder) -> Iterator[ComfyUIProcess]:
    server = ComfyUIProcess(models.base.parent, tmp_path_factory.mktemp("pages-comfyui"))
    try:
        server.wait_for(lambda: all(server.get_json(f"/api/lm/{p}/list?page_size=1")["total"] >= n
                                    for p, n in (("loras", 2), ("checkpoints", 1), ("embeddings", 1))))
        server.skip_tutorial()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxied(comfyui: ComfyUIProcess) -> Iterator[str]:
    """ComfyUI behind a reverse proxy at PREFIX (HTTP and WebSockets)."""
    proxy = ThreadedServer(build_subpath_proxy(comfyui.url, PREFIX))
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
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    yield ctx
    ctx.close()


def check_crawl(pages: dict[str, dict], root: str) -> None:
    """Every type reached, each page its own type's, styled, previews shown, and every link
    followed stayed under `root` (the server's root as the browser sees it)."""
    assert {shown["prefix"] for shown in pages.values()} == TYPES, list(pages)
    for url, shown in pages.items():
        assert url.startswith(root), (url, root)
        assert shown["current"] == shown["prefix"] and shown["styled"], shown
        assert shown["broken"] == [], shown["broken"]
        if shown["prefix"] != "embeddings":
            assert shown["previews"] >= 1, shown
        hrefs = {link["href"].split("#")[0] for link in shown["links"] if not link["blank"]}
        assert all(h.startswith(root) for h in hrefs), hrefs


def test_core_embeddings_route_is_json_so_the_check_would_catch_a_link_to_it(comfyui, context):
    # the bug of the issue: ComfyUI answers /embeddings itself, with JSON; the page check fails on it
    page = context.new_page()
    with pytest.raises(AssertionError):
        open_library_page(page, f"{comfyui.url}/embeddings")


@pytest.mark.parametrize("entry", ["/loras", "/lm/checkpoints", "/lm/embeddings", "/api/lm/loras"])
def test_every_link_of_the_full_pages_inside_comfyui_leads_to_a_library_page(comfyui, context, entry: str):
    page = context.new_page()
    watch = watch_page(page)
    pages = crawl_library_pages(page, f"{comfyui.url}{entry}")
    check_crawl(pages, f"{comfyui.url}/")
    # the embeddings page is ours, under /lm/ (ComfyUI serves /embeddings itself)
    embeddings = [url for url, shown in pages.items() if shown["prefix"] == "embeddings"]
    assert embeddings and all(url.endswith("/lm/embeddings") for url in embeddings), embeddings
    # init-progress replays its last payload to a new socket: a frame proves the socket works
    assert any(n for url, n in watch.sockets.items() if "/ws/init-progress" in url), watch.sockets
    assert watch.problems == []


def test_type_links_navigate_by_click_inside_comfyui(comfyui, context):
    page = context.new_page()
    watch = watch_page(page)
    open_library_page(page, f"{comfyui.url}/loras")
    for prefix in ("embeddings", "checkpoints", "loras"):
        with page.expect_navigation():
            page.locator(f".lm-type[data-type={prefix}]").click()
        shown = open_library_page(page, page.url)
        assert shown["prefix"] == prefix, shown
    page.locator(".lm-brand").click()
    page.wait_for_load_state()
    assert page.evaluate("() => document.body.dataset.prefix") == "loras"
    page.screenshot(path=str(screenshot_dir() / "full-page-in-comfyui.png"))
    assert watch.problems == []


def open_full_library_from_the_panel(context, comfy_root: str) -> dict[str, str]:
    """ComfyUI's page with our tab open; "Open full library" for each type → the URL it opened."""
    page = context.new_page()
    watch = watch_page(page)
    page.goto(f"{comfy_root}/")
    page.wait_for_function(APP_READY, timeout=90000)
    page.keyboard.press("Escape")
    page.locator(TAB_BUTTON).first.click()
    page.locator(".lm-comfy-sidebar .lm-card[data-path]").first.wait_for(timeout=30000)
    # the panel's previews load under ComfyUI's root too
    page.wait_for_function("() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path] img[src]')].some((i) => i.complete && i.naturalWidth)")
    opened: dict[str, str] = {}
    for label, prefix in (("LoRAs", "loras"), ("Checkpoints", "checkpoints"), ("Embeddings", "embeddings")):
        switch = page.locator(f".lm-cs-types [data-cs-type={prefix}]")
        if switch.is_visible():
            switch.click()
        else:
            page.locator(".lm-cs-type-select").select_option(prefix)
        page.wait_for_function("(p) => document.querySelector(`.lm-cs-types [data-cs-type=${p}]`)?.getAttribute('aria-selected') === 'true'", arg=prefix)
        with context.expect_page() as popup_info:
            page.locator(".lm-comfy-sidebar [data-cs=open]").click()
        popup = popup_info.value
        popup_watch = watch_page(popup)
        popup.wait_for_load_state()
        shown = open_library_page(popup, popup.url)
        assert shown["prefix"] == prefix, (label, shown)
        opened[prefix] = popup.url
        popup.close()
        assert popup_watch.problems == [], popup_watch.problems
    assert watch.problems == [], watch.problems
    page.close()
    return opened


def test_open_full_library_from_the_panel_opens_each_type_inside_comfyui(comfyui, context):
    opened = open_full_library_from_the_panel(context, comfyui.url)
    assert opened["embeddings"] == f"{comfyui.url}/lm/embeddings"
    assert set(opened) == TYPES


def test_under_a_sub_path_comfyui_the_panel_and_every_page_stay_under_the_prefix(proxied, context):
    opened = open_full_library_from_the_panel(context, proxied)
    assert all(url.startswith(f"{proxied}/") for url in opened.values()), opened
    page = context.new_page()
    watch = watch_page(page)
    pages = crawl_library_pages(page, opened["loras"])
    check_crawl(pages, f"{proxied}/")
    # the page's own sockets came through the proxy and delivered (init-progress replays its last payload)
    ours = {url: n for url, n in watch.sockets.items() if "/ws/" in url}
    assert ours and all(url.startswith(proxied.replace("http", "ws", 1)) for url in ours), ours
    assert any(n for url, n in ours.items() if "/ws/init-progress" in url), ours
    page.screenshot(path=str(screenshot_dir() / "full-page-in-comfyui-subpath.png"))
    assert watch.problems == [], watch.problems
