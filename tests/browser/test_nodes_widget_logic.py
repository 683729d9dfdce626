"""The pure logic of the node widgets (issue 11) in Chromium: reading and writing the `loras`
value exactly as py/nodes/lora_list.py does, `<lora:…>` text, list edits, trigger-word toggles
as py/services/library/trigger_words.py applies them, and the picker-preview lookups batched and
cached. The modules are imported unchanged from a loopback server; no ComfyUI needed."""
from __future__ import annotations

import json
from typing import Iterator

import pytest
from aiohttp import web
from lm_plugin.py.nodes.lora_list import format_syntax, parse_lora_list
from lm_plugin.py.nodes.trigger_words_node import parse_toggles
from lm_plugin.py.services.library.trigger_words import apply_toggles

from ..comfyui.harness import REPO, ThreadedServer

pytestmark = pytest.mark.browser

MODEL = "/lm/static/comfyui/nodes/lora_list_model.js"
WORDS = "/lm/static/comfyui/nodes/trigger_words_model.js"
LOOKUP = "/lm/static/comfyui/nodes/lookup.js"
LOOKUPS = web.AppKey("lookups", list)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    app = web.Application()
    app[LOOKUPS] = []

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>node logic</title>", content_type="text/html")

    async def lookup(request: web.Request) -> web.Response:
        names = request.query.getall("name", [])
        request.app[LOOKUPS].append(names)
        cards = {n: ({"relative_path": f"style/{n}.safetensors", "trigger_words": [f"{n} word"]} if n != "gone" else None)
                 for n in names}
        return web.json_response({"success": True, "models": cards})

    app.router.add_get("/", index)
    app.router.add_get("/lm/loras/lookup", lookup)
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


def run(page, module: str, body: str, arg=None):
    """Evaluate `body` (an async function body with `m` the module and `arg`) in the page."""
    return page.evaluate(f"async (arg) => {{ const m = await import('{module}'); {body} }}", arg)


CASES = [
    "<lora:ink:0.8>",
    "a photo <lora:ink:0.8:0.6> and <LORA:style/detail:-0.5> <lora:bare>",
    '{"entries": [{"name": "style\\\\ink.safetensors", "strength": 0.8, "clip_strength": 0.6, "active": false}]}',
    '[{"name": "a.safetensors"}, "b.safetensors", {"lora_name": "c", "model_strength": 2}]',
    '{"entries": [{"name": "x", "strength": 1, "sha256": "' + "AB" * 32 + '"}]}',
]


@pytest.mark.parametrize("text", CASES)
def test_the_widget_reads_the_stored_value_as_the_node_does(page, text):
    entries = run(page, MODEL, "return m.parseStored(arg);", text)
    expected = [{"name": e.name, "strength": e.strength, "clip_strength": e.clip_strength, "active": e.active,
                 "sha256": e.sha256} for e in parse_lora_list(text)]
    assert entries == expected
    # what the widget writes back, the node reads as the same list, and both format the same syntax
    stored = run(page, MODEL, "return m.serialize(m.parseStored(arg));", text)
    assert [(e.name, e.strength, e.clip_strength, e.active, e.sha256) for e in parse_lora_list(stored)] == \
        [(e["name"], e["strength"], e["clip_strength"], e["active"], e["sha256"]) for e in entries]
    assert run(page, MODEL, "return m.formatSyntax(m.parseStored(arg));", text) == format_syntax(parse_lora_list(text))


def test_unreadable_values_are_an_empty_list_not_an_error(page):
    assert run(page, MODEL, "return arg.map((v) => m.parseStored(v).length);", ["{", "[1, 2", '{"entries": 3}', "", "plain text"]) == [0, 0, 0, 0, 0]


def test_adding_uses_the_usage_tips_and_never_lists_a_lora_twice(page):
    result = run(page, MODEL, """
      let list = [];
      const item = { relative_path: 'style\\\\ink.safetensors', sha256: 'C'.repeat(64), usage_tips: '{"strength": 0.7, "clip_strength": 0.5}' };
      const first = m.addEntry(list, item); list = first.entries;
      const plain = m.addEntry(list, { relative_path: 'b.safetensors' }, { fallback: 0.9 }); list = plain.entries;
      const given = m.addEntry(list, { relative_path: 'c.safetensors' }, { strength: 1.2 }); list = given.entries;
      list = m.toggleEntry(list, 0, false);
      const again = m.addEntry(list, { relative_path: 'style/ink' });
      return { first: first.added, again: again.added, entries: again.entries };
    """)
    assert result["first"] is True and result["again"] is False
    assert [(e["name"], e["strength"], e["clip_strength"], e["active"]) for e in result["entries"]] == [
        ("style/ink.safetensors", 0.7, 0.5, True), ("b.safetensors", 0.9, 0.9, True), ("c.safetensors", 1.2, 1.2, True)]
    assert result["entries"][0]["sha256"] == "c" * 64


