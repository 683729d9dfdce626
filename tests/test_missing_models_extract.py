"""Reading a workflow's model references (issue 14, part 2): UI and API formats, every reference
kind (core loaders, our loader and stacker, LORA_STACK packs, rgthree dict widgets, <lora:…>
text, embedding: names), hashes from our entries, the workflow's models list and A1111 text."""
from __future__ import annotations

import json

from lm_plugin.py.services.workflows.workflow_references import (
    ReferenceKind,
    ReferenceSource,
    extract_references,
    parse_parameters_hashes,
)

SHA = "ab" * 32


def ui(*nodes, **extra):
    return {"last_node_id": 99, "nodes": list(nodes), "links": [], "version": 0.4, **extra}


def node(node_id, node_type, *values, **extra):
    return {"id": node_id, "type": node_type, "widgets_values": list(values), **extra}


def by_name(refs):
    return {(r.kind.value, r.name): r for r in refs}


def test_ui_format_core_loaders_give_their_widget_and_position():
    refs = by_name(extract_references(ui(
        node(1, "CheckpointLoaderSimple", "sdxl/base.safetensors"),
        node(2, "LoraLoader", "style/ink.safetensors", 0.8, 0.6),
        node(3, "LoraLoaderModelOnly", "detail.safetensors", 1.0),
        node(4, "UNETLoader", "flux1-dev.safetensors", "default"),
        node(5, "CheckpointLoader", "v1-inference.yaml", "old/model.ckpt"),
    )))
    assert set(refs) == {("checkpoint", "sdxl/base.safetensors"), ("lora", "style/ink.safetensors"),
                         ("lora", "detail.safetensors"), ("checkpoint", "flux1-dev.safetensors"),
                         ("other", "v1-inference.yaml"), ("checkpoint", "old/model.ckpt")}
    ink = refs[("lora", "style/ink.safetensors")]
    assert [(u.node_id, u.node_type, u.widget, u.widget_index, u.source) for u in ink.uses] == [
        ("2", "LoraLoader", "lora_name", 0, ReferenceSource.WIDGET)]
    assert refs[("checkpoint", "flux1-dev.safetensors")].sub_type == "diffusion_model"
    assert refs[("checkpoint", "old/model.ckpt")].uses[0].widget_index == 1


def test_other_loader_kinds_are_reported_with_their_folder():
    refs = by_name(extract_references(ui(node(1, "VAELoader", "sdxl_vae.safetensors"),
                                         node(2, "ControlNetLoader", "canny.safetensors"))))
    assert refs[("other", "sdxl_vae.safetensors")].folder == "vae"
    assert refs[("other", "canny.safetensors")].folder == "controlnet"


def test_our_loader_entries_carry_their_sha256_and_position():
    loras = json.dumps({"entries": [{"name": "a.safetensors", "strength": 1, "sha256": SHA},
                                    {"name": "sub/b.safetensors", "active": False}]})
    refs = by_name(extract_references(ui(node(7, "LmLoraLoader", loras))))
    a, b = refs[("lora", "a.safetensors")], refs[("lora", "sub/b.safetensors")]
    assert a.sha256 == SHA and b.sha256 == ""
    assert (a.uses[0].source, a.uses[0].entry_index, b.uses[0].entry_index) == (ReferenceSource.LORA_LIST, 0, 1)
    assert a.uses[0].widget == "loras"


def test_our_stacker_reads_lora_syntax_text_in_the_api_format():
    refs = extract_references({"3": {"class_type": "LmLoraStacker", "inputs": {"loras": "<lora:ink:0.8> <lora:x/y:1:0.5>"}}})
    assert [(r.kind, r.name) for r in refs] == [(ReferenceKind.LORA, "ink"), (ReferenceKind.LORA, "x/y")]
    assert [r.uses[0].entry_index for r in refs] == [0, 1]


def test_lora_stack_packs_and_rgthree_dict_widgets():
    refs = by_name(extract_references(ui(
        node(1, "CR LoRA Stack", "On", "one.safetensors", 1.0, 1.0, "Off", "None", 1.0, 1.0),
        node(2, "Power Lora Loader (rgthree)", {}, {"on": True, "lora": "two.safetensors", "strength": 1}, {}, ""),
    )))
    assert set(refs) == {("lora", "one.safetensors"), ("lora", "two.safetensors")}
    assert refs[("lora", "two.safetensors")].uses[0].source is ReferenceSource.DICT
    api = by_name(extract_references({
        "5": {"class_type": "LoRA Stacker", "inputs": {"lora_name_1": "three.safetensors", "lora_wt_1": 1,
                                                        "lora_name_2": "None"}},
        "6": {"class_type": "Power Lora Loader (rgthree)", "inputs": {"lora_1": {"on": True, "lora": "four.safetensors"}}},
    }))
    assert set(api) == {("lora", "three.safetensors"), ("lora", "four.safetensors")}
    assert api[("lora", "three.safetensors")].uses[0].widget == "lora_name_1"


