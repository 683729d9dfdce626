"""Code the real-ComfyUI tests run with ComfyUI's own Python (COMFYUI_PYTHON, in COMFYUI_DIR):
ComfyUI builds real models itself, since no weights can be downloaded here.

    python inside_comfyui.py build-sd15 OUT_DIR      # an SD 1.5-shaped checkpoint and a LoRA for it
    python inside_comfyui.py patch-check WORK_DIR    # our LoRA Loader's patches against core LoraLoader

Prints one JSON object on the last line of stdout. Never imported by the test process (torch).
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.getcwd())  # ComfyUI's work tree

import torch  # noqa: E402
from comfy.cli_args import args  # noqa: E402

args.cpu = True
import comfy.lora  # noqa: E402
import comfy.model_management  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.utils  # noqa: E402
from comfy.ldm.models.autoencoder import AutoencoderKL  # noqa: E402

# the SD 1.5 UNet ComfyUI's model detection recognises (comfy/model_detection.py)
SD15_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True, "legacy": False,
    "adm_in_channels": None, "in_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1,
    "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False, "use_temporal_resblock": False,
}
# the same family, small: two levels, one block each (the patch test needs keys, not quality)
TINY_UNET = {**SD15_UNET, "model_channels": 32, "num_res_blocks": [1, 1], "channel_mult": [1, 2],
             "transformer_depth": [1, 1], "transformer_depth_output": [1, 1, 1, 1], "transformer_depth_middle": 1}
SD_VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
          "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def fill(module: torch.nn.Module, seed: int) -> None:
    """Every parameter from a seeded generator: weights ~1/sqrt(fan_in), embeddings 0.02,
    norm weights 1, biases 0 (ComfyUI's layers skip initialisation: they hold garbage)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point():
                continue
            if name.endswith("bias"):
                value = torch.zeros(tensor.shape)
            elif tensor.ndim <= 1:
                value = torch.ones(tensor.shape) * (4.6052 if name.endswith("logit_scale") else 1.0)
            elif "embedding" in name:
                value = torch.randn(tensor.shape, generator=generator) * 0.02
            else:
                fan_in = math.prod(tensor.shape[1:])
                value = torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in)
            tensor.copy_(value.to(tensor.dtype))


def build_model(unet: dict, *, seed: int, dtype: torch.dtype) -> tuple:
    config = comfy.supported_models.SD15({**unet, "dtype": dtype})
    config.set_inference_dtype(dtype, None)
    base = config.get_model({})
    fill(base, seed)
    device = torch.device("cpu")
    model = comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=device)
    clip = comfy.sd.CLIP(target=config.clip_target())
    fill(clip.cond_stage_model, seed + 1)
    return model, clip


def build_vae(seed: int) -> comfy.sd.VAE:
    autoencoder = AutoencoderKL(ddconfig=SD_VAE, embed_dim=4)
    fill(autoencoder, seed)
    return comfy.sd.VAE(sd=autoencoder.state_dict())


def lora_for(model, clip, *, unet_layers: int, clip_layers: int, seed: int, rank: int = 4) -> dict:
    """Kohya-named LoRA tensors for the first attention layers ComfyUI's key maps know."""
    generator = torch.Generator().manual_seed(seed)
    unet_keys = comfy.lora.model_lora_keys_unet(model.model, {})
    weights = model.model.state_dict()
    chosen = [(k, t) for k, t in unet_keys.items()
              if k.startswith("lora_unet_") and ("attn1_to_" in k or "attn2_to_q" in k) and weights[t].ndim == 2
              and "_down_blocks_" not in k and "_up_blocks_" not in k and "_mid_block_" not in k][:unet_layers]
    shapes = {k: weights[t].shape for k, t in chosen}
    if clip is not None and clip_layers:
        clip_keys = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, {})
        clip_weights = clip.cond_stage_model.state_dict()
        picked = [(k, t) for k, t in clip_keys.items() if k.startswith("lora_te_text_model_encoder_layers_")
                  and k.endswith(("_q_proj", "_v_proj"))][:clip_layers]
        shapes.update({k: clip_weights[t].shape for k, t in picked})
    tensors = {}
    for key, (out_features, in_features) in shapes.items():
        tensors[f"{key}.lora_down.weight"] = (torch.randn(rank, in_features, generator=generator) * 0.1).half()
        tensors[f"{key}.lora_up.weight"] = (torch.randn(out_features, rank, generator=generator) * 0.1).half()
        tensors[f"{key}.alpha"] = torch.tensor(float(rank)).half()
    return tensors


