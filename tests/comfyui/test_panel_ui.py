"""The sidebar panel at home in a REAL ComfyUI (issue 12), 1280x800 as a user sees it: its own
tab title and icon, the header of the frontend it runs in, ComfyUI's font and palette (dark
and light) on the panel, its menus, popovers and dialogs, all of them inside the viewport at
the default and at the narrowest sidebar width, cards or a list, the folding filters, new nodes
where the user looks, and no warning raised from our scripts.

One ComfyUI and one page for the whole module; run it with frontend 1.27 (ComfyUI 0.3.64's) and
again with COMFYUI_EXTRA_ARGS="--front-end-root $LM_FRONTEND_158". Screenshots (looked at by
hand) go to $LM_SCREENSHOT_DIR, else tests/browser/artifacts/ (git-ignored)."""
from __future__ import annotations

from typing import Iterator

import pytest

from ..fixtures import SD15_KOHYA, LibraryBuilder
from .harness import CHROMIUM_ARGS, WARNING_PROBE, chromium_path, deprecations, warnings_from_us
from .real_comfyui import APP_READY, ComfyUIProcess, is_noise, screenshot_dir, skip_unless_available

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]
skip_unless_available()

TAB_BUTTON = ".lm-model-library-tab-button, [data-testid='lm-model-library-tab-button']"
CORE_TAB_BUTTON = ".model-library-tab-button, [data-testid='model-library-tab-button']"
CARD = ".lm-comfy-sidebar .lm-card[data-path]"

# (r, g, b) → relative luminance; "light" surfaces are above 0.5, "dark" text below it
LUMINANCE = """(color) => {
  const m = String(color).match(/[\\d.]+/g).map(Number);
  const [r, g, b] = m.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""

# the part of an element's box inside the viewport, and how far it sticks out
BOX = """(el) => { const r = el.getBoundingClientRect();
  return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height,
          inside: r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight}; }"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    lib = LibraryBuilder(tmp_path_factory.mktemp("panel-base") / "models")
    lib.add_lora("alpha_portrait", preview="webp", sidecar={"favorite": True, "trigger_words": ["alpha"]})
    lib.add_lora("beta_sub", "sub", preview="png")
    lib.add_lora("classic_sd15", "sd15", preview="png", metadata=SD15_KOHYA)
    for i in range(14):
        lib.add_lora(f"style_{i:02d}_with_a_rather_long_name", "styles", preview="webp" if i % 2 else None)
    lib.add_lora("deep_one", "styles/anime/portraits", preview="png")
    lib.add_checkpoint("panel_checkpoint")
    lib.add_embedding("panel_negative")
    return lib


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory, models: LibraryBuilder) -> Iterator[ComfyUIProcess]:
    server = ComfyUIProcess(models.base.parent, tmp_path_factory.mktemp("panel-comfyui"))
    try:
        server.wait_for(lambda: server.get_json("/api/lm/loras/list?page_size=1")["total"] >= 18)
        server.skip_tutorial()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(comfyui: ComfyUIProcess):
    """ComfyUI's frontend at 1280x800 with WARNING_PROBE installed before any script runs;
    `page.problems` collects console errors, page errors and failed requests that are not noise."""
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    from .real_comfyui import NOISE_URLS

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.add_init_script(WARNING_PROBE)
        pg.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" and not is_noise(m.text) else None)
        pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}") if not is_noise(str(e)) else None)
        pg.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 and not any(n in r.url for n in NOISE_URLS) else None)
        pg.goto(f"{comfyui.url}/")
        pg.wait_for_function(APP_READY, timeout=90000)
        pg.keyboard.press("Escape")
        pg.problems = problems
        pg.frontend = pg.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ || '0'")
        print(f"ComfyUI frontend {pg.frontend}")
        yield pg
        browser.close()


def frontend_tag(pg) -> str:
    return ".".join(pg.frontend.split(".")[:2])


