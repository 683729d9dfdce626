"""What our LoRA Loader adds to a prompt: 10 LoRAs in one LmLoraLoader against 10 chained core
LoraLoader nodes, on the SD 1.5-shaped checkpoint the real-ComfyUI tests build (ComfyUI's own
model classes, random weights), in ComfyUI's Python, on the CPU.

    eval "$(bash tests/comfyui/provision_comfyui.sh)"
    (cd "$COMFYUI_DIR" && "$COMFYUI_PYTHON" "$OLDPWD/bench/lora_loader_bench.py")

Cold: new node instances (every LoRA file read from disk, page cache warm). Warm: the same
instances again (their loaded files reused, as ComfyUI does on the next prompt when a strength
changes). Prints the median of 7 runs of each; ours includes the round trips to the library
(names, trigger words) on its event loop thread.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "comfyui"))
import inside_comfyui as comfy_side  # noqa: E402  (ComfyUI's torch and modules, CPU only)

LORAS = 10
RUNS = 7


def medians_ms(*fns) -> list[float]:
    """Each function's median time, run in turn (ours, core, ours, ...) so drift hits both."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(RUNS):
        for fn, out in zip(fns, times):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
    return [statistics.median(t) for t in times]


def main() -> None:
    import comfy.sd
    import nodes

    cache = Path(os.environ.get("LM_MODELS_CACHE") or Path.home() / ".cache" / "lm-ci" / "models")
    built = comfy_side.build_sd15(cache)
    model, clip, *_ = comfy.sd.load_checkpoint_guess_config(built["checkpoint"], output_vae=False,
                                                           output_clipvision=False)
    work = Path(tempfile.mkdtemp(prefix="lm-lora-bench-"))
    loras = work / "loras"
    loras.mkdir()
    for i in range(LORAS):
        comfy_side.comfy.utils.save_torch_file(
            comfy_side.lora_for(model, clip, unet_layers=32, clip_layers=12, seed=100 + i),
            str(loras / f"lora_{i:02d}.safetensors"))
    plugin = comfy_side.start_library(loras, work / "state")
    names = [f"lora_{i:02d}.safetensors" for i in range(LORAS)]
    entries = json.dumps([{"name": n, "strength": 0.5 + i / 20} for i, n in enumerate(names)])
    loader_class = plugin.NODE_CLASS_MAPPINGS["LmLoraLoader"]

    def ours(loader) -> None:
        loader.load(model, entries, clip=clip, prompt={}, unique_id="1")

    def core(chain) -> None:
        m, c = model, clip
        for i, (node, name) in enumerate(zip(chain, names)):
            m, c = node.load_lora(m, c, name, 0.5 + i / 20, 0.5 + i / 20)

    ours_cold, core_cold = medians_ms(lambda: ours(loader_class()), lambda: core([nodes.LoraLoader() for _ in names]))
    warm_loader, warm_chain = loader_class(), [nodes.LoraLoader() for _ in names]
    ours(warm_loader)
    core(warm_chain)
    ours_warm, core_warm = medians_ms(lambda: ours(warm_loader), lambda: core(warm_chain))
    print(f"{LORAS} LoRAs on an SD 1.5-shaped model (CPU), median of {RUNS}:")
    print(f"  cold  LmLoraLoader {ours_cold:8.1f} ms   10 x core LoraLoader {core_cold:8.1f} ms   "
          f"difference {ours_cold - core_cold:+.1f} ms")
    print(f"  warm  LmLoraLoader {ours_warm:8.1f} ms   10 x core LoraLoader {core_warm:8.1f} ms   "
          f"difference {ours_warm - core_warm:+.1f} ms")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
