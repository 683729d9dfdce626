"""Contract test of the ComfyUI sidebar (issue 6): web/comfyui/*.js loaded unchanged into a
page that provides the documented frontend extension API, backed by the real standalone
server on a generated library. Checks what the extension asks of ComfyUI's API."""
from __future__ import annotations

import json
import re

import pytest

from ..fixtures import LibraryBuilder
from .conftest import PLUGIN_NAME
from .harness import LOCALES, HostPage, get_json

pytestmark = pytest.mark.browser


def test_tab_registers_through_sidebar_tab_store_and_renders_models_with_previews(host):
    tabs = host.js("() => window.fake.tabs.map(t => ({id: t.id, type: t.type, title: t.title, icon: t.icon, via: t.via}))")
    # issue 12: a title and icon of our own beside ComfyUI's core "Model Library" tab
    assert tabs == [{"id": "lm-model-library", "type": "custom", "title": "LoRAs & Models",
                     "icon": "mdi mdi-view-gallery-outline", "via": "sidebarTab"}]
    host.open_tab()
    assert host.card("alpha_style").is_visible()
    assert host.card("beta").is_visible()
    host.page.wait_for_function(
        "() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card-img')].filter(i => !i.hidden && i.naturalWidth > 0).length >= 2",
        timeout=10000)
    assert host.page.locator(".lm-cs-types [role=tab][aria-selected=true]").inner_text() == "LoRAs"
    # every listing went through ComfyUI's api.fetchApi, never a hard-coded URL
    routes = host.js("() => window.fake.calls.filter(c => c[0] === 'fetchApi').map(c => c[1])")
    assert any(r.startswith("/lm/loras/list?") for r in routes)
    assert host.errors == []


def test_socket_listeners_are_registered_during_setup_before_the_server_is_asked_for_events(host):
    # ComfyUI reports socket messages nobody listens to as errors: the server sends ours only to a
    # tab that asked, and the tab asks once every listener is in place
    calls = host.js("() => window.fake.socketCalls")
    asked = calls.index(["listen", "fake-client"])
    assert {f"lm.{t}" for t in ("models_changed", "init_progress", "hash_progress", "download_progress")} <= {
        c[1] for c in calls[:asked] if c[0] == "addEventListener"}
    seen = host.js("""() => new Promise((resolve) => {
        window.fake.api.dispatchEvent(new CustomEvent('lm.civitai_fetch_progress', {detail: {status: 'completed', updated: 3, total: 5}}));
        resolve(window.fake.toasts.map(t => t.detail));
    })""")
    assert "CivitAI: 3 of 5 models updated." in seen


def test_add_creates_lora_loader_with_model_and_default_strength(host):
    host.js("() => window.fake.app.extensionManager.setting.set('ModelLibrary.General.DefaultLoraStrength', 0.7)")
    host.open_tab()
    host.click_add("beta")
    [node] = host.wait_nodes(1)
    assert node["type"] == "LoraLoader"
    assert node["widgets"] == {"lora_name": "chars/sub/beta.safetensors", "strength_model": 0.7, "strength_clip": 0.7}
    assert node["inputs"] == {"model": None, "clip": None}
    calls = host.js("() => window.fake.calls.filter(c => c[0] !== 'fetchApi')")
    assert calls[:3] == [["createNode", "LoraLoader"], ["beforeChange"], ["add", "LoraLoader"]]
    assert ["afterChange"] in calls
    assert any(t["detail"] == "Added beta to the workflow." and t["severity"] == "success" for t in host.js("() => window.fake.toasts"))


def test_add_wires_lora_after_selected_checkpoint_loader_and_takes_over_its_consumers(host):
    host.js("""() => {
        const f = window.fake;
        const ckpt = f.addNode('CheckpointLoaderSimple', [0, 0]);
        const sampler = f.addNode('KSampler', [700, 0]);
        const prompt = f.addNode('CLIPTextEncode', [400, 300]);
        ckpt.connect(0, sampler, 0);
        ckpt.connect(1, prompt, 0);
        f.canvas.selectItems([ckpt]);
        f.calls.length = 0;
    }""")
    host.open_tab()
    host.click_add("alpha_style")
    nodes = {n["type"]: n for n in host.wait_nodes(4)}
    lora = nodes["LoraLoader"]
    assert lora["widgets"]["lora_name"] == "alpha_style.safetensors"
    assert lora["inputs"] == {"model": ["CheckpointLoaderSimple", 0], "clip": ["CheckpointLoaderSimple", 1]}
    assert nodes["KSampler"]["inputs"]["model"] == ["LoraLoader", 0]
    assert nodes["CLIPTextEncode"]["inputs"]["clip"] == ["LoraLoader", 1]
    assert lora["pos"][0] > nodes["CheckpointLoaderSimple"]["pos"][0]


