"""The loader's ``loras`` list has one parser (py/services/workflows/lora_list.py): the nodes
read it strictly, the workflow reader leniently, and both agree on what a valid list holds."""
from __future__ import annotations

import json

import pytest
from lm_plugin.py.nodes import lora_list as node_lora_list
from lm_plugin.py.services.workflows import lora_list, workflow_references
from lm_plugin.py.services.workflows.lora_list import LoraEntry, parse_lora_list, read_leniently

SHA = "b" * 64


def test_the_nodes_module_reexports_the_shared_parser():
    for name in node_lora_list.__all__:
        assert getattr(node_lora_list, name) is getattr(lora_list, name)
    with open(workflow_references.__file__, encoding="utf-8") as handle:
        assert 'raw.get("lora_name")' not in handle.read()  # no second copy of the entry parsing


@pytest.mark.parametrize("value", [
    json.dumps([{"name": "a/b.safetensors", "strength": 0.5, "sha256": SHA}, {"name": "c.safetensors", "active": False}]),
    json.dumps({"entries": [{"name": "x.safetensors", "clip_strength": 0.3}]}),
    "<lora:ink:0.8> and <lora:detail:0.5:0.4>",
    "",
])
def test_lenient_and_strict_agree_on_valid_lists(value):
    assert [entry for _, entry in read_leniently(value)] == parse_lora_list(value)


def test_the_lenient_reader_keeps_what_names_a_lora_and_never_raises():
    value = json.dumps([
        {"name": "good.safetensors", "sha256": SHA.upper()},
        {"strength": 1},  # no name: skipped
        7,  # not an entry: skipped
        {"name": "loud.safetensors", "strength": 1e9, "active": "yes"},  # bad numbers / flag: name kept
        {"lora_name": "old\\style.safetensors", "on": False},
    ])
    with pytest.raises(lora_list.LoraListError):
        parse_lora_list(value)
    assert read_leniently(value) == [
        (0, LoraEntry(name="good.safetensors", sha256=SHA)),
        (3, LoraEntry(name="loud.safetensors")),
        (4, LoraEntry(name="old/style.safetensors", active=False)),
    ]
    assert read_leniently("<lora:odd:1.2.3>") == [(0, LoraEntry(name="odd"))]
    assert read_leniently("[not json") == [] and read_leniently({"other": 1}) == []


def test_the_workflow_reader_finds_list_entries_through_the_shared_parser():
    workflow = {"nodes": [{"id": 3, "type": "LmLoraLoader", "widgets_values": [json.dumps([
        {"name": "style/ink.safetensors", "sha256": SHA}, {"strength": 2}, {"name": "b.safetensors", "strength": "x"},
    ])]}]}
    refs = workflow_references.extract_references(workflow)
    found = {ref.name: ref for ref in refs}
    assert set(found) == {"style/ink.safetensors", "b.safetensors"}
    assert found["style/ink.safetensors"].sha256 == SHA
