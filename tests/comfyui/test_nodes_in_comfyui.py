"""Our nodes in a REAL ComfyUI (issue 11): ComfyUI lists them with the right types; a LoRA
really patches a model exactly as core LoraLoader does; and a real generation (an SD 1.5-shaped
checkpoint ComfyUI built itself, a LoRA for its UNet, an embedding) goes through our loader and
Save Image to a PNG and a WebP that credit exactly those models.

Skipped unless COMFYUI_DIR and COMFYUI_PYTHON are set (``.ci/run`` sets them). The checkpoint
(2.3 GB) is built once into LM_MODELS_CACHE (default: ~/.cache/lm-ci/models), outside the clone.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from .real_comfyui import COMFYUI_DIR, COMFYUI_PYTHON, ComfyUIProcess, skip_unless_available

pytestmark = pytest.mark.comfyui
skip_unless_available()

INSIDE = Path(__file__).with_name("inside_comfyui.py")
MODELS_CACHE = Path(os.environ.get("LM_MODELS_CACHE") or Path.home() / ".cache" / "lm-ci" / "models")
OUR_NODES = {"LmLoraLoader", "LmLoraStacker", "LmTriggerWords", "LmSaveImage"}


def inside_comfyui(command: str, target: Path, *, timeout: float = 900) -> dict[str, Any]:
    """Run inside_comfyui.py with ComfyUI's Python in its work tree; its last line is JSON."""
    done = subprocess.run([COMFYUI_PYTHON, str(INSIDE), command, str(target)], cwd=COMFYUI_DIR,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"result": json.loads(done.stdout.strip().splitlines()[-1]), "log": done.stdout + done.stderr}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_our_loader_patches_a_model_exactly_as_core_lora_loader_does(tmp_path):
    run = inside_comfyui("patch-check", tmp_path / "work")
    check = run["result"]
    assert check["model_keys"] == 6 and check["clip_keys"] == 4
    assert check["model_patches_equal"] and check["clip_patches_equal"]
    assert check["strengths"] == [-0.5, 0.8] and check["clip_strengths"] == [0.6, 1.0]
    assert check["off_applies_nothing"] and check["model_only_equal"]
    assert check["syntax"] == "<lora:ink:0.8:0.6> <lora:detail:-0.5:1.0>"
    assert check["trigger_words"] == "ink style, bold lines, thick outline"
    assert "LoRA not found: 'gone.safetensors'" in check["missing_error"]


@pytest.fixture(scope="module")
def sd15() -> dict[str, Path]:
    built = inside_comfyui("build-sd15", MODELS_CACHE, timeout=1800)["result"]
    return {"checkpoint": Path(built["checkpoint"]), "lora": Path(built["lora"])}


