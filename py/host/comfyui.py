"""The ComfyUI host: roots from ``folder_paths``, routes on ``PromptServer.instance``,
events forwarded on ComfyUI's own socket, the nodes' way to the library, the prompt hook.

The only module that imports ComfyUI. Registration happens at import time of the plugin
(ComfyUI imports custom nodes before it adds its routes and starts serving).
"""
from __future__ import annotations

import logging
import os
from typing import Any

from ..app import mount, register_routes
from ..app_services import AppServices, LibraryConfig, build_services
from ..nodes.library_access import NodeLibrary, set_node_library
from ..services.library.model_scanner import LibraryRoot, library_roots
from ..services.shared.model_types import EXTRA_TYPES, NON_MODEL_FOLDER_KEYS, ModelType
from ..services.shared.settings_manager import SettingsManager, default_settings_path
from .comfyui_usage import usage_hook

_log = logging.getLogger(__name__)

# ComfyUI serves GET /embeddings itself (the frontend's autocomplete reads it): our
# embeddings page lives at /lm/embeddings there, never shadowing a core route.
CORE_ROUTE_CLASHES = frozenset({"/embeddings"})

_registered: AppServices | None = None


def comfyui_available() -> bool:
    try:
        import folder_paths  # noqa: F401
        from server import PromptServer
    except ImportError:
        return False
    return getattr(PromptServer, "instance", None) is not None


def _folder_paths(name: str, *legacy: str) -> list[str]:
    import folder_paths

    for key in (name, *legacy):
        try:
            paths = folder_paths.get_folder_paths(key)
        except (KeyError, AttributeError):
            continue
        if paths:
            return list(paths)
    return []


def _other_folder_keys() -> list[str]:
    """``folder_paths`` keys no type names (``extra_model_paths.yaml``, custom nodes' folders)."""
    import folder_paths

    named = {key for t in ModelType for key in t.spec.folder_keys}
    names = getattr(folder_paths, "folder_names_and_paths", {}) or {}
    return [key for key in names if key not in named and key not in NON_MODEL_FOLDER_KEYS]


def comfyui_roots(settings: SettingsManager) -> dict[ModelType, list[LibraryRoot]]:
    """ComfyUI's folders (``extra_model_paths.yaml`` included), plus extra ones from the settings.

    Every ``folder_paths`` key becomes roots: the table's types by their keys, any other key
    (a custom node's, an ``extra_model_paths.yaml`` one) under ``other`` with the key as sub-type.
    """
    # the other types' folders only where they exist (ComfyUI names output/vae, models/gligen ...
    # whether or not they are there): a type without one costs nothing, not even a failed listing
    extra: dict[ModelType, list[tuple[str, str]]] = {}
    for model_type in EXTRA_TYPES:
        spec = model_type.spec
        paths = [p for p in (_folder_paths(*spec.folder_keys) if spec.folder_keys else []) if os.path.isdir(p)]
        extra[model_type] = [(p, "") for p in paths + settings.get(spec.settings_key)]
    extra[ModelType.OTHER] += [
        (p, key) for key in _other_folder_keys() for p in _folder_paths(key) if os.path.isdir(p)
    ]
    return library_roots(
        loras=_folder_paths("loras") + settings.get("lora_roots"),
        checkpoints=_folder_paths("checkpoints") + settings.get("checkpoint_roots"),
        diffusion_models=_folder_paths("diffusion_models", "unet") + settings.get("diffusion_model_roots"),
        embeddings=_folder_paths("embeddings") + settings.get("embedding_roots"),
        extra=extra,
    )


def comfyui_trusted_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Host names and origins ComfyUI's own launch flags imply.

    ``--listen mypc.lan`` names a host the user opens ComfyUI by; ``--enable-cors-header
    ORIGIN`` lets that origin talk to ComfyUI, so to the library too (``*``, the flag without
    a value, lets every origin in: the user asked for that, and ComfyUI is as open).
    """
    try:
        from comfy.cli_args import args
    except Exception:  # an older or stripped-down ComfyUI: nothing implied
        return (), ()
    hosts = [part.strip() for part in str(getattr(args, "listen", "") or "").split(",") if part.strip()]
    cors = getattr(args, "enable_cors_header", None)
    origins = (str(cors).strip(),) if cors else ()
    if "*" in origins:
        _log.warning("model library: --enable-cors-header * lets every web site change the library as well as ComfyUI")
    return tuple(h for h in hosts if h not in ("0.0.0.0", "::")), origins


class ComfyUISocket:
    """Our messages on ComfyUI's socket as ``lm.<type>``, to the editor tabs that asked for them.

    A tab asks once its extension listens (``POST /api/lm/events/listen`` with its socket's
    client id, again after a reconnect). ComfyUI's socket is open before extensions load, and
    its frontend reports every message type nobody listens to as a console error: a tab still
    loading, or one with our extension switched off, is sent nothing.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        # client id -> the socket that asked: a reloaded tab keeps its client id (the frontend
        # keeps it in window.name) but opens a new socket, which is sent nothing until it asks
        self._listening: dict[str, Any] = {}

    def listen(self, client_id: str) -> bool:
        socket = self._server.sockets.get(client_id)
        if socket is None:
            return False
        self._listening[client_id] = socket
        return True

    def send(self, event: str, payload: dict[str, Any]) -> bool:
        sockets = self._server.sockets
        for sid, socket in list(self._listening.items()):
            if sockets.get(sid) is not socket:  # closed, reloaded or reconnected: it asks again
                del self._listening[sid]
                continue
            self._server.send_sync(f"lm.{event}", payload, sid)  # thread-safe in ComfyUI
        return bool(self._listening)


def register_with_comfyui() -> AppServices:
    """Build the services and register every route on ComfyUI's server (once)."""
    global _registered
    if _registered is not None:
        return _registered
    from server import PromptServer

    instance = PromptServer.instance
    settings_path = default_settings_path()
    settings = SettingsManager(path=settings_path)

    hosts, origins = comfyui_trusted_names()
    config = LibraryConfig(
        roots=comfyui_roots(settings),
        settings_path=settings_path,
        host_socket=ComfyUISocket(instance),
        host_name="comfyui",
        allowed_hosts=hosts,
        allowed_origins=origins,
    )
    services = build_services(config)
    _, controllers = register_routes(instance.routes, services, skip_paths=CORE_ROUTE_CLASHES)
    mount(instance.app, services, controllers)
    # the nodes run on ComfyUI's executor thread and reach the library on the server's loop
    library = NodeLibrary(services=services, loop=instance.loop)
    set_node_library(library)
    instance.add_on_prompt_handler(usage_hook(instance, library))
    _registered = services
    _log.info("model library: routes registered (%d LoRA, %d checkpoint, %d embedding, %d other roots)",
              len(config.roots[ModelType.LORA]), len(config.roots[ModelType.CHECKPOINT]),
              len(config.roots[ModelType.EMBEDDING]), sum(len(config.roots.get(t, [])) for t in EXTRA_TYPES))
    return services