def test_add_after_a_model_only_source_uses_the_model_only_loader(host):
    host.js("() => { const f = window.fake; f.canvas.selectItems([f.addNode('UNETLoader', [0, 0])]); }")
    host.open_tab()
    host.click_add("alpha_style")
    nodes = {n["type"]: n for n in host.wait_nodes(2)}
    assert nodes["LoraLoaderModelOnly"]["inputs"] == {"model": ["UNETLoader", 0]}
    assert nodes["LoraLoaderModelOnly"]["widgets"]["lora_name"] == "alpha_style.safetensors"


def test_add_uses_the_path_separator_comfyui_lists(host):
    # ComfyUI on Windows lists "chars\\sub\\beta.safetensors"
    host.js("() => { const l = window.fake.choices.loras; l.splice(0, l.length, 'alpha_style.safetensors', 'chars\\\\sub\\\\beta.safetensors'); }")
    host.open_tab()
    host.click_add("beta")
    [node] = host.wait_nodes(1)
    assert node["widgets"]["lora_name"] == "chars\\sub\\beta.safetensors"
    assert not any(t["severity"] == "warn" for t in host.js("() => window.fake.toasts"))


def test_model_comfyui_does_not_list_yet_is_set_with_a_warning(host):
    host.js("() => { window.fake.choices.loras.length = 0; }")
    host.open_tab()
    host.click_add("beta")
    [node] = host.wait_nodes(1)
    assert node["widgets"]["lora_name"] == "chars/sub/beta.safetensors"
    host.page.wait_for_function("() => window.fake.toasts.some(t => t.severity === 'warn')")


def test_apply_sets_the_selected_loaders_model_without_adding_a_node(host):
    host.js("""() => { const f = window.fake; const n = f.addNode('LoraLoader', [0, 0]);
        n.widgets[0].value = 'alpha_style.safetensors'; f.canvas.selectItems([n]); }""")
    host.open_tab()
    host.click_add("beta")
    menu = host.page.locator(".lm-menu:not([hidden])")
    menu.wait_for()
    entries = menu.locator("[role=menuitem]").all_inner_texts()
    assert [e.strip() for e in entries] == ["Apply to “Load LoRA”", "Add a new node after “Load LoRA”"]
    menu.locator("[role=menuitem]", has_text="Apply to").click()
    host.page.wait_for_function("() => window.fake.graph.nodes[0].widgets[0].value !== 'alpha_style.safetensors'")
    [node] = host.nodes()
    assert node["widgets"]["lora_name"] == "chars/sub/beta.safetensors"


def test_checkpoint_and_diffusion_model_get_their_own_loaders(host):
    host.open_tab()
    host.switch_type("Checkpoints")
    host.card("sdxl_base").wait_for()
    host.click_add("sdxl_base")
    host.wait_nodes(1)
    host.js("() => window.fake.canvas.deselectAll()")
    host.click_add("flux1-dev")
    nodes = {n["type"]: n for n in host.wait_nodes(2)}
    assert nodes["CheckpointLoaderSimple"]["widgets"]["ckpt_name"] == "sdxl_base.safetensors"
    assert nodes["UNETLoader"]["widgets"]["unet_name"] == "flux1-dev.safetensors"


def test_embedding_is_inserted_at_the_cursor_of_the_last_focused_prompt(host):
    host.js("() => window.fake.addNode('CLIPTextEncode', [0, 0])")
    prompt = host.page.locator("#widgets textarea")
    prompt.fill("a photo of a cat")
    prompt.evaluate("el => { el.focus(); el.setSelectionRange(7, 7); }")
    host.open_tab()
    host.switch_type("Embeddings")
    host.card("easynegative").wait_for()
    expect_hint = host.page.locator(".lm-cs-hint")
    assert "CLIP Text Encode (Prompt)" in expect_hint.inner_text()
    host.click_add("easynegative")
    host.page.wait_for_function("() => document.querySelector('#widgets textarea').value.includes('embedding:')")
    assert prompt.input_value() == "a photo, embedding:easynegative, of a cat"
    assert host.js("() => window.fake.graph.nodes[0].widgets[0].value") == "a photo, embedding:easynegative, of a cat"
    assert len(host.nodes()) == 1