def modern(pg) -> bool:
    major, minor = (int(x) for x in pg.frontend.split(".")[:2])
    return (major, minor) >= (1, 30)


def open_tab(pg) -> None:
    if not pg.locator(".lm-comfy-sidebar").count():
        pg.locator(TAB_BUTTON).first.click()
    pg.locator(CARD).first.wait_for(timeout=30000)
    pg.wait_for_function("() => !document.querySelector('.lm-comfy-sidebar .lm-grid--loading')")


def close_tab(pg) -> None:
    if pg.locator(".lm-comfy-sidebar").count():
        pg.locator(TAB_BUTTON).first.click()
        pg.locator(".lm-comfy-sidebar").wait_for(state="detached")


def set_palette(pg, palette: str) -> None:
    # the frontend watches this setting and loads the palette (GraphCanvas.vue, 1.27 and 1.58)
    pg.evaluate("async (p) => { await window.app.extensionManager.setting.set('Comfy.ColorPalette', p); }", palette)
    pg.wait_for_function("(p) => getComputedStyle(document.documentElement).colorScheme === (p === 'light' ? 'light' : 'dark')", arg=palette)
    pg.wait_for_timeout(300)


def luminance(pg, color: str) -> float:
    return pg.evaluate(LUMINANCE, color)


def drag_sidebar_to(pg, x: float) -> float:
    """Drag the splitter between sidebar and canvas to `x` (the frontend stops at its minimum);
    returns the sidebar's width."""
    handle = pg.evaluate("""() => { const g = [...document.querySelectorAll('[role=separator]')].find((s) => s.getBoundingClientRect().height > 100);
        const b = g.getBoundingClientRect(); return [b.left + b.width / 2, b.top + b.height / 2]; }""")
    pg.mouse.move(handle[0], handle[1])
    pg.mouse.down()
    pg.mouse.move((handle[0] + x) / 2, handle[1], steps=5)
    pg.mouse.move(x, handle[1], steps=10)
    pg.mouse.up()
    pg.wait_for_timeout(500)
    return pg.evaluate("() => document.querySelector('.lm-comfy-sidebar').getBoundingClientRect().width")


def test_tab_has_its_own_title_and_icon_and_the_header_of_this_frontend(page):
    titles = page.evaluate("() => window.app.extensionManager.sidebarTab.sidebarTabs.map((t) => ({id: t.id, title: t.title, icon: t.icon}))")
    ours = next(t for t in titles if t["id"] == "lm-model-library")
    core = next(t for t in titles if t["id"] == "model-library")
    assert ours["title"] == "LoRAs & Models" and ours["icon"] != core["icon"]
    tooltips = page.evaluate("""() => [...document.querySelectorAll('.side-bar-button')].map((b) => b.getAttribute('aria-label') || '')""")
    assert sum("LoRAs & Models" in t for t in tooltips) == 1 and not any(t.startswith("LoRAs & Models") and "Model Library (" in t for t in tooltips)

    # the core tab's header, as the reference our header copies
    close_tab(page)
    page.locator(CORE_TAB_BUTTON).first.click()
    page.locator(".comfy-vue-side-bar-header").wait_for()
    core_head = page.evaluate("""() => { const h = document.querySelector('.comfy-vue-side-bar-header').firstElementChild;
        const title = h.querySelector('span[title]'); const s = getComputedStyle(title);
        return {height: h.getBoundingClientRect().height, size: s.fontSize, weight: s.fontWeight, text: title.innerText, font: s.fontFamily}; }""")
    page.locator(CORE_TAB_BUTTON).first.click()
    open_tab(page)
    head = page.evaluate("""() => { const h = document.querySelector('.lm-cs-head'); const title = h.querySelector('.lm-cs-title');
        const s = getComputedStyle(title);
        return {style: h.dataset.header, height: h.getBoundingClientRect().height, size: s.fontSize, weight: s.fontWeight,
                text: title.innerText, font: s.fontFamily, close: !!h.querySelector('[data-cs=close]')}; }""")
    assert head["style"] == ("modern" if modern(page) else "classic")
    assert head["size"] == core_head["size"] and head["weight"] == core_head["weight"] and head["font"] == core_head["font"]
    assert abs(head["height"] - core_head["height"]) <= 4, (head, core_head)
    # 1.2x writes its titles upper case, 1.5x in title case: ours follows the core title's case
    assert (head["text"] == head["text"].upper()) == (core_head["text"] == core_head["text"].upper())
    assert head["close"] == modern(page)
    if modern(page):
        page.locator(".lm-cs-head [data-cs=close]").click()
        page.locator(".lm-comfy-sidebar").wait_for(state="detached")
        open_tab(page)
    page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-header.png"))
    assert page.problems == []