def test_list_edits_move_remove_toggle_and_clamp(page):
    result = run(page, MODEL, """
      let list = m.parseStored('<lora:a:1> <lora:b:1> <lora:c:1>');
      const moved = m.moveEntry(list, 0, 2).map((e) => e.name);
      const up = m.moveEntry(list, 2, -5).map((e) => e.name);
      const removed = m.removeEntry(list, 1).map((e) => e.name);
      const strong = m.setStrength(list, 1, 'strength', '250')[1].strength;
      const bad = m.setStrength(list, 1, 'clip_strength', 'abc')[1].clip_strength;
      const off = m.toggleEntry(list, 2).map((e) => e.active);
      return { moved, up, removed, strong, bad, off, syntax: m.formatSyntax(m.toggleEntry(list, 1)) };
    """)
    assert result["moved"] == ["b", "c", "a"] and result["up"] == ["c", "a", "b"] and result["removed"] == ["a", "c"]
    assert result["strong"] == 100 and result["bad"] == 1 and result["off"] == [True, True, False]
    assert result["syntax"] == "<lora:a:1.0> <lora:c:1.0>"


def test_pasted_syntax_merges_into_the_list(page):
    result = run(page, MODEL, """
      const list = m.parseStored('<lora:style/ink.safetensors:1>');
      const pasted = m.parseLoraSyntax('x <lora:ink:0.4:0.3> <lora:new:0.5>');
      return { has: [m.hasLoraSyntax('a <lora:x:1> b'), m.hasLoraSyntax('no lora here')],
               merged: m.mergeEntries(list, pasted).map((e) => [e.name, e.strength, e.clip_strength]) };
    """)
    assert result["has"] == [True, False]
    assert result["merged"] == [["style/ink.safetensors", 0.4, 0.3], ["new", 0.5, 0.5]]


TOGGLE_CASES = [
    ("ink style, bold lines, thick outline", ["bold lines, thick outline"]),
    ("a, b, c, a", ["A"]),
    ("blue hair,  long hair, smile", ["long   hair", "missing"]),
    ("one, two", []),
]


@pytest.mark.parametrize(("text", "disabled"), TOGGLE_CASES)
def test_chips_leave_out_what_the_node_leaves_out(page, text, disabled):
    assert run(page, WORDS, "return m.applyToggles(arg[0], arg[1]);", [text, disabled]) == apply_toggles(text, disabled)


def test_toggles_switch_chips_and_read_as_the_node_reads_them(page):
    result = run(page, WORDS, """
      let off = m.parseToggles('[]');
      off = m.toggleChip(off, 'blue hair, long hair');
      off = m.toggleChip(off, 'smile');
      off = m.toggleChip(off, 'SMILE');
      const chips = m.chipsOf(m.mergeTriggerWords(['Blue hair, long hair'], ['blue hair,  long hair', 'smile']), off);
      return { stored: m.serializeToggles(off), chips, lines: m.parseToggles('a\\nb'), dict: m.parseToggles('{"disabled": ["x"]}') };
    """)
    assert json.loads(result["stored"]) == ["blue hair, long hair"] == parse_toggles(result["stored"])
    assert result["chips"] == [{"text": "Blue hair, long hair", "on": False}, {"text": "smile", "on": True}]
    assert result["lines"] == parse_toggles("a\nb") and result["dict"] == parse_toggles('{"disabled": ["x"]}')


def test_lookups_in_one_tick_are_one_request_and_answers_are_cached(page, server):
    server.app[LOOKUPS].clear()
    result = page.evaluate("""async () => {
      const { createLookup } = await import('/lm/static/comfyui/nodes/lookup.js');
      const { createApiClient } = await import('/lm/static/api/client.js');
      const lookup = createLookup({ client: createApiClient({ base: '/lm' }) });
      const [a, b] = await Promise.all([lookup.cards('loras', ['ink', 'gone']), lookup.cards('loras', ['ink', 'detail'])]);
      const again = await lookup.cards('loras', ['ink', 'detail', 'gone']);
      return { a: Object.fromEntries(a), b: Object.fromEntries(b), again: [...again.keys()], cached: lookup.cached('loras', 'gone') };
    }""")
    assert server.app[LOOKUPS] == [["ink", "gone", "detail"]]
    assert result["a"]["gone"] is None and result["a"]["ink"]["trigger_words"] == ["ink word"]
    assert result["b"]["detail"]["relative_path"] == "style/detail.safetensors"
    assert result["again"] == ["ink", "detail", "gone"] and result["cached"] is None
