"""Files beside a model: the ``.metadata.json`` sidecar, ``.civitai.info`` and previews.

Owns the names and formats of companion files, reading them tolerantly and writing
sidecars atomically (unknown keys preserved, corrupt files backed up before a rewrite).
It must not know about the index: callers turn what it reads into entries.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Iterable

from .atomic_file import write_json_atomic

_log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".metadata.json"
CIVITAI_INFO_SUFFIX = ".civitai.info"

# Checked in this order; the first one present is the model's preview.
PREVIEW_SUFFIXES: tuple[str, ...] = (
    ".webp",
    ".preview.webp",
    ".preview.png",
    ".preview.jpg",
    ".preview.jpeg",
    ".png",
    ".jpg",
    ".jpeg",
    ".preview.gif",
    ".gif",
    ".preview.mp4",
    ".mp4",
    ".preview.webm",
    ".webm",
)
VIDEO_SUFFIXES = (".mp4", ".webm")
IMAGE_SUFFIXES = (".webp", ".png", ".jpg", ".jpeg", ".gif")


def companion_suffixes() -> tuple[str, ...]:
    """Every suffix whose file travels with a model on rename, move and delete."""
    return (SIDECAR_SUFFIX, CIVITAI_INFO_SUFFIX) + PREVIEW_SUFFIXES


def find_preview_name(stem: str, names: "set[str] | frozenset[str]") -> str:
    """The preview file name for ``stem`` among the names of its folder, or ''."""
    for suffix in PREVIEW_SUFFIXES:
        candidate = stem + suffix
        if candidate in names:
            return candidate
    return ""


def preview_kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith(VIDEO_SUFFIXES):
        return "video"
    if lower.endswith(IMAGE_SUFFIXES):
        return "image"
    return ""


@dataclass(slots=True, frozen=True, kw_only=True)
class SidecarRead:
    """What reading a model's sidecar produced: data, or a flag saying why not."""

    data: dict[str, Any]
    corrupt: bool = False
    source: str = ""  # 'metadata.json', 'civitai.info' or '' (none)


def sidecar_path(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + SIDECAR_SUFFIX


def read_sidecar_file(path: str) -> SidecarRead:
    """Read one sidecar; a missing file is empty data, a broken one is flagged."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return SidecarRead(data={})
    except OSError as exc:
        _log.warning("cannot read sidecar %s: %s", path, exc)
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    try:
        data = json.loads(raw)
    except ValueError:
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    if not isinstance(data, dict):
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    return SidecarRead(data=data, source="metadata.json")


def read_civitai_info(path: str) -> dict[str, Any]:
    """Convert a ``.civitai.info`` file (a CivitAI version document) into sidecar form."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {"civitai": data, "from_civitai": True}
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    if model.get("name"):
        out["model_name"] = model["name"]
    if data.get("baseModel"):
        out["base_model"] = data["baseModel"]
    for file in data.get("files") or []:
        hashes = file.get("hashes") if isinstance(file, dict) else None
        if isinstance(hashes, dict) and hashes.get("SHA256"):
            out["sha256"] = str(hashes["SHA256"]).lower()
            break
    return out


def read_model_sidecar(model_path: str, names: Iterable[str] | None = None) -> SidecarRead:
    """The sidecar of a model, falling back to ``.civitai.info`` when there is none."""
    stem = os.path.splitext(model_path)[0]
    folder_names = names if names is None or isinstance(names, (set, frozenset)) else set(names)
    sidecar = stem + SIDECAR_SUFFIX
    if folder_names is None or os.path.basename(sidecar) in folder_names:
        read = read_sidecar_file(sidecar)
        if read.data or read.corrupt:
            return read
    info = stem + CIVITAI_INFO_SUFFIX
    if folder_names is None or os.path.basename(info) in folder_names:
        data = read_civitai_info(info)
        if data:
            return SidecarRead(data=data, source="civitai.info")
    return SidecarRead(data={})


def write_sidecar(model_path: str, data: dict[str, Any]) -> int:
    """Write a model's sidecar atomically and return its new mtime_ns.

    A sidecar that exists but does not parse is copied to ``.metadata.json.bak-<time>``
    first: another tool's file is never overwritten silently.
    """
    path = sidecar_path(model_path)
    if os.path.exists(path) and read_sidecar_file(path).corrupt:
        backup = f"{path}.bak-{int(time.time())}"
        shutil.copy2(path, backup)
        _log.warning("corrupt sidecar %s backed up to %s before rewrite", path, backup)
    write_json_atomic(path, data)
    return os.stat(path).st_mtime_ns