def place(source: Path, target: Path) -> None:
    """A hard link where the cache shares the file system, else a copy: the library does not
    follow a symlink that leads out of its folders (issue 9), and ComfyUI's users' files are real."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory, sd15) -> Iterator[ComfyUIProcess]:
    base = tmp_path_factory.mktemp("comfyui-nodes")
    models = base / "models"
    for folder in ("checkpoints/sd15", "loras/style", "embeddings"):
        (models / folder).mkdir(parents=True)
    place(sd15["checkpoint"], models / "checkpoints" / "sd15" / "sd15_random.safetensors")
    lora = models / "loras" / "style" / "ink_sd15.safetensors"
    lora.write_bytes(sd15["lora"].read_bytes())
    (models / "loras" / "style" / "ink_sd15.metadata.json").write_text(json.dumps(
        {"trigger_words": ["ink style"], "civitai": {"trainedWords": ["bold lines, thick outline"]}}))
    rng = np.random.default_rng(3)
    save_file({"emb_params": (rng.standard_normal((2, 768)) * 0.02).astype(np.float32)},
              str(models / "embeddings" / "bad_hands.safetensors"))
    server = ComfyUIProcess(base, tmp_path_factory.mktemp("comfyui-nodes-state"))
    try:
        server.wait_for(lambda: server.get_json("/api/lm/loras/list?page_size=1")["total"] >= 1)
        server.base = base
        yield server
    finally:
        server.stop()


def test_comfyui_lists_the_four_nodes_with_their_types(comfyui):
    info = comfyui.get_json("/object_info")
    assert OUR_NODES <= set(info)
    loader, stacker = info["LmLoraLoader"], info["LmLoraStacker"]
    assert loader["display_name"] == "LoRA Loader (Model Library)" and loader["category"] == "Model Library"
    assert loader["output"] == ["MODEL", "CLIP", "STRING", "STRING"]
    assert loader["output_name"] == ["MODEL", "CLIP", "trigger_words", "lora_syntax"]
    assert loader["input"]["required"]["model"][0] == "MODEL" and loader["input"]["required"]["loras"][0] == "STRING"
    assert {k: v[0] for k, v in loader["input"]["optional"].items()} == {"clip": "CLIP", "lora_stack": "LORA_STACK"}
    assert stacker["output"][0] == "LORA_STACK" and stacker["input"]["optional"]["lora_stack"][0] == "LORA_STACK"
    words = info["LmTriggerWords"]
    assert words["input"]["required"]["trigger_words"][1].get("forceInput") is True and words["output"] == ["STRING"]
    save = info["LmSaveImage"]
    assert save["output_node"] is True and save["input"]["required"]["images"][0] == "IMAGE"
    assert save["input"]["required"]["file_format"][0] == ["png", "webp"]


def generation(file_format: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15/sd15_random.safetensors"}},
        "2": {"class_type": "LmLoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "loras": json.dumps([
            {"name": "style/ink_sd15.safetensors", "strength": 0.8, "clip_strength": 0.6},
            {"name": "style/switched_off.safetensors", "active": False}])}},
        "3": {"class_type": "LmTriggerWords", "inputs": {"trigger_words": ["2", 2],
                                                         "toggles": '["bold lines, thick outline"]'}},
        "4": {"class_type": "StringConcatenate", "inputs": {"string_a": ["3", 0], "string_b": "a castle at night",
                                                            "delimiter": ", "}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": ["4", 0], "clip": ["2", 1]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, embedding:bad_hands", "clip": ["2", 1]}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["2", 0], "positive": ["5", 0], "negative": ["6", 0], "latent_image": ["7", 0], "seed": 42,
            "steps": 1, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "LmSaveImage", "inputs": {"images": ["9", 0], "filename_prefix": f"lm_e2e_{file_format}",
                                                       "file_format": file_format, "quality": 90}},
    }


def run_prompt(comfyui: ComfyUIProcess, prompt: dict[str, Any], *, timeout: float = 600) -> dict[str, Any]:
    queued = comfyui.post_json("/prompt", {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": {"x": 1}}}})
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = comfyui.get_json(f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            entry = history[prompt_id]
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
            return entry
        time.sleep(0.5)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout:.0f} s; see {comfyui.log_path}")


def test_a_real_generation_credits_exactly_the_models_that_made_it(comfyui, sd15):
    started = time.monotonic()
    entry = run_prompt(comfyui, generation("png"))
    print(f"first generation (load, hash, sample) {time.monotonic() - started:.1f} s")
    image = entry["outputs"]["10"]["images"][0]
    png = Image.open(comfyui.base / "output" / image["subfolder"] / image["filename"])
    parameters = png.text["parameters"]
    print(parameters)
    checkpoint, lora = sha256_of(sd15["checkpoint"])[:10], sha256_of(sd15["lora"])[:10]
    embedding = sha256_of(comfyui.base / "models" / "embeddings" / "bad_hands.safetensors")[:10]
    positive, negative, fields = parameters.split("\n")
    assert positive == "ink style, a castle at night"  # the switched-off group is not in the prompt
    assert negative == "Negative prompt: blurry, embedding:bad_hands"
    assert fields == (
        f"Steps: 1, Sampler: Euler, Schedule type: Normal, CFG scale: 7, Seed: 42, Size: 64x64, "
        f'Model hash: {checkpoint}, Model: sd15_random, Lora hashes: "ink_sd15: {lora}", '
        f'TI hashes: "bad_hands: {embedding}", Version: ComfyUI'
    )
    assert json.loads(png.text["prompt"])["2"]["class_type"] == "LmLoraLoader"
    assert json.loads(png.text["workflow"]) == {"x": 1}
    assert "lora key not loaded" not in comfyui.log()
    assert "NOT LOADED" not in comfyui.log()

    # the same graph saved as WebP: ComfyUI reuses every upstream output, the metadata is in EXIF
    entry = run_prompt(comfyui, generation("webp"))
    image = entry["outputs"]["10"]["images"][0]
    assert image["filename"].endswith(".webp")
    exif = Image.open(comfyui.base / "output" / image["subfolder"] / image["filename"]).getexif()
    comment = exif.get_ifd(0x8769)[0x9286]
    assert comment.startswith(b"UNICODE\x00") and comment[8:].decode("utf-16-be") == parameters
    assert exif[0x0110].startswith("prompt:") and exif[0x010F] == 'workflow:{"x": 1}'
