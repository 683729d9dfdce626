"""The ComfyUI editor's tabs and the library: a tab asks for the library's events on ComfyUI's
socket once its extension listens; the full library page asks the editor to add a model to its
workflow. The request becomes an ``lm.graph_add`` event on ComfyUI's own socket;
the editor's extension adds the LoRA to a selected LoRA Loader/Stacker (Model Library) node, or
creates the core loader node, exactly as the sidebar's Add does.
"""
from __future__ import annotations

from aiohttp import web

from ...errors import ConflictError, ModelNotFound, NotFoundError, ValidationError
from ...services.library.model_library import ModelLibrary
from ...services.shared.path_guard import PathGuard
from ...services.shared.socket_hub import SocketHub
from ..request_params import parse_str, read_json_object
from .model_handlers import ok

EVENT = "graph_add"
MAX_CLIENT_ID = 128  # ComfyUI's are 32 hex digits; a client may bring its own


class GraphHandlers:
    """``POST /api/lm/events/listen {client_id}``, ``POST /api/lm/graph/add {file_path}``."""

    def __init__(self, *, library: ModelLibrary, guard: PathGuard, hub: SocketHub) -> None:
        self._library = library
        self._guard = guard
        self._hub = hub

    async def listen_to_events(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        client_id = parse_str(body.get("client_id"), "client_id", max_len=MAX_CLIENT_ID)
        if not client_id:
            raise ValidationError("'client_id' is required")
        if not self._hub.has_host_socket:
            raise ConflictError("events on the host's socket need the library served by ComfyUI")
        if not self._hub.listen_on_host(client_id):
            raise NotFoundError(f"no ComfyUI socket has the client id '{client_id}'")
        return ok(listening=True)

    async def add_to_graph(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        guarded = self._guard.check(parse_str(body.get("file_path"), "file_path"), must_exist=True)
        models = self._library.for_path(guarded.path)
        if models is None:
            raise ModelNotFound(f"no model at '{guarded.path}'")
        item = models.format_response(models.require(guarded.path))
        if not self._hub.send_to_host({"type": EVENT, "item": item}):
            raise ConflictError("adding to a workflow needs the ComfyUI editor open (the library served by ComfyUI)")
        return ok(sent=True)
