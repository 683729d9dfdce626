"""The A1111 ``parameters`` text, read from executed prompt graphs as ComfyUI hands them to Save
Image: our loaders (as they ran, or as the prompt names them), core loaders, LORA_STACK packs;
and the metadata it goes into (PNG text, WebP EXIF)."""
from __future__ import annotations

import io
import json

from lm_plugin.py.nodes import run_record
from lm_plugin.py.nodes.generation_params import collect_generation, parameters_text, prompt_model_refs
from lm_plugin.py.nodes.image_metadata import (
    EXIF_IFD,
    EXIF_MAKE,
    EXIF_MODEL,
    EXIF_USER_COMMENT,
    png_info,
    read_user_comment,
    webp_exif,
)
from lm_plugin.py.nodes.save_image_node import _executed
from PIL import Image

HASHES = {("checkpoint", "sd15/base.safetensors"): "AAAA000001", ("lora", "style/ink.safetensors"): "BBBB000002",
          ("lora", "detail.safetensors"): "CCCC000003", ("embedding", "bad_hands"): "DDDD000004"}
LORAS = json.dumps([{"name": "style/ink.safetensors", "strength": 0.8},
                    {"name": "off.safetensors", "active": False},
                    {"name": "detail.safetensors", "strength": 0.5, "clip_strength": 1}])


def workflow(model_link=("2", 0), *, loras=LORAS) -> dict:
    """checkpoint -> our loader -> trigger words -> concatenate -> encode -> KSampler -> decode -> save."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/base.safetensors"}},
        "2": {"class_type": "LmLoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "loras": loras}},
        "3": {"class_type": "LmTriggerWords", "inputs": {"trigger_words": ["2", 2], "toggles": "[]"}},
        "4": {"class_type": "StringConcatenate",
              "inputs": {"string_a": ["3", 0], "string_b": "a castle at night", "delimiter": ", "}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": ["4", 0], "clip": ["2", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, embedding:bad_hands", "clip": ["2", 1]}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": list(model_link), "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["7", 0],
            "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "LmSaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "x"}},
    }


def text_of(prompt: dict, *, executed=None) -> str:
    params = collect_generation(prompt, "10", executed=executed)
    return parameters_text(params, width=64, height=64, hash_of=lambda kind, name: HASHES.get((kind, name)))


def test_a_graph_our_nodes_ran_in_credits_what_they_applied_and_the_words_they_output():
    prompt = workflow()
    run_record.forget_all()
    run_record.remember("2", run_record.NodeRun(
        signature=run_record.signature_of(prompt["2"]["inputs"]),
        applied=(("style/ink.safetensors", 0.8, 0.8), ("detail.safetensors", 0.5, 1.0)),
        outputs={2: "ink style, detailed", 3: "<lora:ink:0.8> <lora:detail:0.5:1.0>"},
    ))
    run_record.remember("3", run_record.NodeRun(signature=run_record.signature_of(prompt["3"]["inputs"]),
                                                outputs={0: "ink style"}))
    assert text_of(prompt, executed=_executed(prompt)) == (
        "ink style, a castle at night\n"
        "Negative prompt: blurry, embedding:bad_hands\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 64x64, "
        'Model hash: AAAA000001, Model: base, Lora hashes: "ink: BBBB000002, detail: CCCC000003", '
        'TI hashes: "bad_hands: DDDD000004", Version: ComfyUI'
    )


def test_a_record_of_other_inputs_is_not_trusted_the_prompt_is_read_instead():
    prompt = workflow()
    run_record.forget_all()
    run_record.remember("2", run_record.NodeRun(signature="loras='something else'",
                                                applied=(("wrong.safetensors", 1.0, 1.0),)))
    params = collect_generation(prompt, "10", executed=_executed(prompt))
    assert [(r.name, r.strength) for r in params.loras] == [("style/ink.safetensors", 0.8), ("detail.safetensors", 0.5)]


def test_core_lora_loaders_and_a_lora_stack_pack_are_followed_along_the_model_chain():
    prompt = workflow(model_link=("22", 0))
    prompt["20"] = {"class_type": "CR LoRA Stack", "inputs": {
        "switch_1": "On", "lora_name_1": "stack/a.safetensors", "model_weight_1": 0.7, "clip_weight_1": 0.7,
        "switch_2": "Off", "lora_name_2": "stack/b.safetensors", "model_weight_2": 1.0,
        "switch_10": "On", "lora_name_10": "stack/j.safetensors", "model_weight_10": 0.2}}
    prompt["21"] = {"class_type": "CR Apply LoRA Stack", "inputs": {"model": ["1", 0], "clip": ["1", 1],
                                                                     "lora_stack": ["20", 0]}}
    prompt["22"] = {"class_type": "LoraLoader", "inputs": {"model": ["21", 0], "clip": ["21", 1],
                                                           "lora_name": "core.safetensors", "strength_model": 0.9,
                                                           "strength_clip": 1.0}}
    params = collect_generation(prompt, "10")
    assert params.checkpoint.name == "sd15/base.safetensors"
    assert [(r.name, r.strength) for r in params.loras] == [
        ("stack/a.safetensors", 0.7), ("stack/j.safetensors", 0.2), ("core.safetensors", 0.9)]


def test_a_diffusion_model_loader_is_the_model_and_an_image_without_a_sampler_has_no_parameters():
    prompt = workflow(model_link=("30", 0))
    prompt["30"] = {"class_type": "UNETLoader", "inputs": {"unet_name": "flux/dev.safetensors", "weight_dtype": "default"}}
    assert collect_generation(prompt, "10").checkpoint.name == "flux/dev.safetensors"
    loaded = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
              "2": {"class_type": "LmSaveImage", "inputs": {"images": ["1", 0]}}}
    assert collect_generation(loaded, "2").steps is None


def test_usage_reads_every_model_a_prompt_names():
    prompt = workflow()
    prompt["6"]["inputs"]["text"] = "blurry, embedding:bad_hands, <lora:from_text:0.4>"
    refs = {(r.kind, r.name) for r in prompt_model_refs(prompt)}
    assert refs == {("checkpoint", "sd15/base.safetensors"), ("lora", "style/ink.safetensors"),
                    ("lora", "detail.safetensors"), ("embedding", "bad_hands"), ("lora", "from_text")}


def test_png_text_and_webp_exif_carry_the_parameters_and_comfyuis_own_metadata():
    parameters = "a castle, ünïcödé\nSteps: 1, Version: ComfyUI"
    prompt, extra = {"1": {"class_type": "X", "inputs": {}}}, {"workflow": {"nodes": []}}
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG", pnginfo=png_info(parameters, prompt, extra))
    read = Image.open(io.BytesIO(png.getvalue()))
    assert read.text["parameters"] == parameters
    assert json.loads(read.text["prompt"]) == prompt and json.loads(read.text["workflow"]) == {"nodes": []}

    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, "WEBP", exif=webp_exif(parameters, prompt, extra))
    exif = Image.open(io.BytesIO(webp.getvalue())).getexif()
    assert exif[EXIF_MODEL] == "prompt:" + json.dumps(prompt)
    assert exif[EXIF_MAKE] == "workflow:" + json.dumps({"nodes": []})
    assert read_user_comment(exif.get_ifd(EXIF_IFD)[EXIF_USER_COMMENT]) == parameters
