"""The LoRA list of the loader and stacker nodes.

The parsing is pure (no ComfyUI) and is shared with the workflow reader, so it lives in
``py/services/workflows/lora_list.py``; this module keeps the names the nodes, scripts and
tests import from here.
"""
from __future__ import annotations

from ..services.workflows.lora_list import (
    MAX_ENTRIES,
    MAX_STRENGTH,
    LoraEntry,
    LoraListError,
    entries_from_stack,
    format_syntax,
    parse_lora_list,
    parse_lora_syntax,
    stack_of,
    to_json,
)

__all__ = [
    "LoraEntry", "LoraListError", "entries_from_stack", "format_syntax", "parse_lora_list", "parse_lora_syntax",
    "stack_of", "to_json", "MAX_ENTRIES", "MAX_STRENGTH",
]