def test_embedding_without_a_prompt_target_explains_what_to_do(host):
    host.open_tab()
    host.switch_type("Embeddings")
    host.card("easynegative").wait_for()
    host.click_add("easynegative")
    host.page.wait_for_function("() => window.fake.toasts.some(t => t.detail === 'Select a loader node or a text field first.')")


def _drag_card_to(host, name: str, target_js: str, x: int, y: int) -> None:
    """HTML5 drag and drop with one DataTransfer, as the browser does it."""
    host.card(name).evaluate(f"""(card) => {{
        const dt = new DataTransfer();
        card.dispatchEvent(new DragEvent('dragstart', {{bubbles: true, cancelable: true, dataTransfer: dt}}));
        const target = {target_js};
        const r = target.getBoundingClientRect();
        const at = {{bubbles: true, cancelable: true, dataTransfer: dt, clientX: r.left + {x}, clientY: r.top + {y}}};
        target.dispatchEvent(new DragEvent('dragover', at));
        target.dispatchEvent(new DragEvent('drop', at));
        card.dispatchEvent(new DragEvent('dragend', {{bubbles: true, dataTransfer: dt}}));
    }}""")


def test_dropping_a_card_on_the_canvas_adds_the_loader_at_the_drop_point(host):
    host.open_tab()
    _drag_card_to(host, "alpha_style", "document.getElementById('graph-canvas')", 420, 260)
    [node] = host.wait_nodes(1)
    assert node["type"] == "LoraLoader" and node["pos"] == [420, 260]
    assert node["widgets"]["lora_name"] == "alpha_style.safetensors"


def test_dropping_a_card_on_a_loader_node_applies_it(host):
    host.js("() => window.fake.addNode('LoraLoader', [100, 100])")
    host.open_tab()
    _drag_card_to(host, "beta", "document.getElementById('graph-canvas')", 150, 150)
    host.page.wait_for_function("() => window.fake.graph.nodes[0].widgets[0].value === 'chars/sub/beta.safetensors'")
    assert len(host.nodes()) == 1


def test_dropping_a_lora_on_a_prompt_inserts_its_syntax(host):
    host.js("() => window.fake.addNode('CLIPTextEncode', [0, 0])")
    host.page.locator("#widgets textarea").fill("portrait")
    host.open_tab()
    _drag_card_to(host, "alpha_style", "document.querySelector('#widgets textarea')", 5, 5)
    host.page.wait_for_function("() => document.querySelector('#widgets textarea').value.includes('<lora:')")
    assert host.page.locator("#widgets textarea").input_value() == "portrait, <lora:alpha_style:1>"


def test_models_changed_on_comfyuis_socket_refreshes_the_tab(host, sidebar_library: LibraryBuilder, library_server):
    host.open_tab()
    sidebar_library.add_lora("gamma_new", preview="webp")
    get_json(f"{library_server.url}/api/lm/loras/scan", method="POST", timeout=20)
    host.js("""() => window.fake.api.dispatchEvent(new CustomEvent('lm.models_changed',
        {detail: {type: 'models_changed', model_type: 'lora', reason: 'scan', paths: []}}))""")
    host.card("gamma_new").wait_for(timeout=10000)


def test_open_library_command_menu_entry_and_base_path(host):
    ext = host.js("""() => { const e = window.fake.extensions[0];
        return {name: e.name, commands: e.commands.map(c => c.id), menu: e.menuCommands}; }""")
    assert ext["commands"] == ["ModelLibrary.Open"]
    assert ext["menu"] == [{"path": ["Extensions", "Model Library"], "commands": ["ModelLibrary.Open"]}]
    host.js("() => window.fake.app.extensionManager.command.execute('ModelLibrary.Open')")
    host.js("() => { window.fake.api.api_base = '/comfy'; window.fake.app.extensionManager.command.execute('ModelLibrary.Open'); window.fake.api.api_base = ''; }")
    origin = host.js("() => location.origin")
    opened = host.js("() => window.fake.opened")
    assert [o["url"] for o in opened] == [f"{origin}/loras", f"{origin}/comfy/loras"]
    assert all(o["target"] == "_blank" for o in opened)


