"""The full library page in a real Chromium against the standalone server (issue 6).

Read-only tests share one server per module; tests that change the library get a fresh one.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def card_names(page) -> list[str]:
    """Names on the loaded cards, in grid order (by index)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.lm-card:not([hidden]):not(.lm-card--loading)')]
            .sort((a, b) => a.dataset.index - b.dataset.index)
            .map((el) => el.querySelector('.lm-card-name').textContent)"""
    )


def api_names(server, **params: str) -> list[str]:
    return [item["model_name"] or item["file_name"] for item in server.list_loras(**params)["items"]]


def wait_for_names(page, expected: list[str]) -> None:
    try:
        _wait_for_names(page, expected)
    except Exception:
        raise AssertionError(f"grid shows {card_names(page)}, expected {expected}")


def _wait_for_names(page, expected: list[str]) -> None:
    page.wait_for_function(
        """(expected) => {
            const names = [...document.querySelectorAll('.lm-card:not([hidden]):not(.lm-card--loading)')]
              .sort((a, b) => a.dataset.index - b.dataset.index)
              .map((el) => el.querySelector('.lm-card-name').textContent);
            return JSON.stringify(names.slice(0, expected.length)) === JSON.stringify(expected)
              && names.length === expected.length;
        }""",
        arg=expected,
    )


def test_page_loads_without_console_errors(shared_server, open_page):
    page, errors = open_page(f"{shared_server.base_url}/loras")
    page.wait_for_function("() => document.querySelector('.lm-result-count').textContent.includes('24')")
    shown = card_names(page)
    assert len(shown) >= 8
    assert shown == api_names(shared_server)[: len(shown)]
    assert page.locator(".lm-type[aria-current='page']").inner_text() == "LoRAs"
    assert page.title().startswith("LoRAs")
    page.wait_for_timeout(300)  # let late module errors surface
    assert errors.all() == []


def test_search_filter_and_sort_change_the_grid(shared_server, open_page):
    page, errors = open_page(f"{shared_server.base_url}/loras")

    page.fill("[data-role='search']", "knight")
    wait_for_names(page, api_names(shared_server, search="knight"))
    assert 0 < len(card_names(page)) < 24

    page.fill("[data-role='search']", "")
    page.click(".lm-chip[data-base='Pony']")
    wait_for_names(page, api_names(shared_server, base_model="Pony"))
    assert len(card_names(page)) == 5

    page.select_option(".lm-sort", "name:desc")
    wait_for_names(page, api_names(shared_server, base_model="Pony", sort_by="name:desc"))

    page.click(".lm-chip[data-base='Pony']")
    page.click("[data-filter='favorites']")
    wait_for_names(page, api_names(shared_server, favorites_only="true", sort_by="name:desc"))
    assert card_names(page) == ["Frost Robot 05"]  # the one favourite of the generated library
    assert errors.all() == []


def test_keyboard_focus_search_arrows_enter_and_escape(shared_server, open_page):
    page, _ = open_page(f"{shared_server.base_url}/loras")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.dataset.role") == "search"
    page.locator(".lm-card[data-index='0']").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    columns = page.evaluate(
        "() => new Set([...document.querySelectorAll('.lm-card:not([hidden])')]"
        ".map((c) => Math.round(c.getBoundingClientRect().left))).size"
    )
    page.keyboard.press("ArrowDown")
    assert int(page.evaluate("document.activeElement.dataset.index")) == 1 + columns
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog.lm-details-modal[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog.lm-details-modal", state="detached")
    assert page.evaluate("document.activeElement.dataset.index") == "0"  # focus returns to the card
    page.keyboard.press("Shift+F10")
    page.wait_for_selector(".lm-menu:not([hidden])")
    assert page.evaluate("document.activeElement.dataset.menuId") == "copy"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.menuId") == "copy-words"
    page.keyboard.press("Escape")
    page.wait_for_selector(".lm-menu", state="hidden")
    assert page.evaluate("document.activeElement.dataset.index") == "0"


def test_pure_modules_sanitise_and_parse(shared_server, open_page):
    page, errors = open_page(f"{shared_server.base_url}/loras")
    result = page.evaluate(
        """async () => {
            const s = await import('/lm/static/lib/html_sanitizer.js');
            const ref = await import('/lm/static/lib/civitai_ref.js');
            const text = await import('/lm/static/lib/model_text.js');
            const box = document.createElement('div');
            box.append(s.sanitizeHtml('<p onclick="x()">Hi <b>there</b><script>alert(1)</script>' +
              '<a href="javascript:alert(1)">bad</a><a href="https://civitai.com/x">good</a>' +
              '<img src="data:image/png;base64,AAAA"><img src="https://image.civitai.com/a.png" onerror="x()">' +
              '<iframe src="https://evil"></iframe><style>*{}</style><custom-el>kept text</custom-el></p>'));
            return {
              html: box.innerHTML,
              ref1: ref.parseCivitaiRef('https://civitai.com/models/123/some-name?modelVersionId=456'),
              ref2: ref.parseCivitaiRef('789'),
              ref3: ref.parseCivitaiRef('https://civitai.com/api/download/models/55'),
              ref4: ref.parseCivitaiRef('https://evil.example/models/1'),
              syntax: text.loraSyntax({file_name: 'x', usage_tips: '{"strength": 0.65}', model_type: 'lora'}, 1),
            };
        }"""
    )
    html = result["html"]
    assert "<script" not in html and "onclick" not in html and "javascript:" not in html
    assert "<iframe" not in html and "<style" not in html and "data:image" not in html and "onerror" not in html
    assert '<a href="https://civitai.com/x" target="_blank" rel="noopener noreferrer nofollow">good</a>' in html
    assert "<b>there</b>" in html and "kept text" in html and "https://image.civitai.com/a.png" in html
    assert result["ref1"] == {"modelId": 123, "versionId": 456}
    assert result["ref2"] == {"modelId": 789, "versionId": None}
    assert result["ref3"] == {"modelId": None, "versionId": 55}
    assert result["ref4"] is None
    assert result["syntax"] == "<lora:x:0.65>"
    assert errors.all() == []


def test_layout_at_375px_is_usable(shared_server, open_page, artifacts):
    page, errors = open_page(f"{shared_server.base_url}/loras", width=375, height=812)
    page.wait_for_timeout(400)  # previews fade in
    page.screenshot(path=str(artifacts / "library-375.png"))
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.lm-card:not([hidden])')].slice(0, 4)
            .map((el) => { const r = el.getBoundingClientRect(); return [r.left, r.right, r.width]; })"""
    )
    assert all(0 <= left and right <= 375 for left, right, _ in boxes)
    assert len({round(left) for left, _, _ in boxes}) == 2  # two columns
    search = page.locator("[data-role='search']").bounding_box()
    assert search["width"] > 300
    page.click("[data-bar='filters']")
    page.wait_for_selector("#lm-filters:not([hidden])")
    page.wait_for_timeout(300)  # drawer animation
    page.screenshot(path=str(artifacts / "library-375-filters.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#lm-filters", state="hidden")
    page.click(".lm-card[data-index='0']")
    page.wait_for_selector("dialog.lm-details-modal[open]")
    page.wait_for_timeout(300)  # dialog animation, preview load
    page.screenshot(path=str(artifacts / "library-375-details.png"))
    assert errors.all() == []


def test_desktop_screenshots(shared_server, open_page, artifacts):
    page, errors = open_page(f"{shared_server.base_url}/loras", width=1400, height=900)
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts / "library-desktop.png"))
    page.click(".lm-card[data-index='0']", button="right")
    page.wait_for_selector(".lm-menu:not([hidden])")
    page.wait_for_timeout(200)
    page.screenshot(path=str(artifacts / "library-context-menu.png"))
    page.keyboard.press("Escape")
    page.click(".lm-card[data-index='1']")
    page.wait_for_selector("dialog.lm-details-modal[open]")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "library-details.png"))
    assert errors.all() == []


