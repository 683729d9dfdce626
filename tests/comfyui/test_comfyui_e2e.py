"""End-to-end test against a REAL ComfyUI (issue 6): our folder symlinked into a tmp
`custom_nodes`, generated models in `models/`, the real frontend in headless Chromium.
Skipped unless COMFYUI_DIR (a ComfyUI work tree) and COMFYUI_PYTHON (its interpreter) are set;
COMFYUI_EXTRA_ARGS adds arguments (e.g. `--front-end-root DIR` for a newer frontend).

Screenshots go to $LM_SCREENSHOT_DIR, else tests/browser/artifacts/ (git-ignored)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import urllib.error
import urllib.request
from typing import Iterator

import aiohttp
import pytest

from ..fixtures import LibraryBuilder
from .harness import get_json
from .real_comfyui import ComfyUIProcess, open_comfyui_page, screenshot_dir, skip_unless_available

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]
skip_unless_available()

TAB_BUTTON = ".lm-model-library-tab-button, [data-testid='lm-model-library-tab-button']"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> LibraryBuilder:
    return LibraryBuilder(tmp_path_factory.mktemp("comfyui-base") / "models")


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory, models: LibraryBuilder) -> Iterator[str]:
    """A real ComfyUI on a tmp base directory holding our plugin and generated models."""
    lib = models
    lib.add_lora("e2e_alpha", preview="webp", sidecar={"trigger_words": ["alpha girl"]})
    lib.add_lora("e2e_beta", "sub", preview="png")
    for i in range(12):
        lib.add_lora(f"style_{i:02d}", "styles", preview="webp" if i % 2 else None)
    lib.add_checkpoint("e2e_checkpoint")
    lib.add_embedding("e2e_negative")
    server = ComfyUIProcess(models.base.parent, tmp_path_factory.mktemp("comfyui"))
    try:
        server.wait_for(lambda: server.get_json("/api/lm/loras/list?page_size=1")["total"] >= 14)
        server.skip_tutorial()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(comfyui: str):
    yield from open_comfyui_page(comfyui)


def card(pg, name: str):
    return pg.locator(".lm-comfy-sidebar .lm-card[data-path]", has=pg.locator(".lm-card-name", has_text=name))


def click_add(pg, name: str) -> None:
    c = card(pg, name)
    c.scroll_into_view_if_needed()
    c.hover()
    c.locator('[data-action="add"]').click()


def test_sidebar_tab_opens_inside_comfyui_and_lists_the_models(page):
    frontend = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ || null")
    print(f"ComfyUI frontend {frontend}")
    page.locator(TAB_BUTTON).first.click()
    card(page, "e2e_alpha").wait_for(timeout=30000)
    page.wait_for_function("() => [...document.querySelectorAll('.lm-comfy-sidebar .lm-card-img')].some(i => !i.hidden && i.naturalWidth > 0)", timeout=15000)
    page.screenshot(path=str(screenshot_dir() / "comfyui-sidebar.png"))
    assert page.problems == []


def test_add_puts_a_wired_lora_loader_into_the_real_graph(page):
    # our own small graph (default workflows differ between frontends): checkpoint → sampler, prompt
    page.evaluate("""() => {
        const { app } = window, LG = window.LiteGraph, g = app.graph;
        g.clear();
        const make = (type, pos) => { const n = LG.createNode(type); n.pos = pos; g.add(n); return n; };
        const ckpt = make('CheckpointLoaderSimple', [60, 120]);
        const sampler = make('KSampler', [900, 120]);
        const prompt = make('CLIPTextEncode', [480, 420]);
        ckpt.connect(0, sampler, 0);
        ckpt.connect(1, prompt, 0);
        app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1;
        app.canvas.deselectAll?.(); app.canvas.selectNode(ckpt);
        app.canvas.setDirty(true, true);
    }""")
    page.wait_for_function("() => document.querySelector('.lm-cs-hint')?.textContent.includes('Load Checkpoint')")
    click_add(page, "e2e_beta")
    page.wait_for_function("() => window.app.graph.nodes.some(n => n.type === 'LoraLoader')", timeout=10000)
    result = page.evaluate("""() => {
        const g = window.app.graph;
        const lora = g.nodes.find(n => n.type === 'LoraLoader');
        const origin = (node, name) => { const input = node.inputs.find(i => i.name === name);
            const link = input && input.link != null ? g.getLink(input.link) : null;
            return link ? g.getNodeById(link.origin_id).type : null; };
        const sampler = g.nodes.find(n => n.type === 'KSampler');
        const widget = lora.widgets.find(w => w.name === 'lora_name');
        return { value: widget.value, listed: widget.options.values.includes(widget.value),
                 strength: lora.widgets.find(w => w.name === 'strength_model').value,
                 model: origin(lora, 'model'), clip: origin(lora, 'clip'), sampler: origin(sampler, 'model') };
    }""")
    assert result == {"value": "sub/e2e_beta.safetensors", "listed": True, "strength": 1,
                      "model": "CheckpointLoaderSimple", "clip": "CheckpointLoaderSimple", "sampler": "LoraLoader"}
    page.screenshot(path=str(screenshot_dir() / "comfyui-sidebar-added.png"))
    assert page.problems == []


def test_apply_replaces_the_model_of_the_selected_lora_loader(page):
    page.evaluate("() => { const n = window.app.graph.nodes.find(n => n.type === 'LoraLoader'); window.app.canvas.deselectAll?.(); window.app.canvas.selectNode(n); }")
    click_add(page, "e2e_alpha")
    menu = page.locator(".lm-comfy-sidebar .lm-menu:not([hidden])")
    menu.wait_for()
    menu.evaluate("m => Promise.all(m.getAnimations({subtree: true}).map(a => a.finished))")
    page.screenshot(path=str(screenshot_dir() / "comfyui-sidebar-apply-menu.png"))
    menu.locator("[role=menuitem]", has_text="Apply to").click()
    page.wait_for_function("() => window.app.graph.nodes.find(n => n.type === 'LoraLoader').widgets[0].value === 'e2e_alpha.safetensors'")
    assert page.evaluate("() => window.app.graph.nodes.filter(n => n.type === 'LoraLoader').length") == 1


def test_embedding_goes_into_the_focused_prompt_widget(page):
    page.evaluate("""() => { const node = window.app.graph.nodes.find(n => n.type === 'CLIPTextEncode');
        const ta = node.widgets.find(w => w.element instanceof HTMLTextAreaElement).element;
        ta.value = 'a watercolor fox'; ta.dispatchEvent(new Event('input', {bubbles: true}));
        ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); }""")
    page.locator(".lm-cs-types [role=tab]", has_text="Embeddings").click()
    card(page, "e2e_negative").wait_for(timeout=15000)
    click_add(page, "e2e_negative")
    page.wait_for_function("""() => window.app.graph.nodes.some(n => n.type === 'CLIPTextEncode'
        && n.widgets[0].value === 'a watercolor fox, embedding:e2e_negative')""", timeout=10000)
    page.screenshot(path=str(screenshot_dir() / "comfyui-sidebar-embedding.png"))
    assert page.problems == []


def test_dropping_a_card_on_empty_canvas_adds_a_loader_there(page):
    page.locator(".lm-cs-types [role=tab]", has_text="LoRAs").click()
    card(page, "e2e_alpha").wait_for(timeout=15000)
    before = page.evaluate("() => window.app.graph.nodes.length")
    card(page, "e2e_alpha").evaluate("""(c) => {
        const app = window.app, el = app.canvas.canvas, r = el.getBoundingClientRect();
        // an empty spot of the canvas that nothing covers
        let x = 0, y = 0;
        search: for (let py = r.bottom - 140; py > r.top + 60; py -= 40) {
            for (let px = r.right - 380; px > r.left + 340; px -= 40) {
                const pos = app.canvas.convertEventToCanvasOffset({clientX: px, clientY: py});
                if (document.elementFromPoint(px, py) === el && !app.graph.getNodeOnPos(pos[0], pos[1])) { x = px; y = py; break search; }
            }
        }
        const dt = new DataTransfer();
        c.dispatchEvent(new DragEvent('dragstart', {bubbles: true, cancelable: true, dataTransfer: dt}));
        const at = {bubbles: true, cancelable: true, dataTransfer: dt, clientX: x, clientY: y};
        el.dispatchEvent(new DragEvent('dragover', at));
        el.dispatchEvent(new DragEvent('drop', at));
        c.dispatchEvent(new DragEvent('dragend', {bubbles: true, dataTransfer: dt}));
    }""")
    page.wait_for_function(f"() => window.app.graph.nodes.length > {before}", timeout=10000)
    node = page.evaluate("() => { const n = window.app.graph.nodes.at(-1); return {type: n.type, value: n.widgets[0].value}; }")
    assert node == {"type": "LoraLoader", "value": "e2e_alpha.safetensors"}
    assert page.problems == []


def test_models_changed_pushed_on_comfyuis_socket_updates_the_open_tab(page, comfyui: str, models: LibraryBuilder):
    page.locator(".lm-cs-types [role=tab]", has_text="LoRAs").click()
    card(page, "e2e_alpha").wait_for(timeout=15000)
    page.evaluate("() => { window.lmEvents = []; window.comfyAPI.api.api.addEventListener('lm.models_changed', e => window.lmEvents.push(e.detail)); }")
    page.locator(".lm-comfy-sidebar select.lm-sort").select_option("date:desc")
    models.add_lora("zz_live_added", preview="webp")
    # the rescan's models_changed travels server → send_sync("lm.models_changed") → ComfyUI's socket → our relay
    get_json(f"{comfyui}/api/lm/loras/scan", method="POST", timeout=30)
    page.wait_for_function("() => window.lmEvents.length > 0", timeout=15000)
    card(page, "zz_live_added").wait_for(timeout=15000)
    assert page.problems == []


def test_comfyuis_socket_carries_our_events_only_to_a_client_that_asked(comfyui: str, models: LibraryBuilder):
    """ComfyUI's socket is open before extensions load, and the newer frontends report each message
    type nobody listens to as a console error: a client that did not ask is sent no lm.* message."""

    async def run() -> tuple[set[str], set[str]]:
        ws_url = comfyui.replace("http://", "ws://") + "/ws"
        async with aiohttp.ClientSession() as session:
            asked = await session.ws_connect(ws_url)
            silent = await session.ws_connect(ws_url)
            client_id = (await asked.receive_json())["data"]["sid"]  # ComfyUI's first message: status + sid
            await silent.receive_json()
            async with session.post(f"{comfyui}/api/lm/events/listen", json={"client_id": client_id}) as response:
                assert response.status == 200
            async with session.post(f"{comfyui}/api/lm/events/listen", json={"client_id": "no-such-client"}) as response:
                assert response.status == 404
            models.add_lora("zz_socket_probe")
            async with session.post(f"{comfyui}/api/lm/loras/scan", json={}) as response:
                assert response.status == 200

            async def types_until_quiet(ws) -> set[str]:
                seen: set[str] = set()
                with contextlib.suppress(asyncio.TimeoutError):
                    while True:
                        message = await ws.receive(timeout=2.0)
                        if message.type != aiohttp.WSMsgType.TEXT:
                            break
                        seen.add(json.loads(message.data)["type"])
                return seen

            heard, unheard = await asyncio.gather(types_until_quiet(asked), types_until_quiet(silent))
            await asked.close()
            await silent.close()
            return heard, unheard

    # a thread of its own: Playwright's sync API keeps an event loop running on this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        heard, unheard = pool.submit(asyncio.run, run()).result()
    assert "lm.models_changed" in heard
    assert not {t for t in unheard if t.startswith("lm.")}


def _status(url: str, headers: dict[str, str], *, method: str = "GET", body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def test_inside_comfyui_our_routes_refuse_a_rebound_name_and_comfyuis_own_are_untouched(comfyui):
    """Issue 9: the Host allow-list and our headers apply to our routes only."""
    rebound = {"Host": "attacker.example:8188"}
    assert _status(f"{comfyui}/api/lm/loras/list", rebound)[0] == 403
    assert _status(f"{comfyui}/loras", {**rebound, "Accept": "text/html"})[0] == 403
    same_site = {"Sec-Fetch-Site": "same-site"}
    assert _status(f"{comfyui}/api/lm/pause-download?download_id=x", same_site)[0] == 403
    status, headers = _status(f"{comfyui}/api/lm/loras/list", {})
    assert status == 200 and headers.get("X-Content-Type-Options") == "nosniff"
    status, headers = _status(f"{comfyui}/system_stats", rebound)
    assert status == 200 and "X-Content-Type-Options" not in headers and "Content-Security-Policy" not in headers