def test_settings_are_declared_with_translation_keys_in_every_locale(host):
    settings = host.js("() => [...window.fake.settingDefs.values()].map(s => ({id: s.id, type: s.type, category: s.category}))")
    ids = {s["id"] for s in settings}
    assert {"ModelLibrary.General.DefaultLoraStrength", "ModelLibrary.General.BlurMatureContent"} <= ids
    for lang_dir in sorted(p for p in LOCALES.iterdir() if p.is_dir()):
        translated = json.loads((lang_dir / "settings.json").read_text(encoding="utf-8"))
        assert {i.replace(".", "_") for i in ids} <= set(translated), lang_dir.name
    assert all(s["category"][0] == "ModelLibrary" for s in settings)


def test_every_sidebar_text_has_an_english_locale_entry(host):
    # the entry and the modules it is made of (web/app/comfyui/)
    sources = [LOCALES.parent / "web" / "comfyui" / "model_library.js", *sorted((LOCALES.parent / "web" / "app" / "comfyui").glob("*.js"))]
    used = {key for path in sources for key in re.findall(r"\btr\('([A-Za-z]+)'", path.read_text(encoding="utf-8"))}
    english = json.loads((LOCALES / "en" / "main.json").read_text(encoding="utf-8"))["modelLibrary"]
    assert used and used <= set(english)
    defaults = host.js("async (url) => Object.keys((await import(url)).DEFAULT_TEXT)", f"/extensions/{PLUGIN_NAME}/model_library.js")
    assert set(defaults) <= set(english)


def test_sidebar_texts_follow_comfyuis_locale(host_factory):
    page = host_factory("locale=ja")
    title = page.js("() => window.fake.tabs[0].title")
    assert title == json.loads((LOCALES / "ja" / "main.json").read_text(encoding="utf-8"))["modelLibrary"]["title"]
    page.open_tab()
    japanese = json.loads((LOCALES / "ja" / "library.json").read_text(encoding="utf-8"))["types"]["lora"]
    assert page.page.locator(".lm-cs-types [role=tab]").first.inner_text() == japanese


def test_closing_the_tab_destroys_the_panel(host):
    host.open_tab()
    host.js("() => window.fake.closeTab('lm-model-library')")
    assert host.page.locator(".lm-comfy-sidebar").count() == 0


def test_keyboard_switches_types_and_adds_the_focused_card(host):
    host.open_tab()
    first_tab = host.page.locator(".lm-cs-types [role=tab]").first
    first_tab.focus()
    host.page.keyboard.press("ArrowRight")
    assert host.js("() => document.activeElement.textContent") == "Checkpoints"
    assert host.page.locator(".lm-cs-types [role=tab][aria-selected=true]").inner_text() == "Checkpoints"
    host.page.keyboard.press("Home")
    host.card("alpha_style").wait_for()
    host.card("alpha_style").focus()
    host.page.keyboard.press("a")
    [node] = host.wait_nodes(1)
    assert node["widgets"]["lora_name"] == "alpha_style.safetensors"


def test_keys_typed_in_the_sidebar_do_not_reach_comfyuis_shortcuts(host):
    host.open_tab()
    host.page.locator(".lm-comfy-sidebar input[type=search]").type("rq")
    assert host.js("() => window.fake.keysSeen") == []


def test_escape_closes_a_library_dialog_despite_comfyuis_escape_binding(host):
    host.open_tab()
    host.card("alpha_style").click()
    dialog = host.page.locator("dialog.lm-modal[open]")
    dialog.wait_for()
    host.page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=5000)
    assert "Escape" not in host.js("() => window.fake.keysSeen")


def test_models_changed_fills_an_empty_result(host, sidebar_library: LibraryBuilder, library_server):
    host.open_tab()
    host.page.locator(".lm-comfy-sidebar input[type=search]").fill("delta")
    host.page.wait_for_function("() => document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]:not([hidden])').length === 0")
    sidebar_library.add_lora("delta_late")
    get_json(f"{library_server.url}/api/lm/loras/scan", method="POST", timeout=20)
    host.js("""() => window.fake.api.dispatchEvent(new CustomEvent('lm.models_changed',
        {detail: {type: 'models_changed', model_type: 'lora', reason: 'scan', paths: []}}))""")
    host.card("delta_late").wait_for(timeout=10000)