def test_panel_uses_comfyuis_font(page):
    open_tab(page)
    fonts = page.evaluate("""() => { const f = (s) => { const e = document.querySelector(s); return e ? getComputedStyle(e).fontFamily : null; };
        return {body: getComputedStyle(document.body).fontFamily, root: f('.lm-comfy-sidebar'), name: f('.lm-comfy-sidebar .lm-card-name'),
                search: f('.lm-comfy-sidebar .lm-search-input'), sort: f('.lm-comfy-sidebar .lm-sort'), hint: f('.lm-cs-hint')}; }""")
    body = fonts.pop("body")
    assert body.split(",")[0].strip("'\" ") in ("Arial", "Inter")
    assert fonts == {key: body for key in fonts}, fonts


def check_floating(pg, palette: str, width_tag: str) -> None:
    """Search options, the card menu and the details dialog: inside the viewport, off the icon
    bar, in the palette's brightness and ComfyUI's font."""
    light = palette == "light"
    body_font = pg.evaluate("() => getComputedStyle(document.body).fontFamily")
    sidebar = pg.evaluate(BOX, pg.locator(".lm-comfy-sidebar").element_handle())

    pg.locator(".lm-comfy-sidebar [data-bar=scope]").click()
    popover = pg.locator(".lm-comfy-sidebar .lm-scope-panel:not([hidden])")
    popover.wait_for()
    box = pg.evaluate(BOX, popover.element_handle())
    style = popover.evaluate("(e) => { const s = getComputedStyle(e); return {bg: s.backgroundColor, fg: s.color, font: s.fontFamily}; }")
    assert box["inside"] and box["left"] >= sidebar["left"] - 1, (width_tag, box, sidebar)
    assert popover.get_by_text("Search in", exact=False).first.is_visible()
    assert (luminance(pg, style["bg"]) > 0.5) == light and (luminance(pg, style["fg"]) > 0.5) != light and style["font"] == body_font
    pg.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(pg)}-{palette}-{width_tag}-search-options.png"))
    pg.keyboard.press("Escape")
    popover.wait_for(state="hidden")

    card = pg.locator(CARD).first
    card.hover()
    card.locator("[data-action=menu]").click()
    menu = pg.locator(".lm-comfy-sidebar .lm-menu:not([hidden])")
    menu.wait_for()
    menu.evaluate("m => Promise.all(m.getAnimations({subtree: true}).map(a => a.finished))")
    box = pg.evaluate(BOX, menu.element_handle())
    style = menu.evaluate("(e) => { const s = getComputedStyle(e); return {bg: s.backgroundColor, fg: s.color, font: s.fontFamily}; }")
    assert box["inside"] and box["left"] >= sidebar["left"] - 1, (width_tag, box, sidebar)
    assert (luminance(pg, style["bg"]) > 0.5) == light and (luminance(pg, style["fg"]) > 0.5) != light and style["font"] == body_font
    pg.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(pg)}-{palette}-{width_tag}-menu.png"))
    pg.keyboard.press("Escape")
    menu.wait_for(state="hidden")

    card.locator(".lm-card-name").click()
    dialog = pg.locator("dialog.lm-modal[open]")
    dialog.wait_for()
    dialog.evaluate("d => Promise.all(d.getAnimations().map(a => a.finished))")
    box = pg.evaluate(BOX, dialog.element_handle())
    style = dialog.evaluate("""(e) => { const s = getComputedStyle(e); const civitai = e.querySelector('.lm-details-quick .lm-btn');
        return {bg: s.backgroundColor, fg: s.color, font: s.fontFamily,
                weights: [...e.querySelectorAll('.lm-details-quick .lm-btn, .lm-modal-footer .lm-btn')].map((b) => getComputedStyle(b).fontWeight)}; }""")
    assert box["inside"], box
    assert (luminance(pg, style["bg"]) > 0.5) == light and (luminance(pg, style["fg"]) > 0.5) != light and style["font"] == body_font
    assert len(set(style["weights"])) == 1, style  # no bold button beside plain ones
    pg.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(pg)}-{palette}-{width_tag}-dialog.png"))
    pg.keyboard.press("Escape")
    dialog.wait_for(state="detached")


