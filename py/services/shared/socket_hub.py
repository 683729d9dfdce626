"""Browser sockets: who listens, and sending each message to them and to the host's socket.

Owns the socket sets of ``/ws/fetch-progress``, ``/ws/init-progress`` and
``/ws/download-progress`` and the last init payload of each model type (replayed to new
sockets, so a page never misses its own "ready"). It is a transport only: it must not keep
job progress (the job registries do) nor decide who may connect (the route guard does).
The host's own socket (ComfyUI's) is reached through a ``HostSocket`` the host gives it.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

_log = logging.getLogger(__name__)


class HostSocket(Protocol):
    """The host's own socket (ComfyUI's): its editor tabs get our messages as ``lm.<type>``.

    Only the tabs that asked (``listen``) get them: a tab whose extension is off, or still
    loading, would report every message type it has no listener for as an error.
    """

    def send(self, event: str, payload: dict[str, Any]) -> bool:
        """Send to every listening tab; False when none listens."""
        ...

    def listen(self, client_id: str) -> bool:
        """The tab with this socket id wants our messages; False when no socket has that id."""
        ...


class SocketHub:
    """Broadcasts JSON messages to the sockets that want them (and to the host)."""

    def __init__(self, *, host: HostSocket | None = None) -> None:
        self._fetch_sockets: set[web.WebSocketResponse] = set()
        self._init_sockets: set[web.WebSocketResponse] = set()
        self._download_sockets: dict[web.WebSocketResponse, str | None] = {}
        self._host = host
        self._init_payloads: dict[str, dict[str, Any]] = {}

    # sockets -------------------------------------------------------------------
    async def serve_fetch_socket(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, self._fetch_sockets, replay=())

    async def serve_init_socket(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, self._init_sockets, replay=list(self._init_payloads.values()))

    async def serve_download_socket(
        self, request: web.Request, download_id: str | None, replay: Iterable[dict[str, Any]] = ()
    ) -> web.WebSocketResponse:
        """A socket for one download (``download_id``) or for all of them (None)."""
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        self._download_sockets[ws] = download_id
        for payload in replay:
            await self._send(ws, payload)
        try:
            async for _ in ws:
                pass
        finally:
            self._download_sockets.pop(ws, None)
        return ws

    async def _serve(self, request: web.Request, sockets: set, replay: Iterable[dict[str, Any]]) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        sockets.add(ws)
        for payload in replay:
            await self._send(ws, payload)
        try:
            async for _ in ws:  # clients only listen; drain pings and close frames
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def close_all(self) -> None:
        sockets = list(self._fetch_sockets) + list(self._init_sockets) + list(self._download_sockets)
        for ws in sockets:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    @staticmethod
    async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        if ws.closed:
            return
        try:
            await ws.send_json(payload)
        except (ConnectionError, RuntimeError):
            pass

    async def _send_all(self, sockets: Iterable[web.WebSocketResponse], payload: dict[str, Any]) -> None:
        targets = list(sockets)
        if targets:
            await asyncio.gather(*(self._send(ws, payload) for ws in targets))
        if self._host is not None:
            try:
                self._host.send(str(payload.get("type", "message")), payload)
            except Exception:
                _log.exception("forwarding %s to the host failed", payload.get("type"))

    # messages ------------------------------------------------------------------
    async def broadcast(self, payload: dict[str, Any]) -> None:
        """Send to every ``/ws/fetch-progress`` socket (and the host's own socket)."""
        await self._send_all(self._fetch_sockets, payload)

    async def broadcast_init_progress(self, payload: dict[str, Any]) -> None:
        payload = {"type": "init_progress", **payload}
        self._init_payloads[str(payload.get("model_type", ""))] = payload
        await self._send_all(self._init_sockets, payload)

    async def broadcast_download(self, download_id: str, payload: dict[str, Any]) -> None:
        """To the download sockets watching ``download_id`` (or every download), then to all."""
        targets = [ws for ws, wanted in self._download_sockets.items() if wanted in (None, download_id)]
        if targets:
            await asyncio.gather(*(self._send(ws, payload) for ws in targets))
        await self.broadcast(payload)

    @property
    def has_host_socket(self) -> bool:
        """Whether the host has a socket of its own (ComfyUI has, the standalone server not)."""
        return self._host is not None

    def send_to_host(self, payload: dict[str, Any]) -> bool:
        """Send to the host's own socket only (ComfyUI's: its listening editor tabs); False
        when the host has none (the standalone server) or no tab listens."""
        if self._host is None:
            return False
        return self._host.send(str(payload.get("type", "message")), payload)

    def listen_on_host(self, client_id: str) -> bool:
        """The host's tab ``client_id`` asks for our messages; False when the host has no
        socket of that id (or none at all)."""
        return self._host is not None and self._host.listen(client_id)

    @property
    def init_progress(self) -> dict[str, dict[str, Any]]:
        """The last init payload of each model type (what a new init socket is sent first)."""
        return dict(self._init_payloads)