def test_under_a_base_path_api_calls_and_previews_use_it(host):
    host.js("() => { window.fake.api.api_base = '/comfy'; }")
    host.open_tab()
    host.page.wait_for_function(
        "() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card-img')].filter(i => !i.hidden && i.naturalWidth > 0).length >= 2",
        timeout=10000)
    sources = host.js("() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card-img')].filter(i => !i.hidden).map(i => i.getAttribute('src'))")
    assert sources and all(src.startswith("/comfy/api/lm/previews?") for src in sources)
    assert host.errors == []


def test_copy_syntax_uses_comfyuis_strength_setting(browser, host_url):
    context = browser.new_context(viewport={"width": 1300, "height": 800}, permissions=["clipboard-read", "clipboard-write"])
    try:
        hp = HostPage(context.new_page(), f"{host_url}/")
        hp.js("() => window.fake.app.extensionManager.setting.set('ModelLibrary.General.DefaultLoraStrength', 0.65)")
        hp.open_tab()
        hp.card("alpha_style").click(button="right")
        hp.page.locator(".lm-menu:not([hidden]) [role=menuitem]", has_text="Copy LoRA syntax").click()
        hp.page.wait_for_function("() => window.fake.toasts.some(t => t.detail.includes('<lora:alpha_style:0.65>'))")
        assert hp.page.evaluate("() => navigator.clipboard.readText()") == "<lora:alpha_style:0.65>"
    finally:
        context.close()


@pytest.mark.parametrize(("width", "columns"), [(224, 2), (312, 3)])
def test_sidebar_grid_fits_columns_and_hover_buttons_leave_the_badge_visible(host, width: int, columns: int):
    # ComfyUI 1.27's default sidebar is 224 px wide; a widened one ~312 px
    host.js("(w) => { document.querySelector('#sidebar').style.width = `${w}px`; }", width)
    host.open_tab()
    grid = host.js("() => { const g = document.querySelector('.lm-comfy-sidebar .lm-grid-canvas');"
                   " return {width: g.clientWidth, card: parseFloat(g.style.getPropertyValue('--lm-card-w'))}; }")
    assert int((grid["width"] + 8) // (grid["card"] + 8)) == columns, grid  # cards of one row fill the width
    card = host.card("alpha_style")
    card.hover()
    card.locator('[data-action="add"]').wait_for()
    boxes = host.js("""() => { const c = [...document.querySelectorAll('.lm-comfy-sidebar .lm-card[data-path]')].find(x => x.matches(':hover'));
        const r = (s) => { const b = c.querySelector(s).getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
        const base = c.querySelector('.lm-card-base');
        return {badge: r('.lm-card-base'), actions: r('.lm-card-actions'), star: r('.lm-card-fav'),
                text: base.textContent, truncated: base.scrollWidth > base.clientWidth}; }""")
    badge = boxes["badge"]
    assert boxes["text"] == "SDXL 1.0" and not boxes["truncated"], boxes
    for other in (boxes["actions"], boxes["star"]):
        overlap = not (badge[2] <= other[0] or other[2] <= badge[0] or badge[3] <= other[1] or other[3] <= badge[1])
        assert not overlap, boxes
    artifacts = LOCALES.parent / "tests" / "browser" / "artifacts"  # gitignored
    artifacts.mkdir(parents=True, exist_ok=True)
    host.page.locator("#sidebar").screenshot(path=str(artifacts / f"comfy-sidebar-{width}.png"))


def test_count_label_uses_the_plural_form_of_the_locale(host):
    host.open_tab()
    host.page.locator(".lm-comfy-sidebar input[type=search]").fill("beta")
    host.page.wait_for_function("() => document.querySelector('.lm-comfy-sidebar .lm-result-count').textContent === '1 model'")
    russian = json.loads((LOCALES / "ru" / "library.json").read_text(encoding="utf-8"))
    texts = host.js("""async (messages) => {
        const { createI18n } = await import('/lm/static/i18n/i18n.js');
        const i18n = createI18n({ lang: 'ru', messages });
        return [1, 3, 5, 21, 1000].map((count) => i18n.t('grid.count', { count }));
    }""", russian)
    assert texts == ["1 модель", "3 модели", "5 моделей", "21 модель", "1\u00a0000 моделей"]


def test_page_size_setting_sets_the_listing_page_size(host):
    host.js("() => window.fake.app.extensionManager.setting.set('ModelLibrary.General.PageSize', 20)")
    host.open_tab()
    routes = host.js("() => window.fake.calls.filter(c => c[0] === 'fetchApi' && c[1].startsWith('/lm/loras/list?')).map(c => c[1])")
    assert routes and all("page_size=20" in r for r in routes)