@pytest.mark.parametrize("palette", ["dark", "light"])
def test_panel_popovers_and_dialogs_follow_the_palette_and_stay_in_view_at_every_width(page, palette: str):
    set_palette(page, palette)
    open_tab(page)
    light = palette == "light"
    start = page.evaluate(BOX, page.locator(".lm-comfy-sidebar").element_handle())
    try:
        for width_tag in ("default", "narrowest"):
            if width_tag == "narrowest":
                width = drag_sidebar_to(page, 0)
                if width >= start["width"] - 1:
                    # 1.5x stops at its default width: prove the splitter moves, so that is its minimum
                    assert drag_sidebar_to(page, start["right"] + 150) > start["width"] + 100
                    width = drag_sidebar_to(page, 0)
                print(f"{palette}: narrowest sidebar {width:.0f} px (default {start['width']:.0f} px)")
            colours = page.evaluate("""() => { const s = (q) => getComputedStyle(document.querySelector(q));
                return {text: s('.lm-comfy-sidebar').color, input: s('.lm-comfy-sidebar .lm-search-input').backgroundColor,
                        hint: s('.lm-cs-hint').color}; }""")
            assert (luminance(page, colours["text"]) > 0.5) != light and (luminance(page, colours["input"]) > 0.5) == light, colours
            # one card per row is too cramped: a sidebar that narrow lists the models
            columns = page.evaluate("() => { const g = document.querySelector('.lm-comfy-sidebar .lm-grid');"
                                    " return {list: g.classList.contains('lm-grid--list'), width: g.clientWidth}; }")
            grid_room = columns["width"] - 16
            assert columns["list"] == (grid_room < 2 * 92 + 8), columns
            # the type switcher never truncates a label: tabs that fit, else a drop-down
            truncated = page.evaluate("""() => [...document.querySelectorAll('.lm-cs-type')].filter((t) => t.offsetParent && t.scrollWidth > t.clientWidth + 1).map((t) => t.textContent)""")
            assert truncated == []
            names = page.evaluate("""() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path] .lm-card-name')].slice(0, 6).map((n) => n.textContent)""")
            assert "alpha_portrait" in names or "beta_sub" in names
            page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-{palette}-{width_tag}.png"))
            check_floating(page, palette, width_tag)
    finally:
        drag_sidebar_to(page, start["right"])
    assert page.problems == []


