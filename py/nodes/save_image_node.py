"""The Save Image node: core ``SaveImage`` (prefix, counter, output folder, workflow and
prompt embedded, the preview in the node) plus the A1111 ``parameters`` text CivitAI reads to
credit the checkpoint, LoRAs and embeddings that made the image (by their AutoV2 hashes).
"""
from __future__ import annotations

import logging
import os
from typing import Any

from . import run_record
from .generation_params import collect_generation, parameters_text
from .image_metadata import png_info, webp_exif
from .library_access import node_library

_log = logging.getLogger(__name__)

FORMATS = ["png", "webp"]


def _executed(prompt: dict[str, Any]):
    """What our nodes computed when they ran with the inputs this prompt gives them."""

    def lookup(node_id: str, slot: int | str) -> Any:
        node = prompt.get(str(node_id)) or {}
        run = run_record.recall(node_id, run_record.signature_of(node.get("inputs")))
        if run is None:
            return None
        return [list(a) for a in run.applied] if slot == "applied" else run.outputs.get(slot)

    return lookup


def generation_text(prompt: Any, unique_id: Any, width: int, height: int) -> str:
    """The ``parameters`` text for images reaching node ``unique_id``; '' when the graph has
    no sampler upstream (an image loaded from disk, say)."""
    if not isinstance(prompt, dict) or unique_id is None:
        return ""
    params = collect_generation(prompt, unique_id, executed=_executed(prompt))
    if params.steps is None and params.checkpoint is None and not params.positive:
        return ""
    refs = ([params.checkpoint] if params.checkpoint else []) + params.loras + params.embeddings
    try:
        hashes = node_library().hashes([(r.kind, r.name) for r in refs])
    except Exception as exc:  # the image is saved anyway; only the credits are missing
        _log.warning("model library: no model hashes for the saved image (%s)", exc)
        hashes = {}
    missing = [r.name for r in refs if (r.kind, r.name) not in hashes]
    if missing:
        _log.info("model library: no hash for %s (not in the library)", ", ".join(missing))
    return parameters_text(params, width=width, height=height, hash_of=lambda kind, name: hashes.get((kind, name)))


class LmSaveImage:
    """Saves images to ComfyUI's output folder with metadata CivitAI reads."""

    CATEGORY = "Model Library"
    DESCRIPTION = ("Saves images like Save Image, and adds the A1111-style generation parameters with the "
                   "hashes of the models used, so CivitAI credits them.")
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": ("STRING", {"default": "ComfyUI", "tooltip": (
                    "The prefix for the file to save. It may include %date:yyyy-MM-dd% or "
                    "%Empty Latent Image.width% like core Save Image.")}),
                "file_format": (FORMATS, {"default": "png", "tooltip": "PNG, or WebP with the same metadata in EXIF."}),
                "quality": ("INT", {"default": 95, "min": 1, "max": 100, "step": 1,
                                    "tooltip": "WebP quality; 100 saves lossless. PNG ignores it."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"},
        }

    def save(self, images: Any, filename_prefix: str = "ComfyUI", file_format: str = "png", quality: int = 95,
             prompt: Any = None, extra_pnginfo: Any = None, unique_id: Any = None) -> dict[str, Any]:
        import folder_paths
        import numpy as np
        from comfy.cli_args import args
        from PIL import Image

        if file_format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}")
        height, width = int(images[0].shape[0]), int(images[0].shape[1])
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), width, height
        )
        with_metadata = not args.disable_metadata
        parameters = generation_text(prompt, unique_id, width, height) if with_metadata else ""
        results = []
        for batch_number, image in enumerate(images):
            pixels = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
            picture = Image.fromarray(pixels)
            name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.{file_format}"
            target = os.path.join(folder, name)
            if file_format == "png":
                picture.save(target, pnginfo=png_info(parameters, prompt, extra_pnginfo) if with_metadata else None,
                             compress_level=4)
            else:
                extra = {"exif": webp_exif(parameters, prompt, extra_pnginfo)} if with_metadata else {}
                picture.save(target, lossless=quality >= 100, quality=quality, method=4, **extra)
            results.append({"filename": name, "subfolder": subfolder, "type": "output"})
            counter += 1
        return {"ui": {"images": results}}
