"""A dropped PNG's A1111 ``parameters`` text reaches the missing-models check (issue 14, part 2):
web/app/comfyui/png_text.js reads PNG text chunks (tEXt, iTXt plain and compressed, zTXt), and
missing_models.js sends the dropped file's ``parameters`` with the graph ComfyUI loads from it
(ComfyUI 1.27 and 1.5x parse the chunk but do not expose it). Real Chromium, the real modules,
PNGs written by Pillow; the ComfyUI side (app, compat, fetchApi) is the module's injected deps."""
from __future__ import annotations

import base64
import io
from typing import Iterator

import pytest
from aiohttp import web
from PIL import Image, PngImagePlugin

from ..comfyui.harness import REPO, ThreadedServer

pytestmark = pytest.mark.browser

PNG_TEXT = "/lm/static/comfyui/png_text.js"
MISSING = "/lm/static/comfyui/missing_models.js"
PARAMETERS = ("a castle, <lora:ink_style:0.8>\nNegative prompt: blurry\nSteps: 20, Sampler: Euler, "
              'Model hash: 0123456789, Model: dreamshaper, Lora hashes: "ink_style: abcdef123456", Version: v1.10')


def png(**chunks: tuple[str, bool] | str) -> str:
    """A 2x2 PNG with text chunks (``name=text`` → tEXt, ``name=(text, True)`` → compressed iTXt), as base64."""
    info = PngImagePlugin.PngInfo()
    for name, value in chunks.items():
        if isinstance(value, tuple):
            info.add_itxt(name, value[0], zip=value[1])
        else:
            info.add_text(name, value)
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 10, 10)).save(out, format="PNG", pnginfo=info)
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    app = web.Application()

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>png text</title>", content_type="text/html")

    app.router.add_get("/", index)
    app.router.add_static("/lm/static/", REPO / "web" / "app")
    threaded = ThreadedServer(app)
    threaded.url = threaded.start()
    yield threaded
    threaded.stop()


@pytest.fixture
def page(browser, server):
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{server.url}/")
    yield pg
    assert errors == []
    pg.close()


BYTES = "const bytes = Uint8Array.from(atob(arg), (c) => c.charCodeAt(0));"


def chunks_of(page, data: str) -> dict:
    return page.evaluate(f"async (arg) => {{ const m = await import('{PNG_TEXT}'); {BYTES} return m.pngTextChunks(bytes); }}",
                         data)


def test_text_chunks_of_every_kind_are_read(page):
    data = png(parameters=PARAMETERS, workflow=('{"nodes": []}', True), comment=("grüße ✓", False))
    assert chunks_of(page, data) == {"parameters": PARAMETERS, "workflow": '{"nodes": []}', "comment": "grüße ✓"}


def test_a_file_that_is_not_a_png_gives_nothing(page):
    assert chunks_of(page, base64.b64encode(b"GIF89a not a png at all").decode()) == {}
    truncated = base64.b64encode(base64.b64decode(png(parameters=PARAMETERS))[:40]).decode()
    assert chunks_of(page, truncated) == {}


CHECK = f"""async (arg) => {{
  const m = await import('{MISSING}');
  {BYTES}
  const sent = [];
  const fetchApi = async (url, init) => {{
    sent.push({{ url, body: JSON.parse(init.body) }});
    return new Response(JSON.stringify({{ success: true, references: [] }}), {{ headers: {{ 'Content-Type': 'application/json' }} }});
  }};
  const graph = {{ serialize: () => ({{ nodes: [{{ id: 1, type: 'LoraLoader', widgets_values: ['ink_style.safetensors', 1, 1] }}] }}) }};
  const missing = m.createMissingModels({{ app: {{}}, compat: {{ currentGraph: () => graph }}, fetchApi, tr: (k) => k, toast: () => {{}} }});
  await missing.onGraphLoaded();  // the workflow restored at start
  const file = new File([bytes], 'castle.png', {{ type: 'image/png' }});
  const transfer = new DataTransfer();
  transfer.items.add(file);
  const event = new DragEvent('drop', {{ dataTransfer: transfer, cancelable: true, bubbles: true }});
  missing.onDrop(event);
  const prevented = event.defaultPrevented;
  await missing.onGraphLoaded();  // the graph ComfyUI built from the dropped file
  await missing.onGraphLoaded();  // a later load: the drop was used up
  return {{ sent: sent.map((s) => s.body), prevented }};
}}"""


def test_a_dropped_pngs_parameters_go_with_the_check_of_its_graph(page):
    result = page.evaluate(CHECK, png(parameters=PARAMETERS, workflow='{"nodes": []}'))
    first, dropped, later = result["sent"]
    assert "parameters" not in first and "parameters" not in later
    assert dropped["parameters"] == PARAMETERS and dropped["workflow"]["nodes"][0]["type"] == "LoraLoader"
    assert result["prevented"] is False  # ComfyUI's own load of the file is not touched


def test_a_dropped_png_without_parameters_sends_none(page):
    result = page.evaluate(CHECK, png(workflow='{"nodes": []}'))
    assert all("parameters" not in body for body in result["sent"])