def test_cards_or_list_by_width_and_by_choice(page):
    set_palette(page, "dark")
    open_tab(page)
    grid = page.locator(".lm-comfy-sidebar .lm-grid")
    auto = "lm-grid--list" in (grid.get_attribute("class") or "")
    page.locator(".lm-comfy-sidebar [data-bar=view]").click()
    page.wait_for_function("(was) => document.querySelector('.lm-comfy-sidebar .lm-grid').classList.contains('lm-grid--list') !== was", arg=auto)
    rows = page.evaluate("""() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]')].slice(0, 3).map((c) => c.getBoundingClientRect().height)""")
    assert all((h < 60) != auto for h in rows), rows  # a list row is one line with a small thumbnail
    page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-{'cards' if auto else 'list'}-chosen.png"))
    # the choice survives closing the tab; "by width" in the options gives the automatic choice back
    close_tab(page)
    open_tab(page)
    assert ("lm-grid--list" in grid.get_attribute("class")) != auto
    page.locator(".lm-comfy-sidebar [data-bar=scope]").click()
    page.locator(".lm-comfy-sidebar [data-view-auto]").check()
    page.keyboard.press("Escape")
    page.wait_for_function("(was) => document.querySelector('.lm-comfy-sidebar .lm-grid').classList.contains('lm-grid--list') === was", arg=auto)
    assert page.problems == []