def build_sd15(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, lora = out_dir / "sd15_random.safetensors", out_dir / "sd15_random_lora.safetensors"
    if not checkpoint.exists():
        model, clip = build_model(SD15_UNET, seed=1, dtype=torch.float16)
        vae = build_vae(3)
        partial = out_dir / ".sd15_random.partial.safetensors"
        comfy.sd.save_checkpoint(str(partial), model, clip, vae)
        comfy.utils.save_torch_file(lora_for(model, clip, unet_layers=12, clip_layers=4, seed=7), str(lora))
        os.replace(partial, checkpoint)
    return {"checkpoint": str(checkpoint), "lora": str(lora)}


# --- the patch check -----------------------------------------------------------------
def patches_of(patcher) -> dict:
    """key -> [(strength, tensors of the LoRA for it)] of a model or CLIP patcher."""
    out = {}
    patcher = getattr(patcher, "patcher", patcher)  # a CLIP keeps its patches on its patcher
    for key, patches in patcher.patches.items():
        rows = []
        for strength_patch, adapter, strength_model, *_ in patches:
            weights = getattr(adapter, "weights", adapter)
            tensors = [w for w in weights if isinstance(w, torch.Tensor)] if isinstance(weights, (list, tuple)) else []
            rows.append((float(strength_patch), float(strength_model), tensors))
        out[key] = rows
    return out


def same_patches(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        if len(a[key]) != len(b[key]):
            return False
        for (s1, m1, t1), (s2, m2, t2) in zip(a[key], b[key]):
            if s1 != s2 or m1 != m2 or len(t1) != len(t2) or not all(torch.equal(x, y) for x, y in zip(t1, t2)):
                return False
    return True


def start_library(loras: Path, state: Path):
    """Our plugin as ComfyUI imports it, its services on a loop thread (ComfyUI's server loop)."""
    import importlib.util

    import folder_paths

    folder_paths.folder_names_and_paths["loras"] = ([str(loras)], folder_paths.supported_pt_extensions)
    os.environ["LM_SETTINGS_FILE"] = str(state / "settings.json")
    spec = importlib.util.spec_from_file_location("comfyui_model_library", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    plugin = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_model_library"] = plugin
    spec.loader.exec_module(plugin)
    from aiohttp import web
    from comfyui_model_library.py.app import build_app
    from comfyui_model_library.py.app_keys import SERVICES
    from comfyui_model_library.py.app_services import LibraryConfig
    from comfyui_model_library.py.nodes.library_access import NodeLibrary, set_node_library
    from comfyui_model_library.py.services.library.model_scanner import library_roots

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    app = build_app(LibraryConfig(roots=library_roots(loras=[str(loras)], checkpoints=[], diffusion_models=[],
                                                      embeddings=[]),
                                  settings_path=state / "settings.json", cache_dir=state / "cache", watch=False))

    async def start() -> None:
        runner = web.AppRunner(app)
        await runner.setup()  # runs the cleanup contexts' start-up halves: the services start
        await app[SERVICES].library.wait_started(60)

    asyncio.run_coroutine_threadsafe(start(), loop).result(90)
    set_node_library(NodeLibrary(services=app[SERVICES], loop=loop))
    return plugin


def patch_check(work: Path) -> dict:
    import nodes

    loras, state = work / "loras", work / "state"
    (loras / "style").mkdir(parents=True, exist_ok=True)
    model, clip = build_model(TINY_UNET, seed=11, dtype=torch.float32)
    comfy.utils.save_torch_file(lora_for(model, clip, unet_layers=6, clip_layers=4, seed=5),
                                str(loras / "style" / "ink.safetensors"))
    comfy.utils.save_torch_file(lora_for(model, clip, unet_layers=3, clip_layers=2, seed=6),
                                str(loras / "detail.safetensors"))
    (loras / "style" / "ink.metadata.json").write_text(json.dumps(
        {"trigger_words": ["ink style"], "civitai": {"trainedWords": ["Ink Style", "bold lines, thick outline"]}}))
    plugin = start_library(loras, state)
    ours = plugin.NODE_CLASS_MAPPINGS["LmLoraLoader"]()

    def run(entries, *, with_clip=True):
        return ours.load(model, json.dumps(entries), clip=clip if with_clip else None, prompt={}, unique_id="1")

    core = nodes.LoraLoader()
    core_model, core_clip = core.load_lora(model, clip, "style/ink.safetensors", 0.8, 0.6)
    core_model, core_clip = nodes.LoraLoader().load_lora(core_model, core_clip, "detail.safetensors", -0.5, 1.0)
    our_model, our_clip, words, syntax = run([
        {"name": "style/ink.safetensors", "strength": 0.8, "clip_strength": 0.6},
        {"name": "off.safetensors", "active": False},
        {"name": "detail", "strength": -0.5, "clip_strength": 1.0},
    ])
    off_model, off_clip, *_ = run([{"name": "style/ink.safetensors", "strength": 0.8, "active": False}])
    only_model, only_clip, *_ = run([{"name": "style/ink.safetensors", "strength": 0.7}], with_clip=False)
    core_only = nodes.LoraLoaderModelOnly().load_lora_model_only(model, "style/ink.safetensors", 0.7)[0]
    try:
        run([{"name": "gone.safetensors"}])
        missing = ""
    except LookupError as exc:
        missing = str(exc)
    return {
        "model_keys": len(patches_of(our_model)), "clip_keys": len(patches_of(our_clip)),
        "model_patches_equal": same_patches(patches_of(our_model), patches_of(core_model)),
        "clip_patches_equal": same_patches(patches_of(our_clip), patches_of(core_clip)),
        "strengths": sorted({row[0] for rows in patches_of(our_model).values() for row in rows}),
        "clip_strengths": sorted({row[0] for rows in patches_of(our_clip).values() for row in rows}),
        "off_applies_nothing": off_model is model and off_clip is clip and not patches_of(off_model),
        "model_only_equal": only_clip is None and same_patches(patches_of(only_model), patches_of(core_only)),
        "syntax": syntax, "trigger_words": words, "missing_error": missing,
    }


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    result = build_sd15(target) if command == "build-sd15" else patch_check(target)
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # the library's loop thread is a daemon; nothing to tear down in a throwaway process