def test_prompt_text_gives_lora_syntax_and_embeddings_but_notes_do_not():
    refs = extract_references(ui(
        node(1, "CLIPTextEncode", "a cat, <lora:ink:0.7>, (embedding:EasyNegative:1.2), embedding:sub/bad.pt"),
        node(2, "Note", "try <lora:not_this:1> and embedding:nor_this"),
    ))
    assert [(r.kind.value, r.name) for r in refs] == [
        ("lora", "ink"), ("embedding", "EasyNegative"), ("embedding", "sub/bad.pt")]
    assert all(r.uses[0].source is ReferenceSource.TEXT and r.uses[0].widget_index == 0 for r in refs)


def test_the_same_model_named_twice_is_one_reference_with_two_uses():
    refs = extract_references(ui(node(1, "LoraLoader", "ink.safetensors", 1, 1), node(2, "LoraLoader", "ink.safetensors", 1, 1)))
    assert len(refs) == 1 and [u.node_id for u in refs[0].uses] == ["1", "2"]


def test_subgraph_nodes_are_read_and_say_which_subgraph():
    workflow = ui(node(1, "CheckpointLoaderSimple", "a.safetensors"),
                  definitions={"subgraphs": [{"id": "sg-1", "nodes": [node(4, "LoraLoader", "deep.safetensors", 1, 1)]}]})
    deep = by_name(extract_references(workflow))[("lora", "deep.safetensors")]
    assert deep.uses[0].subgraph == "sg-1" and deep.uses[0].node_id == "4"


def test_the_workflow_models_list_gives_hashes_and_links():
    url = "https://huggingface.co/org/repo/resolve/main/split_files/vae/ae.safetensors"
    workflow = ui(node(1, "LoraLoader", "sub/ink.safetensors", 1, 1), node(2, "VAELoader", "ae.safetensors"),
                  models=[{"name": "ink.safetensors", "hash": SHA, "hash_type": "SHA256", "directory": "loras"},
                          {"name": "ae.safetensors", "url": url, "directory": "vae"}])
    refs = by_name(extract_references(workflow))
    assert refs[("lora", "sub/ink.safetensors")].sha256 == SHA
    assert refs[("other", "ae.safetensors")].urls == (url,)


PARAMETERS = (
    "a cat <lora:ink:0.8>\nNegative prompt: blurry, EasyNegative\n"
    'Steps: 20, Sampler: Euler a, Model hash: 31e35c80fc, Model: realisticVision, '
    'Lora hashes: "ink: 1234567890, gone: abcdefabcd", TI hashes: "EasyNegative: c74b4e810b", Version: v1'
)


def test_a1111_parameters_are_parsed():
    parsed = parse_parameters_hashes(PARAMETERS)
    assert (parsed.model_name, parsed.model_hash) == ("realisticVision", "31e35c80fc")
    assert parsed.loras == {"ink": "1234567890", "gone": "abcdefabcd"}
    assert parsed.embeddings == {"easynegative": "c74b4e810b"}


def test_civitai_hashes_json_is_parsed():
    parsed = parse_parameters_hashes('x\nSteps: 4, Hashes: {"model": "31e35c80fc", "lora:ink": "1234567890", "embed:neg": "c74b4e810b"}')
    assert parsed.model_hash == "31e35c80fc" and parsed.loras == {"ink": "1234567890"}
    assert parsed.embeddings == {"neg": "c74b4e810b"}


def test_parameters_attach_hashes_and_add_models_the_workflow_does_not_name():
    refs = by_name(extract_references(ui(node(1, "CheckpointLoaderSimple", "rv.safetensors"),
                                         node(2, "LoraLoader", "style/ink.safetensors", 1, 1)), PARAMETERS))
    assert refs[("checkpoint", "rv.safetensors")].short_hash == "31e35c80fc"  # the only checkpoint
    assert refs[("lora", "style/ink.safetensors")].short_hash == "1234567890"
    gone = refs[("lora", "gone")]
    assert gone.short_hash == "abcdefabcd" and gone.uses[0].source is ReferenceSource.PARAMETERS
    assert refs[("embedding", "EasyNegative")].short_hash == "c74b4e810b"


def test_parameters_alone_name_the_models():
    refs = extract_references(None, PARAMETERS)
    assert {(r.kind.value, r.name) for r in refs} == {
        ("checkpoint", "realisticVision"), ("lora", "ink"), ("lora", "gone"), ("embedding", "EasyNegative")}


def test_nonsense_is_nothing_not_an_error():
    assert extract_references({"nodes": [None, 3, {"type": 5, "widgets_values": "x"}]}) == []
    assert extract_references(ui(node(1, "LmLoraLoader", "[not json"))) == []
    assert extract_references([1, 2]) == []
