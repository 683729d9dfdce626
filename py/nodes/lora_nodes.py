"""The LoRA Loader and LoRA Stacker nodes (category "Model Library").

Both take the LoRA list as one string input (``loras``: JSON or ``<lora:...>`` text, see
``lora_list``), which the editor shows as the list widget and scripts set directly. Names are
resolved through the library (a renamed or moved file by its SHA256), LoRAs are applied by core
``LoraLoader`` (``lora_apply``), and what was applied is remembered for Save Image.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..services.library.trigger_words import join_entries, merge_trigger_words
from . import run_record
from .library_access import node_library
from .lora_apply import LoraApplier
from .lora_list import LoraEntry, entries_from_stack, format_syntax, parse_lora_list, stack_of

_log = logging.getLogger(__name__)

CATEGORY = "Model Library"
LORAS_TOOLTIP = (
    "The LoRA list. In the editor: the list above. In an API prompt: a JSON list of "
    '{"name", "strength", "clip_strength", "active"} entries, or <lora:name:0.8> text.'
)


def _loras_input() -> tuple[str, dict[str, Any]]:
    return ("STRING", {"default": "", "multiline": True, "tooltip": LORAS_TOOLTIP})


def _own_signature(prompt: Any, unique_id: Any) -> str:
    node = prompt.get(str(unique_id)) if isinstance(prompt, dict) else None
    return run_record.signature_of(node.get("inputs") if isinstance(node, dict) else None)


class LoraNotFound(LookupError):
    """A LoRA of the list is in neither the library nor ComfyUI's LoRA folders."""


@dataclass(slots=True, frozen=True)
class _Found:
    entry: LoraEntry  # under the name its file has now
    file_path: str


def _resolved(entries: list[LoraEntry]) -> list[_Found]:
    """The active entries and their files (warnings logged); a name the library does not know
    yet may still be a file in ComfyUI's own LoRA folders (the first scan is still running).

    Raises ``LoraNotFound`` naming the first entry found nowhere.
    """
    import folder_paths

    active = [e for e in entries if e.active]
    if not active:
        return []
    out = []
    for entry, found in zip(active, node_library().resolve_loras(active)):
        if found is None:
            path = folder_paths.get_full_path("loras", entry.name)
            if not path:
                raise LoraNotFound(f"LoRA not found: '{entry.name}' is not in the library nor in ComfyUI's "
                                   "LoRA folders (renamed, moved or deleted?)")
            out.append(_Found(entry, path))
            continue
        if found.warning:
            _log.warning("model library: %s", found.warning)
        out.append(_Found(found.entry, found.file_path))
    return out


def _trigger_words(entries: list[LoraEntry]) -> str:
    if not entries:
        return ""
    words = node_library().trigger_words([e.name for e in entries])
    return join_entries(merge_trigger_words(*(words.get(e.name, ()) for e in entries)))


class LmLoraLoader:
    """LoRAs from the library, applied to MODEL (and CLIP when connected) in list order."""

    CATEGORY = CATEGORY
    DESCRIPTION = ("Applies a list of LoRAs from the model library, each with its own strengths and on/off "
                   "switch, and outputs their trigger words and <lora:...> text.")
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "STRING", "STRING")
    RETURN_NAMES = ("MODEL", "CLIP", "trigger_words", "lora_syntax")
    OUTPUT_TOOLTIPS = (
        "The model with the LoRAs applied.", "The CLIP with the LoRAs applied (none when none came in).",
        "The active LoRAs' trigger words: your own first, then CivitAI's, each once.",
        "The active LoRAs as <lora:name:strength> text.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"model": ("MODEL", {"tooltip": "The diffusion model the LoRAs apply to."}),
                         "loras": _loras_input()},
            "optional": {"clip": ("CLIP", {"tooltip": "Leave unconnected for model-only LoRAs."}),
                         "lora_stack": ("LORA_STACK", {"tooltip": "LoRAs applied before this node's list."})},
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    def __init__(self) -> None:
        self._applier = LoraApplier()

    def load(self, model: Any, loras: str, clip: Any = None, lora_stack: Any = None, prompt: Any = None,
             unique_id: Any = None) -> tuple[Any, Any, str, str]:
        found = _resolved(entries_from_stack(lora_stack) + parse_lora_list(loras))
        self._applier.begin()
        try:
            for lora in found:
                model, clip = self._applier.apply(
                    model, clip, name=lora.entry.name, file_path=lora.file_path, strength=lora.entry.strength,
                    clip_strength=lora.entry.clip_strength,
                )
        finally:
            self._applier.end()
        entries = [lora.entry for lora in found]
        words, syntax = _trigger_words(entries), format_syntax(entries)
        run_record.remember(unique_id, run_record.NodeRun(
            signature=_own_signature(prompt, unique_id), applied=tuple(stack_of(entries)),
            outputs={2: words, 3: syntax},
        ))
        return model, clip, words, syntax


class LmLoraStacker:
    """A LoRA list as a LORA_STACK for any loader that takes one (chainable in and out)."""

    CATEGORY = CATEGORY
    DESCRIPTION = "Adds a list of LoRAs from the model library to a LORA_STACK, for loaders that take one."
    FUNCTION = "stack"
    RETURN_TYPES = ("LORA_STACK", "STRING", "STRING")
    RETURN_NAMES = ("lora_stack", "trigger_words", "lora_syntax")
    OUTPUT_TOOLTIPS = (
        "The incoming stack followed by this list's active LoRAs: (name, model strength, clip strength).",
        "The trigger words of every LoRA in the stack.", "The stack as <lora:name:strength> text.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"loras": _loras_input()},
            "optional": {"lora_stack": ("LORA_STACK", {"tooltip": "A stack to extend."})},
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    def stack(self, loras: str, lora_stack: Any = None, prompt: Any = None,
              unique_id: Any = None) -> tuple[list[tuple[str, float, float]], str, str]:
        upstream = entries_from_stack(lora_stack)  # names as the packs that made them know them: kept
        entries = upstream + [lora.entry for lora in _resolved(parse_lora_list(loras))]
        stack = stack_of(entries)
        words, syntax = _trigger_words(entries), format_syntax(entries)
        run_record.remember(unique_id, run_record.NodeRun(
            signature=_own_signature(prompt, unique_id), applied=tuple(stack), outputs={1: words, 2: syntax},
        ))
        return stack, words, syntax