def test_language_switch(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    assert page.locator("[data-bar='filters'] .lm-btn-label").inner_text() == "Filters"
    page.click("[data-tool='settings']")
    page.wait_for_selector("dialog[open] [data-setting='language']")
    page.select_option("dialog[open] [data-setting='language']", "de")
    page.click("dialog[open] [data-modal-action='save']")
    page.wait_for_function("() => document.documentElement.lang === 'de'")
    page.wait_for_function("() => document.querySelector('[data-role=search]').placeholder === 'Modelle suchen…'")
    assert page.locator(".lm-type[aria-current='page']").inner_text() == "LoRAs"
    assert page.locator(".lm-brand-name").inner_text() == "Modellbibliothek"
    assert fresh_server.get_json("/api/lm/settings")["settings"]["language"] == "de"
    page.reload()
    page.wait_for_selector(".lm-card:not(.lm-card--loading)")
    assert page.evaluate("document.documentElement.lang") == "de"
    assert page.locator("[data-role='search']").get_attribute("placeholder") == "Modelle suchen…"
    assert errors.all() == []


def test_compact_panel_mounts_for_the_sidebar(shared_server, open_page, artifacts):
    """The ComfyUI sidebar mounts `createLibraryPanel(root, {compact: true, onAdd})` from
    web/app/: it renders compact cards from the same API and reports "Add" with the item."""
    page, errors = open_page(f"{shared_server.base_url}/loras")
    page.evaluate(
        """async () => {
            const { createApiClient } = await import('/lm/static/api/client.js');
            const { createI18n } = await import('/lm/static/i18n/i18n.js');
            const { createToasts } = await import('/lm/static/components/toasts.js');
            const { createLibraryPanel } = await import('/lm/static/components/library_panel.js');
            const api = createApiClient();
            const i18n = createI18n({ lang: 'en' });
            await i18n.load(api, 'en');
            const host = document.createElement('div');
            host.id = 'sidebar-host';
            host.style.cssText = 'position:fixed;left:0;top:0;width:320px;height:640px;display:flex;z-index:9999;background:#111';
            document.body.append(host);
            window.__added = [];
            const events = { on: () => () => {} };
            createLibraryPanel(host, {
              api, prefix: 'loras', modelType: 'lora', t: i18n.t, lang: () => 'en', events,
              toasts: createToasts(host, { t: i18n.t }), compact: true,
              onAdd: (item) => window.__added.push(item.file_name),
            });
        }"""
    )
    host = page.locator("#sidebar-host")
    host.locator(".lm-card:not(.lm-card--loading)").first.wait_for()
    assert page.locator("#sidebar-host.lm-panel--compact .lm-grid--compact").count() == 1
    widths = page.evaluate("() => [...document.querySelectorAll('#sidebar-host .lm-card:not([hidden])')].slice(0, 2).map((c) => c.getBoundingClientRect().width)")
    assert all(80 < w < 120 for w in widths)  # three columns in a 320 px sidebar
    page.wait_for_timeout(300)
    host.screenshot(path=str(artifacts / "compact-panel.png"))
    first = host.locator(".lm-card[data-index='0']")
    first.hover()
    first.locator("[data-action='add']").click()
    assert page.evaluate("() => window.__added") == ["lora_00"]
    assert errors.all() == []


def test_type_switcher_opens_checkpoints_and_embeddings(shared_server, open_page):
    page, errors = open_page(f"{shared_server.base_url}/loras")
    # issue 12: links are relative to the page and use the lm/ form every host serves
    assert page.locator(".lm-type[data-type='embeddings']").get_attribute("href") == "./lm/embeddings"
    page.click(".lm-type[data-type='checkpoints']")
    page.wait_for_url("**/lm/checkpoints")
    page.wait_for_selector(".lm-card:not(.lm-card--loading)")
    assert sorted(card_names(page)) == ["base_15", "base_xl"]
    assert page.locator(".lm-type[aria-current='page']").inner_text() == "Checkpoints"
    assert page.locator(".lm-type[data-type='loras']").get_attribute("href") == "../lm/loras"
    page.click(".lm-type[data-type='embeddings']")
    page.wait_for_url("**/lm/embeddings")
    page.wait_for_selector(".lm-card:not(.lm-card--loading)")
    assert sorted(card_names(page)) == ["bad_hands", "easy_negative"]
    page.locator(".lm-card[data-index='0']").click(button="right")
    assert page.locator(".lm-menu [data-menu-id='copy']").inner_text() == "Copy syntax"
    assert errors.all() == []


def test_pure_modules_compute_queries_layout_and_pages(shared_server, open_page):
    page, errors = open_page(f"{shared_server.base_url}/loras")
    result = page.evaluate(
        """async () => {
            const q = await import('/lm/static/lib/list_query.js');
            const g = await import('/lm/static/lib/grid_layout.js');
            const { PageCache } = await import('/lm/static/lib/page_cache.js');
            const f = await import('/lm/static/lib/format.js');
            const tree = await import('/lm/static/lib/folder_tree_model.js');
            const nsfw = await import('/lm/static/lib/nsfw.js');
            const query = { ...q.defaultQuery(), search: ' cat ', baseModels: ['SDXL 1.0', 'Pony'], tagExclude: ['nsfw'], folder: 'a/b', recursive: false };
            const layout = g.computeLayout({ width: 1000, minCardWidth: 200, gap: 10, aspect: 1.5 });
            const cache = new PageCache({ pageSize: 100, capacity: 2 });
            cache.setPage(1, [{ file_path: 'x' }], 250);
            cache.setPage(2, [], 250);
            cache.setPage(3, [], 250);
            return {
              params: q.buildListParams(query, 3, 100).toString(),
              filters: q.countActiveFilters(query),
              cycle: [q.cycleTag(query, 'nsfw'), q.cycleTag(query, 'new')],
              layout,
              range: g.visibleRange({ scrollTop: 3100, viewportHeight: 600, layout, total: 1000, overscanRows: 1 }),
              pages: g.pagesForRange(180, 420, 100),
              moves: [g.moveIndex(7, 'ArrowDown', 4, 10), g.moveIndex(7, 'ArrowRight', 4, 8), g.moveIndex(0, 'ArrowUp', 4, 10)],
              cachePages: [...cache.pages.keys()], total: cache.total, evicted: cache.getItem(0),
              bytes: [f.formatBytes(0), f.formatBytes(1536), f.formatBytes(5 * 1024 ** 3)],
              tree: tree.normaliseTree({ b: {}, a: { children: { z: {}, c: {} } } }),
              flat: tree.normaliseTree(['x/y', 'x', 'w']).map((n) => n.path),
              blur: [nsfw.shouldBlur(8, { mature_blur_level: 'R' }), nsfw.shouldBlur(2, { mature_blur_level: 'R' }), nsfw.shouldBlur(16, { blur_mature_content: false })],
            };
        }"""
    )
    assert result["params"] == (
        "page=3&page_size=100&sort_by=name%3Aasc&search=cat&search_filename=true&search_modelname=true&search_tags=true"
        "&search_creator=false&search_trigger_words=false&folder=a%2Fb&recursive=false&base_model=SDXL+1.0&base_model=Pony"
        "&tag_exclude=nsfw&tag_logic=any"
    )
    assert result["filters"] == 4
    assert result["cycle"] == [{"tagInclude": [], "tagExclude": []}, {"tagInclude": ["new"], "tagExclude": ["nsfw"]}]
    assert result["layout"] == {"columns": 4, "cardWidth": 242, "cardHeight": 363, "rowHeight": 373, "gap": 10}
    assert result["range"] == {"start": 28, "end": 44, "firstVisible": 32, "lastVisible": 39}
    assert result["pages"] == [2, 3, 4, 5]
    assert result["moves"] == [7, 7, 0]
    assert result["cachePages"] == [2, 3] and result["total"] == 250 and result["evicted"] is None
    assert result["bytes"] == ["0 B", "1.5 KB", "5 GB"]
    assert [n["name"] for n in result["tree"]] == ["a", "b"]
    assert [c["path"] for c in result["tree"][0]["children"]] == ["a/c", "a/z"]
    assert result["flat"] == ["w", "x"]
    assert result["blur"] == [True, False, False]
    assert errors.all() == []


SIDE_PANEL_ROUTES = ("/base-models", "/top-tags", "/unified-folder-tree")


def test_first_cards_do_not_wait_for_the_side_panels(shared_server, browser):
    """Issue 13: page 1 is asked for together with the translations, the filter panel's lists
    only once the cards are on screen; held side-panel requests do not hold the cards back."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, service_workers="block")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        order: list[str] = []
        held = []
        page.on("request", lambda r: order.append(r.url) if "/api/lm/" in r.url else None)
        page.route(lambda url: any(f"/api/lm/loras{p}" in url for p in SIDE_PANEL_ROUTES), lambda route: held.append(route))
        page.goto(f"{shared_server.base_url}/loras")
        page.wait_for_selector(".lm-card:not(.lm-card--loading) .lm-card-name")
        assert card_names(page) == api_names(shared_server)[: len(card_names(page))]
        # no dialog module was needed for the cards (they load on first use, or later in the background)
        modules = page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.js'))")
        assert not [m for m in modules if m.endswith("_dialog.js") and "details_dialog" not in m]
        first_list = next(i for i, u in enumerate(order) if "/loras/list?" in u and "page_size=100" in u)
        i18n = next(i for i, u in enumerate(order) if "/api/lm/i18n" in u)
        side = [i for i, u in enumerate(order) if any(p in u for p in SIDE_PANEL_ROUTES)]
        assert abs(first_list - i18n) == 1  # asked for together, before anything else of the API
        assert all(i > first_list for i in side)
        page.wait_for_timeout(200)
        assert len(held) == len(SIDE_PANEL_ROUTES)  # asked for after the cards, and still held
        assert page.locator(".lm-chip[data-base]").count() == 0
        for route in held:
            route.continue_()
        page.locator(".lm-chip[data-base='Pony']").wait_for()
        # the dialogs still open (their module loads on first use)
        page.click("[data-tool='settings']")
        page.locator("dialog[open]").wait_for()
    finally:
        context.close()


def test_idle_page_runs_no_animation(shared_server, open_page):
    """The grid's busy bar stands still while hidden: an endless `left` animation re-laid the
    whole page out on every frame (issue 13); nothing else animates on an idle page."""
    page, errors = open_page(f"{shared_server.base_url}/loras")
    page.wait_for_function("() => !document.querySelector('.lm-grid--loading')")
    page.wait_for_timeout(500)
    running = page.evaluate(
        "() => document.getAnimations().filter((a) => a.playState === 'running')"
        ".map((a) => [a.animationName || a.transitionProperty, String(a.effect.target.className)])"
    )
    assert running == []
    assert errors.all() == []