def test_filters_fold_out_with_folder_counts_and_filter_like_the_page(page, comfyui: ComfyUIProcess):
    open_tab(page)
    region = page.locator(".lm-comfy-sidebar .lm-panel-filters")
    assert region.is_hidden()  # folded away: no room taken while unused
    page.locator(".lm-comfy-sidebar [data-bar=filters]").click()
    region.wait_for()
    tree = region.locator(".lm-tree")
    tree.locator(".lm-tree-label[data-path='styles'] .lm-tree-count").wait_for()
    page.wait_for_function("() => document.querySelector('.lm-panel-filters .lm-tree-label[data-path=\"\"] .lm-tree-count')")
    counts = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.lm-panel-filters .lm-tree-label')]
        .filter((l) => l.querySelector('.lm-tree-count')).map((l) => [l.dataset.path, Number(l.querySelector('.lm-tree-count').textContent.replace(/\\D/g, ''))]))""")
    total = comfyui.get_json("/api/lm/loras/list?page_size=1")["total"]
    styles = comfyui.get_json("/api/lm/loras/list?page_size=1&folder=styles&recursive=true")["total"]
    assert counts[""] == total and counts["styles"] == styles == 15 and counts["sub"] == 1, counts
    page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-filters.png"))

    def shown() -> list[str]:
        page.wait_for_function("() => !document.querySelector('.lm-comfy-sidebar .lm-grid--loading')")
        page.wait_for_timeout(200)
        return sorted(page.evaluate("() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]:not([hidden]) .lm-card-name')].map((n) => n.textContent)"))

    tree.locator(".lm-tree-label[data-path='sub']").click()
    page.wait_for_function("() => document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]:not([hidden])').length === 1")
    assert shown() == ["beta_sub"]
    region.locator("[data-filter=clear]").click()
    region.locator("[data-filter=favorites]").check()
    page.wait_for_function("() => document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]:not([hidden])').length === 1")
    assert shown() == ["alpha_portrait"]
    region.locator("[data-filter=favorites]").uncheck()
    region.locator("[data-base='SD 1.5']").click()
    page.wait_for_function("() => document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]:not([hidden])').length === 1")
    assert shown() == ["classic_sd15"]
    # folded with a filter on: the button's badge says so
    page.locator(".lm-comfy-sidebar [data-bar=filters]").click()
    region.wait_for(state="hidden")
    assert page.locator(".lm-comfy-sidebar [data-bar=filters] .lm-filter-count").inner_text() == "1"
    page.locator(".lm-comfy-sidebar [data-bar=filters]").click()
    region.locator("[data-filter=clear]").click()
    page.locator(".lm-comfy-sidebar [data-bar=filters]").click()
    page.wait_for_function(f"() => document.querySelector('.lm-comfy-sidebar .lm-result-count')?.textContent.includes('{total}') || true")
    assert page.problems == []


# a new node must be where the user looks: every probed point of its box shows the canvas
# (not the sidebar, a toolbar, the minimap or a toast), which is what LiteGraph draws it on
NODE_IN_VIEW = """(n) => { const c = window.app.canvas, r = c.canvas.getBoundingClientRect(), ds = c.ds;
  const s = (x, y) => [(x + ds.offset[0]) * ds.scale + r.left, (y + ds.offset[1]) * ds.scale + r.top];
  const [x0, y0] = s(n.pos[0], n.pos[1] - 30), [x1, y1] = s(n.pos[0] + n.size[0], n.pos[1] + n.size[1]);
  const covered = [];
  for (let i = 0; i <= 4; i++) for (let j = 0; j <= 4; j++) {
    const x = x0 + (x1 - x0) * (0.02 + 0.96 * i / 4), y = y0 + (y1 - y0) * (0.02 + 0.96 * j / 4);
    const hit = document.elementFromPoint(x, y);
    if (hit !== c.canvas) covered.push([Math.round(x), Math.round(y), hit ? hit.className || hit.tagName : null]);
  }
  return {box: [x0, y0, x1, y1].map(Math.round), covered}; }"""


def newest_node(page, node_type: str):
    return page.evaluate_handle(f"() => window.app.canvas.graph.nodes.filter((n) => n.type === '{node_type}').at(-1)")


def test_added_nodes_land_in_view_mid_canvas_or_beside_their_source(page):
    open_tab(page)
    page.evaluate("() => window.app.canvas.deselectAll()")
    before = page.evaluate("() => window.app.canvas.graph.nodes.length")
    card = page.locator(CARD, has=page.locator(".lm-card-name", has_text="beta_sub"))
    card.hover()
    card.locator("[data-action=add]").click()
    page.wait_for_function(f"() => window.app.canvas.graph.nodes.length > {before}")
    placed = page.evaluate(NODE_IN_VIEW, newest_node(page, "LoraLoader"))
    assert placed["covered"] == [], placed
    page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-added-mid-view.png"))

    # a checkpoint far out of view is selected: the LoRA is wired after it and scrolled into view
    page.evaluate("""() => { const g = window.app.canvas.graph, n = window.LiteGraph.createNode('CheckpointLoaderSimple');
        n.pos = [-4000, 3000]; g.add(n); window.__lmFar = n; window.app.canvas.deselectAll(); window.app.canvas.select(n); }""")
    page.wait_for_function("() => document.querySelector('.lm-cs-hint').textContent.includes('Load Checkpoint')")
    card = page.locator(CARD, has=page.locator(".lm-card-name", has_text="alpha_portrait"))
    card.hover()
    card.locator("[data-action=add]").click()
    page.wait_for_function("() => window.app.canvas.graph.nodes.some((n) => n.type === 'LoraLoader' && n.getInputLink(0)?.origin_id === window.__lmFar.id)")
    lora = page.evaluate_handle("() => window.app.canvas.graph.nodes.find((n) => n.type === 'LoraLoader' && n.getInputLink(0)?.origin_id === window.__lmFar.id)")
    placed = page.evaluate(NODE_IN_VIEW, lora)
    assert placed["covered"] == [], placed
    beside = page.evaluate("(n) => n.pos[0] > window.__lmFar.pos[0] + window.__lmFar.size[0]", lora)
    assert beside
    page.screenshot(path=str(screenshot_dir() / f"panel-{frontend_tag(page)}-added-beside-source.png"))
    assert page.problems == []


def test_no_warning_or_deprecation_comes_from_our_scripts(page):
    # everything above ran with the probe installed; one more round of the graph actions
    open_tab(page)
    page.evaluate("() => { const n = window.app.canvas.graph.nodes.find((x) => x.type === 'LoraLoader'); window.app.canvas.deselectAll(); window.app.canvas.select(n); }")
    page.wait_for_timeout(900)  # the hint polls the selection
    ours = warnings_from_us(page)
    assert ours == [], ours
    print("deprecations raised by others:", sorted(set(deprecations(page))))
