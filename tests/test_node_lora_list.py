"""The LoRA list the loader and stacker take: its JSON shape, the <lora:...> text, LORA_STACK,
and the trigger words it leads to (merged, joined, switched off)."""
from __future__ import annotations

import json

import pytest
from lm_plugin.py.nodes.lora_list import (
    LoraEntry,
    LoraListError,
    entries_from_stack,
    format_syntax,
    parse_lora_list,
    stack_of,
    to_json,
)
from lm_plugin.py.nodes.trigger_words_node import LmTriggerWords, parse_toggles
from lm_plugin.py.services.library.trigger_words import apply_toggles, join_entries, merge_trigger_words

SHA = "a" * 64


def test_the_documented_json_shape_reads_with_its_defaults():
    entries = parse_lora_list(json.dumps([
        {"name": "style/ink.safetensors", "strength": 0.8, "clip_strength": 0.6, "sha256": SHA.upper()},
        {"name": "detail.safetensors"},
        {"name": "off.safetensors", "strength": 0.5, "active": False},
    ]))
    assert entries == [
        LoraEntry(name="style/ink.safetensors", strength=0.8, clip_strength=0.6, sha256=SHA),
        LoraEntry(name="detail.safetensors"),
        LoraEntry(name="off.safetensors", strength=0.5, clip_strength=0.5, active=False),
    ]


def test_the_widgets_stored_form_round_trips():
    entries = [LoraEntry(name="a/b.safetensors", strength=0.7, clip_strength=1.0, active=False, sha256=SHA),
               LoraEntry(name="c.safetensors")]
    stored = to_json(entries)
    assert json.loads(stored)["entries"][0]["sha256"] == SHA
    assert parse_lora_list(stored) == entries


@pytest.mark.parametrize("text, expected", [
    ("<lora:ink:0.8>", [("ink", 0.8, 0.8)]),
    ("<lora:ink:0.8:0.6>", [("ink", 0.8, 0.6)]),
    ("a castle, <lora:style/ink:1> and <LORA:detail:-0.5:0> at night", [("style/ink", 1.0, 1.0), ("detail", -0.5, 0.0)]),
    ("<lora:bare>", [("bare", 1.0, 1.0)]),
    ("no loras here", []),
    ("", []),
])
def test_lora_text_fills_the_list(text, expected):
    assert [(e.name, e.strength, e.clip_strength) for e in parse_lora_list(text)] == expected


@pytest.mark.parametrize("value, message", [
    ("[{", "not valid JSON"),
    ('{"entries": 3}', "must be a list"),
    ('[{"strength": 1}]', "entry 1 has no 'name'"),
    ('[{"name": "x", "strength": "strong"}]', "strength must be a number"),
    ('[{"name": "x", "strength": 1000}]', "between -100 and 100"),
    ('[{"name": "x", "active": "yes"}]', "'active' must be true or false"),
    ('[{"name": "x", "strength": true}]', "must be a number"),
    ("[" + ",".join(['"x"'] * 201) + "]", "at most 200"),
])
def test_a_list_that_does_not_read_says_which_entry_and_why(value, message):
    with pytest.raises(LoraListError, match=message):
        parse_lora_list(value)


def test_lora_stack_in_and_out_is_the_tuple_list_other_packs_use():
    upstream = [("a.safetensors", 0.5, 0.4), ["b.safetensors", 1.0]]
    entries = entries_from_stack(upstream) + [LoraEntry(name="c.safetensors", active=False),
                                               LoraEntry(name="d.safetensors", strength=0.3, clip_strength=0.3)]
    assert stack_of(entries) == [("a.safetensors", 0.5, 0.4), ("b.safetensors", 1.0, 1.0), ("d.safetensors", 0.3, 0.3)]
    with pytest.raises(LoraListError, match="item 1"):
        entries_from_stack([("only-a-name",)])


def test_lora_syntax_names_active_entries_by_stem_and_shows_a_differing_clip_strength():
    entries = [LoraEntry(name="style/ink.safetensors", strength=0.8, clip_strength=0.8),
               LoraEntry(name="detail.pt", strength=1.0, clip_strength=0.25),
               LoraEntry(name="off.safetensors", active=False)]
    assert format_syntax(entries) == "<lora:ink:0.8> <lora:detail:1.0:0.25>"


def test_trigger_words_merge_the_users_own_first_then_civitais_each_once():
    merged = merge_trigger_words(["Alpha Girl", "ink  style"], ["alpha girl", "blue hair, long hair", "", "Ink Style"])
    assert merged == ["Alpha Girl", "ink style", "blue hair, long hair"]
    assert join_entries(merged) == "Alpha Girl, ink style, blue hair, long hair"


def test_switching_off_removes_a_word_or_a_whole_group_from_the_text():
    text = "alpha girl, blue hair, long hair, ribbon, smile"
    assert apply_toggles(text, ["blue hair, long hair"]) == "alpha girl, ribbon, smile"
    assert apply_toggles(text, ["SMILE", "absent"]) == "alpha girl, blue hair, long hair, ribbon"
    # a group only goes as a whole run: its words elsewhere stay
    assert apply_toggles("long hair, x", ["blue hair, long hair"]) == "long hair, x"


@pytest.mark.parametrize("raw, expected", [
    ("", []), ("[]", []), ('["a", " b "]', ["a", "b"]), ('{"disabled": ["c"]}', ["c"]), ("x\ny", ["x", "y"]),
])
def test_toggles_read_as_json_or_one_per_line(raw, expected):
    assert parse_toggles(raw) == expected


def test_the_trigger_words_node_outputs_the_words_still_on_and_shows_all_of_them():
    out = LmTriggerWords().words("alpha, blue hair, long hair", '["blue hair, long hair"]', prompt={}, unique_id="9")
    assert out["result"] == ("alpha",)
    assert out["ui"]["words"] == ["alpha", "blue hair", "long hair"]


def test_the_readmes_api_prompt_example_is_what_the_loader_reads():
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Nodes", 1)[1].split("\n## ", 1)[0]
    block = section.split("```json", 1)[1].split("```", 1)[0]
    node = json.loads("{" + block.strip() + "}")["12"]
    assert node["class_type"] == "LmLoraLoader"
    assert parse_lora_list(node["inputs"]["loras"]) == [
        LoraEntry(name="style/ink.safetensors", strength=0.8, clip_strength=0.6),
        LoraEntry(name="detail", active=False)]
    text = section.split('"loras": "', 2)[2].split('"', 1)[0]
    assert [(e.name, e.strength, e.clip_strength) for e in parse_lora_list(text)] == [("ink", 0.8, 0.8),
                                                                                      ("detail", 1.0, 0.5)]
