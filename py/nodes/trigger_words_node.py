"""The Trigger Words node: trigger words (from a loader, or any text) as chips the user
switches off and on; outputs the words still on, joined with ", ".

The switches are the ``toggles`` input (the editor keeps it in step with the chips): the words
or comma groups switched off, as a JSON list. They apply to the text, so they survive re-runs
and edits of the LoRA list (a word that comes back is still off).
"""
from __future__ import annotations

import json
from typing import Any

from ..services.library.trigger_words import apply_toggles, split_words
from . import run_record

TOGGLES_TOOLTIP = 'The words switched off: a JSON list, e.g. ["blue hair, long hair", "smile"].'


def parse_toggles(value: Any) -> list[str]:
    """The switched-off entries: a JSON list (or ``{"disabled": [...]}``), else one per line."""
    if isinstance(value, (list, tuple)):
        items: Any = value
    else:
        text = str(value or "").strip()
        if not text:
            return []
        try:
            items = json.loads(text)
        except ValueError:
            items = text.splitlines()
        if isinstance(items, dict):
            items = items.get("disabled") or []
        if not isinstance(items, list):
            items = [text]
    return [str(item).strip() for item in items if str(item).strip()]


class LmTriggerWords:
    """Shows trigger words as chips; the ones switched off are left out of the output."""

    CATEGORY = "Model Library"
    DESCRIPTION = "Trigger words as chips you switch off and on; outputs the words that are on, joined with ', '."
    FUNCTION = "words"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("trigger_words",)
    OUTPUT_TOOLTIPS = ("The words that are on, joined with ', '.",)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "trigger_words": ("STRING", {"forceInput": True, "tooltip": "From a LoRA Loader, or any text."}),
                "toggles": ("STRING", {"default": "[]", "tooltip": TOGGLES_TOOLTIP}),
            },
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    def words(self, trigger_words: str, toggles: str = "[]", prompt: Any = None,
              unique_id: Any = None) -> dict[str, Any]:
        text = apply_toggles(trigger_words or "", parse_toggles(toggles))
        node = prompt.get(str(unique_id)) if isinstance(prompt, dict) else None
        run_record.remember(unique_id, run_record.NodeRun(
            signature=run_record.signature_of(node.get("inputs") if isinstance(node, dict) else None),
            outputs={0: text},
        ))
        # the chips of text from anywhere are its comma-separated words, shown once it ran
        return {"ui": {"trigger_words": [trigger_words or ""], "words": split_words(trigger_words or "")},
                "result": (text,)}
