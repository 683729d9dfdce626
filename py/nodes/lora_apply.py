"""Applying LoRAs the way core ``LoraLoader`` does, because it is core ``LoraLoader``: one
instance per LoRA file (so each keeps its loaded file, as a chain of core nodes would), called
with ComfyUI's own name for the file. A file in a LoRA folder ComfyUI does not list (one of the
library's extra roots) goes through the same two calls core makes, by full path.

Runs on the executor thread; imports ComfyUI only when a LoRA is applied.
"""
from __future__ import annotations

import logging
import os
from typing import Any

_log = logging.getLogger(__name__)


def _same_file(a: str | None, b: str) -> bool:
    if not a:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class LoraApplier:
    """What one loader node keeps between runs: a core ``LoraLoader`` per LoRA file it uses."""

    def __init__(self) -> None:
        self._loaders: dict[str, Any] = {}
        self._used: set[str] = set()

    def begin(self) -> None:
        self._used = set()

    def end(self) -> None:
        """Let go of the files this run no longer uses (core keeps only its current one too)."""
        for path in [p for p in self._loaders if p not in self._used]:
            del self._loaders[path]

    def apply(self, model: Any, clip: Any, *, name: str, file_path: str, strength: float,
              clip_strength: float) -> tuple[Any, Any]:
        import folder_paths
        import nodes

        clip_strength = clip_strength if clip is not None else 0.0
        if strength == 0 and clip_strength == 0:
            return model, clip
        self._used.add(file_path)
        loader = self._loaders.get(file_path)
        if loader is None:
            loader = self._loaders[file_path] = nodes.LoraLoader()
        if _same_file(folder_paths.get_full_path("loras", name), file_path):
            return loader.load_lora(model, clip, name, strength, clip_strength)
        import comfy.sd
        import comfy.utils

        cached = getattr(loader, "loaded_lora", None)
        if cached is not None and cached[0] == file_path:
            lora = cached[1]
        else:
            lora = comfy.utils.load_torch_file(file_path, safe_load=True)
            loader.loaded_lora = (file_path, lora)
        return comfy.sd.load_lora_for_models(model, clip, lora, strength, clip_strength)
