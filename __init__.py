"""ComfyUI entry point of the model library.

ComfyUI imports this folder as a package: we export the node mappings (py/nodes: LoRA
Loader, LoRA Stacker, Trigger Words, Save Image) and the web directory, and register every
route on ``PromptServer.instance``. Imported anywhere else (tests, tools) it does nothing more.
"""
from __future__ import annotations

import logging

if __package__:
    from .py.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # imported as a plain module, not as the package ComfyUI makes of this folder: pytest does
    # that when the folder's name is no Python identifier (a clone called "model-library")
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

WEB_DIRECTORY = "./web/comfyui"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

_log = logging.getLogger(__name__)


def _register_with_comfyui() -> None:
    try:
        import server  # noqa: F401  (ComfyUI's own module: only there do we register)
    except ImportError:
        _log.debug("model library: not running inside ComfyUI")
        return
    # Inside ComfyUI a failure here must be loud: ComfyUI logs it as IMPORT FAILED.
    from .py.host.comfyui import comfyui_available, register_with_comfyui

    if comfyui_available():
        register_with_comfyui()


_register_with_comfyui()
