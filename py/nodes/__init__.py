"""The nodes the library adds to ComfyUI (category "Model Library"): LoRA Loader, LoRA Stacker,
Trigger Words and Save Image, and the pure pieces they are made of (the LoRA list, trigger-word
lists, generation parameters). Importable without ComfyUI: node code imports ComfyUI's modules
only when it runs, and reaches the library through ``library_access`` on the server's loop.
"""
from __future__ import annotations

from .lora_nodes import LmLoraLoader, LmLoraStacker
from .save_image_node import LmSaveImage
from .trigger_words_node import LmTriggerWords

# the type names are what saved workflows store: never rename them
NODE_CLASS_MAPPINGS = {
    "LmLoraLoader": LmLoraLoader,
    "LmLoraStacker": LmLoraStacker,
    "LmTriggerWords": LmTriggerWords,
    "LmSaveImage": LmSaveImage,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "LmLoraLoader": "LoRA Loader (Model Library)",
    "LmLoraStacker": "LoRA Stacker (Model Library)",
    "LmTriggerWords": "Trigger Words (Model Library)",
    "LmSaveImage": "Save Image (Model Library)",
}
