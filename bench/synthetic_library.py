"""Synthetic LoRA libraries for the benchmark: valid safetensors, sidecars, previews, folders.

``python bench/synthetic_library.py --count 10000 [--sidecars 0.8] [--previews 0.7] [--seed 1]``
prints the library path. Libraries are cached under ``bench/out/`` keyed by their
parameters (a ``.complete`` marker is written last), so a second call returns at once.

A library is ``loras/`` (``count`` LoRAs in ~200 nested folders; by default 80 % with a
sidecar and 70 % with a preview, as issue 13 asks), ``checkpoints/`` (count / 100) and
``embeddings/`` (count / 20), each model a small valid file of its kind.

Every model is a valid safetensors file written by hand (8-byte little-endian header
length, JSON header with a kohya-style ``__metadata__``, two small F16 tensors). Sidecars
follow the de-facto ``<stem>.metadata.json`` format with a CivitAI block of realistic
size (~5-15 KB); previews are ``<stem>.webp`` copies of a few real WebP blobs made once
with Pillow.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import struct
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
FORMAT_VERSION = 2  # bump when the generated content changes (invalidates the cache)

# (folder name, kohya ss_base_model_version, ss_sd_model_name, CivitAI baseModel)
BASES = [
    ("SD 1.5", "sd_v1", "v1-5-pruned-emaonly.safetensors", "SD 1.5"),
    ("SDXL 1.0", "sdxl_base_v1-0", "sd_xl_base_1.0.safetensors", "SDXL 1.0"),
    ("Pony", "sdxl_base_v1-0", "ponyDiffusionV6XL_v6StartWithThisOne.safetensors", "Pony"),
    ("Illustrious", "sdxl_base_v1-0", "illustriousXL_v01.safetensors", "Illustrious"),
    ("Flux.1 D", "flux1", "flux1-dev.safetensors", "Flux.1 D"),
    ("SD 2.1", "sd_v2", "v2-1_768-ema-pruned.safetensors", "SD 2.1"),
]
BASE_WEIGHTS = [30, 25, 18, 12, 10, 5]
CATEGORIES = [
    "character", "style", "concept", "clothing", "pose", "background", "vehicle", "animal",
    "object", "tool", "celebrity", "poses", "effects", "buildings", "food", "fantasy",
    "scifi", "anime", "realistic", "photography",
]
SUBFOLDERS = ["v1", "v2", "wip", "favourites", "archive"]  # third level in some categories
ADJECTIVES = [
    "crimson", "silent", "golden", "misty", "electric", "velvet", "frozen", "lunar", "ancient",
    "wild", "gentle", "broken", "hidden", "shiny", "dusty", "rapid", "bright", "hollow",
    "rustic", "cosmic", "neon", "pastel", "gothic", "vivid", "soft", "sharp", "dreamy",
]
NOUNS = [
    "forest", "knight", "river", "castle", "dragon", "garden", "portrait", "city", "ocean",
    "mecha", "witch", "samurai", "desert", "temple", "robot", "flower", "tower", "harbor",
    "cat", "fox", "wolf", "maiden", "pilot", "ranger", "mage", "ghost", "train", "bridge",
]
STYLES = ["style", "lora", "detailer", "concept", "xl", "lycoris", "locon", "helper", "slider"]
# The search term of the bench: a word that appears in no other vocabulary word and is
# put into ~5 % of the model names (its share is reported by the bench from `total`).
SEARCH_MARKER = "zephyrine"
SEARCH_SHARE = 0.05
TAG_WORDS = [
    "1girl", "solo", "long hair", "looking at viewer", "smile", "blush", "short hair",
    "open mouth", "blue eyes", "simple background", "brown hair", "shirt", "black hair",
    "holding", "outdoors", "sky", "day", "cloud", "tree", "standing", "upper body",
    "full body", "sitting", "masterpiece", "best quality", "detailed", "realistic",
    "landscape", "scenery", "night", "water", "building", "city lights", "armor", "sword",
    "flower", "hat", "dress", "jacket", "glasses", "red eyes", "green eyes", "white hair",
    "twintails", "ponytail", "closed eyes", "from side", "from above", "cowboy shot",
    "depth of field", "bokeh", "film grain", "monochrome", "sketch", "watercolor",
]
CIVITAI_TAGS = ["character", "style", "concept", "anime", "photorealistic", "clothing", "fantasy", "woman", "man", "landscape"]
CREATORS = [f"creator_{i:03d}" for i in range(400)]


def library_path(count: int, *, sidecars: float, previews: float, seed: int) -> Path:
    return OUT / f"lib-v{FORMAT_VERSION}-n{count}-sc{round(sidecars * 100)}-pv{round(previews * 100)}-seed{seed}"


def lora_root(root: Path) -> Path:
    return root / "loras"


def checkpoint_root(root: Path) -> Path:
    return root / "checkpoints"


def embedding_root(root: Path) -> Path:
    return root / "embeddings"


def _webp_blobs(seed: int) -> list[bytes]:
    """A handful of real small WebP images (made once with Pillow, cached on disk)."""
    cache = OUT / "webp-blobs"
    blobs = sorted(cache.glob("*.webp")) if cache.is_dir() else []
    if len(blobs) >= 6:
        return [p.read_bytes() for p in blobs]
    from PIL import Image, ImageDraw

    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(6):
        img = Image.new("RGB", (256, 384), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(40):
            x0, y0 = rng.randrange(256), rng.randrange(384)
            draw.ellipse(
                (x0, y0, x0 + rng.randrange(10, 90), y0 + rng.randrange(10, 90)),
                fill=tuple(rng.randrange(256) for _ in range(3)),
            )
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=70)
        (cache / f"blob{i}.webp").write_bytes(buf.getvalue())
        out.append(buf.getvalue())
    return out


def _tag_frequency_pool(rng: random.Random, size: int = 64) -> list[str]:
    """JSON strings for ``ss_tag_frequency`` of 1-3 KB (kohya: {dataset: {tag: count}})."""
    pool = []
    for _ in range(size):
        datasets = {}
        for d in range(rng.randint(1, 2)):
            tags = rng.sample(TAG_WORDS, rng.randint(25, min(55, len(TAG_WORDS))))
            datasets[f"{rng.randint(1, 20)}_{rng.choice(NOUNS)}{d}"] = {t: rng.randint(1, 300) for t in tags}
        pool.append(json.dumps(datasets))
    return pool


def _safetensors_bytes(metadata: dict[str, str], tensor_bytes: bytes) -> bytes:
    half = len(tensor_bytes) // 2
    header = {
        "__metadata__": metadata,
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {
            "dtype": "F16", "shape": [4, half // 8], "data_offsets": [0, half],
        },
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": {
            "dtype": "F16", "shape": [half // 8, 4], "data_offsets": [half, len(tensor_bytes)],
        },
    }
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment
    return struct.pack("<Q", len(raw)) + raw + tensor_bytes


def _civitai_block(rng: random.Random, i: int, name: str, base: str, sha: str, size: int, trained: list[str]) -> dict:
    version_id = 100000 + i
    model_id = 50000 + i // 2
    images = []
    for k in range(5):
        w, h = rng.choice([(512, 768), (832, 1216), (1024, 1024), (768, 512)])
        prompt = ", ".join(rng.sample(TAG_WORDS, rng.randint(12, 25)))
        images.append(
            {
                "url": f"https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA/{sha[k:k + 32]}/width={w}/{version_id}-{k}.jpeg",
                "nsfwLevel": rng.choice([1, 1, 1, 2, 4, 8]),
                "width": w,
                "height": h,
                "hash": "U" + sha[k * 4:k * 4 + 27],
                "type": "image",
                "hasMeta": True,
                "meta": {
                    "prompt": f"{', '.join(trained)}, {prompt}, <lora:{name}:0.8>",
                    "negativePrompt": "worst quality, low quality, bad anatomy, " + ", ".join(rng.sample(TAG_WORDS, 6)),
                    "sampler": rng.choice(["DPM++ 2M Karras", "Euler a", "DPM++ SDE Karras"]),
                    "cfgScale": rng.choice([5, 6, 7, 7.5]),
                    "steps": rng.choice([20, 25, 30, 35]),
                    "seed": rng.randrange(2**32),
                    "Size": f"{w}x{h}",
                    "Model": rng.choice(["ponyDiffusionV6XL", "juggernautXL_v9", "dreamshaper_8", "flux1-dev"]),
                    "Clip skip": rng.choice([1, 2]),
                },
            }
        )
    return {
        "id": version_id,
        "modelId": model_id,
        "name": f"v{rng.randint(1, 5)}.{rng.randint(0, 9)}",
        "createdAt": "2024-05-%02dT12:00:00.000Z" % rng.randint(1, 28),
        "updatedAt": "2024-06-%02dT12:00:00.000Z" % rng.randint(1, 28),
        "status": "Published",
        "publishedAt": "2024-06-01T12:00:00.000Z",
        "trainedWords": trained,
        "trainingStatus": None,
        "trainingDetails": None,
        "baseModel": base,
        "baseModelType": "Standard",
        "earlyAccessEndsAt": None,
        "description": "<p>" + " ".join(rng.choices(NOUNS + ADJECTIVES, k=rng.randint(20, 80))) + "</p>",
        "uploadType": "Created",
        "stats": {"downloadCount": rng.randrange(100000), "ratingCount": 0, "rating": 0, "thumbsUpCount": rng.randrange(5000)},
        "model": {"name": name.replace("_", " ").title(), "type": "LORA", "nsfw": False, "poi": False},
        "files": [
            {
                "id": 200000 + i,
                "sizeKB": size / 1024,
                "name": f"{name}.safetensors",
                "type": "Model",
                "pickleScanResult": "Success",
                "pickleScanMessage": "No Pickle imports",
                "virusScanResult": "Success",
                "scannedAt": "2024-06-01T12:00:00.000Z",
                "metadata": {"format": "SafeTensor", "size": None, "fp": None},
                "hashes": {
                    "AutoV1": sha[:8].upper(),
                    "AutoV2": sha[:10].upper(),
                    "SHA256": sha.upper(),
                    "CRC32": sha[:8].upper(),
                    "BLAKE3": hashlib.sha256(sha.encode()).hexdigest().upper(),
                    "AutoV3": sha[2:14].upper(),
                },
                "primary": True,
                "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
            }
        ],
        "images": images,
        "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
        "creator": {"username": rng.choice(CREATORS), "image": None},
    }


def generate(count: int, *, sidecars: float = 0.8, previews: float = 0.7, seed: int = 1, force: bool = False) -> Path:
    """Create (or reuse) the library for these parameters and return its root folder
    (``lora_root``, ``checkpoint_root`` and ``embedding_root`` name its three roots).

    ``sidecars`` and ``previews`` are the shares of LoRAs that get one (True = all)."""
    sidecars, previews = float(sidecars), float(previews)
    root = library_path(count, sidecars=sidecars, previews=previews, seed=seed)
    marker = root / ".complete"
    if marker.exists() and not force:
        return root
    if root.exists():
        shutil.rmtree(root)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    rng = random.Random(seed)
    blobs = _webp_blobs(seed)
    tagfreq = _tag_frequency_pool(rng)

    # ~200 folders: base / category, a third level for about a third of the categories
    folders: list[str] = []
    for base_name, *_ in BASES:
        for cat in CATEGORIES:
            if rng.random() < 0.35:
                for sub in rng.sample(SUBFOLDERS, rng.randint(1, 3)):
                    folders.append(f"{base_name}/{cat}/{sub}")
            else:
                folders.append(f"{base_name}/{cat}")
    by_base: dict[str, list[str]] = {}
    for folder in folders:
        by_base.setdefault(folder.split("/", 1)[0], []).append(folder)
    loras = lora_root(tmp)
    for folder in folders:
        (loras / folder).mkdir(parents=True, exist_ok=True)

    tensor = bytes(rng.randrange(256) for _ in range(256))
    used: set[str] = set()
    base_mtime = 1_700_000_000
    for i in range(count):
        base_name, kohya_base, sd_model, civitai_base = rng.choices(BASES, BASE_WEIGHTS)[0]
        folder = rng.choice(by_base[base_name])
        words = [rng.choice(ADJECTIVES), rng.choice(NOUNS)]
        if rng.random() < SEARCH_SHARE:
            words.insert(rng.randint(0, 2), SEARCH_MARKER)
        stem = "_".join(words) + f"_{rng.choice(STYLES)}_v{rng.randint(1, 30)}"
        if stem in used:
            stem += f"_{i}"
        used.add(stem)
        fake_sha = hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()
        trained = [f"{words[-1]}{rng.randint(1, 99)}", rng.choice(TAG_WORDS)]
        metadata = {
            "ss_base_model_version": kohya_base,
            "ss_sd_model_name": sd_model,
            "ss_output_name": stem,
            "ss_network_module": "networks.lora",
            "ss_network_dim": str(rng.choice([8, 16, 32, 64])),
            "ss_network_alpha": str(rng.choice([4, 8, 16, 32])),
            "ss_learning_rate": "0.0001",
            "ss_unet_lr": "0.0001",
            "ss_text_encoder_lr": "5e-05",
            "ss_lr_scheduler": "cosine_with_restarts",
            "ss_num_train_images": str(rng.randint(20, 400)),
            "ss_num_epochs": str(rng.randint(5, 20)),
            "ss_resolution": "(1024, 1024)" if "xl" in kohya_base else "(512, 512)",
            "ss_mixed_precision": "bf16",
            "ss_training_started_at": str(base_mtime - rng.randrange(10_000_000)),
            "ss_tag_frequency": tagfreq[rng.randrange(len(tagfreq))],
            "sshs_model_hash": fake_sha,
            "sshs_legacy_hash": fake_sha[:8],
        }
        data = _safetensors_bytes(metadata, tensor)
        has_sidecar = rng.random() < sidecars
        has_preview = rng.random() < previews
        model_path = loras / folder / f"{stem}.safetensors"
        with open(model_path, "wb") as fh:
            fh.write(data)
        mtime = base_mtime + rng.randrange(30_000_000)
        os.utime(model_path, (mtime, mtime))
        if has_sidecar:
            real_sha = hashlib.sha256(data).hexdigest()
            civitai = _civitai_block(rng, i, stem, civitai_base, real_sha, len(data), trained)
            sidecar = {
                "file_name": stem,
                "model_name": civitai["model"]["name"],
                "file_path": str(model_path).replace(str(tmp), str(root)),
                "size": len(data),
                "modified": float(mtime),
                "sha256": real_sha,
                "base_model": civitai_base,
                "preview_url": str(loras / folder / f"{stem}.webp").replace(str(tmp), str(root)) if has_preview else "",
                "preview_nsfw_level": civitai["images"][0]["nsfwLevel"],
                "notes": "",
                "from_civitai": True,
                "civitai": civitai,
                "tags": rng.sample(CIVITAI_TAGS, rng.randint(1, 4)),
                "modelDescription": civitai["description"] * 2,
                "favorite": rng.random() < 0.03,
                "exclude": False,
                "usage_tips": "{\"strength\": 0.8}",
                "civitai_deleted": False,
                "db_checked": False,
                "last_checked_at": float(mtime),
            }
            (loras / folder / f"{stem}.metadata.json").write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
        if has_preview:
            (loras / folder / f"{stem}.webp").write_bytes(blobs[i % len(blobs)])
    _other_types(tmp, count, rng, tensor, blobs)
    (tmp / ".complete").write_text(
        json.dumps({"count": count, "sidecars": sidecars, "previews": previews, "seed": seed,
                    "checkpoints": count // 100, "embeddings": count // 20,
                    "folders": len(folders), "marker": SEARCH_MARKER, "seconds": round(time.perf_counter() - started, 1)})
    )
    os.replace(tmp, root)
    # the recorded file_path fields point into the final location (renamed atomically)
    return root


def _other_types(tmp: Path, count: int, rng: random.Random, tensor: bytes, blobs: list[bytes]) -> None:
    """Checkpoints (count / 100) and embeddings (count / 20): header-only, a preview each for half."""
    for kind, n, folders in (("checkpoints", count // 100, ["SD 1.5", "SDXL", "Pony", "Flux"]),
                             ("embeddings", count // 20, ["negative", "style", "character", ""])):
        root = tmp / kind
        for i in range(n):
            folder = root / folders[i % len(folders)]
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{rng.choice(ADJECTIVES)}_{rng.choice(NOUNS)}_{kind[:4]}_{i}"
            base = rng.choice(BASES)
            data = _safetensors_bytes({"ss_base_model_version": base[1], "ss_output_name": stem}, tensor)
            (folder / f"{stem}.safetensors").write_bytes(data)
            if i % 2 == 0:
                (folder / f"{stem}.webp").write_bytes(blobs[i % len(blobs)])


def describe(root: Path) -> dict:
    return json.loads((root / ".complete").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--sidecars", type=float, default=0.8, help="share of LoRAs with a sidecar")
    parser.add_argument("--previews", type=float, default=0.7, help="share of LoRAs with a preview")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    root = generate(args.count, sidecars=args.sidecars, previews=args.previews, seed=args.seed, force=args.force)
    sys.stdout.write(f"{root}  ({describe(root)}; {time.perf_counter() - started:.1f}s)\n")


if __name__ == "__main__":
    main()
