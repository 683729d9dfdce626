"""A small generated library for ``--demo``: real safetensors files, sidecars and previews.

Creates it once (an existing demo folder is left as the user changed it). Tensor data is
a few bytes: the files are valid safetensors, not usable models.
"""
from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from ..services.shared.atomic_file import write_bytes_atomic, write_json_atomic

BASES = ("SD 1.5", "SDXL 1.0", "Pony", "Illustrious", "Flux.1 D")
KOHYA_BASE = {"SD 1.5": "sd_v1", "SDXL 1.0": "sdxl_base_v1-0", "Pony": "sdxl_base_v1-0", "Illustrious": "sdxl_base_v1-0", "Flux.1 D": "flux1"}
TAGS = ("character", "style", "concept", "clothing", "poses", "background", "vehicle", "animal", "anime", "photorealistic")
WORDS = ("Amber", "Blue", "Crystal", "Dusk", "Ember", "Frost", "Golden", "Haze", "Iris", "Jade", "Lunar", "Misty", "Neon", "Onyx", "Pastel", "Quartz", "Ruby", "Solar", "Teal", "Velvet")
NOUNS = ("Portrait", "Forest", "City", "Knight", "Garden", "Robot", "Dragon", "Ocean", "Castle", "Witch", "Samurai", "Car", "Cat", "Ink", "Watercolor")


def safetensors_bytes(metadata: dict[str, str], n_values: int = 16) -> bytes:
    """A valid safetensors file with one small F32 tensor and ``metadata``."""
    data = struct.pack(f"<{n_values}f", *[i / n_values for i in range(n_values)])
    header = {
        "__metadata__": metadata,
        "lora_up.weight": {"dtype": "F32", "shape": [n_values], "data_offsets": [0, len(data)]},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw + data


def preview_webp(seed: int, size: int = 256) -> bytes:
    """A gradient WebP preview (Pillow)."""
    import io

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    c1 = tuple(rng.randrange(30, 230) for _ in range(3))
    c2 = tuple(rng.randrange(30, 230) for _ in range(3))
    image = Image.new("RGB", (size, int(size * 1.25)), c1)
    draw = ImageDraw.Draw(image)
    height = image.height
    for y in range(height):
        t = y / height
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(c1, c2)))
    for _ in range(6):
        x, y, r = rng.randrange(size), rng.randrange(height), rng.randrange(10, 60)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=(255, 255, 255), width=3)
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=70)
    return buf.getvalue()


def create_demo_library(folder: Path, *, loras: int = 48, seed: int = 7) -> dict[str, Path]:
    """Create (once) and return the demo folders by kind."""
    folders = {
        "loras": folder / "loras",
        "checkpoints": folder / "checkpoints",
        "diffusion_models": folder / "diffusion_models",
        "embeddings": folder / "embeddings",
    }
    marker = folder / ".demo-created"
    if marker.exists():
        return folders
    rng = random.Random(seed)
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    for i in range(loras):
        base = BASES[i % len(BASES)]
        tag = TAGS[i % len(TAGS)]
        name = f"{WORDS[i % len(WORDS)]} {NOUNS[(i * 7) % len(NOUNS)]}"
        stem = name.lower().replace(" ", "_") + f"_v{1 + i % 3}"
        sub = folders["loras"] / base.replace(" ", "_").replace(".", "") / tag
        sub.mkdir(parents=True, exist_ok=True)
        model = sub / f"{stem}.safetensors"
        write_bytes_atomic(model, safetensors_bytes({"ss_base_model_version": KOHYA_BASE[base], "ss_output_name": stem}))
        if i % 4 != 3:  # a quarter without any sidecar: hashed in the background
            trigger = f"{stem.split('_')[0]} style"
            write_json_atomic(
                sub / f"{stem}.metadata.json",
                {
                    "file_name": stem,
                    "model_name": name,
                    "base_model": base,
                    "tags": [tag, rng.choice(TAGS)],
                    "favorite": i % 9 == 0,
                    "notes": "",
                    "from_civitai": False,
                    "civitai": {"trainedWords": [trigger]},
                    "usage_tips": json.dumps({"strength": 0.8}),
                },
            )
        if i % 5 != 4:
            write_bytes_atomic(sub / f"{stem}.webp", preview_webp(i))
    for i, base in enumerate(("SD 1.5", "SDXL 1.0", "Pony")):
        stem = f"{WORDS[i + 3].lower()}_{base.replace(' ', '').lower()}_base"
        write_bytes_atomic(folders["checkpoints"] / f"{stem}.safetensors", safetensors_bytes({"modelspec.architecture": "stable-diffusion-xl-v1-base" if "XL" in base or base == "Pony" else "stable-diffusion-v1"}))
        write_bytes_atomic(folders["checkpoints"] / f"{stem}.webp", preview_webp(100 + i))
    write_bytes_atomic(folders["diffusion_models"] / "flux1_dev_demo.safetensors", safetensors_bytes({"modelspec.architecture": "flux-1-dev"}))
    for i in range(4):
        stem = f"{WORDS[i + 10].lower()}_embedding"
        write_bytes_atomic(folders["embeddings"] / f"{stem}.safetensors", safetensors_bytes({}))
    marker.write_text("created by --demo; delete this folder to regenerate\n", encoding="utf-8")
    return folders
