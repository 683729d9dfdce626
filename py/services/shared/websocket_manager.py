"""Browser sockets and the latest progress snapshots every transport reads.

Owns the socket sets of ``/ws/fetch-progress``, ``/ws/init-progress`` and
``/ws/download-progress`` and the snapshot caches behind polling endpoints, so a
WebSocket push and a poll always see the same data. It must not know what a job does.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from aiohttp import WSCloseCode, web

_log = logging.getLogger(__name__)

EventForwarder = Callable[[str, dict[str, Any]], None]
SNAPSHOT_TTL_SECONDS = 15 * 60  # finished downloads stay readable for at least 10 minutes


class WebSocketManager:
    """Broadcasts JSON messages and remembers the last one of each kind."""

    def __init__(self, *, forward: EventForwarder | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch_sockets: set[web.WebSocketResponse] = set()
        self._init_sockets: set[web.WebSocketResponse] = set()
        self._download_sockets: dict[web.WebSocketResponse, str | None] = {}
        self._forward = forward
        self._clock = clock
        # the latest init payload of each model type: a page of one type must not miss
        # its own "ready" because another type reported last
        self.init_progress: dict[str, dict[str, Any]] = {}
        self._download_snapshots: dict[str, tuple[float, dict[str, Any]]] = {}
        self._task_snapshots: dict[str, dict[str, Any]] = {}
        self.auto_organize_lock = asyncio.Lock()

    # sockets -------------------------------------------------------------------
    async def handle_fetch_socket(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, self._fetch_sockets, replay=None)

    async def handle_init_socket(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, self._init_sockets, replay=list(self.init_progress.values()))

    async def handle_download_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        download_id = request.query.get("id") or None
        self._download_sockets[ws] = download_id
        if download_id and (snap := self.get_download_progress(download_id)) is not None:
            await self._send(ws, snap)
        try:
            async for _ in ws:
                pass
        finally:
            self._download_sockets.pop(ws, None)
        return ws

    async def _serve(self, request: web.Request, sockets: set, replay: list[dict] | None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        sockets.add(ws)
        for payload in replay or ():
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

    async def _send_all(self, sockets: "set | dict", payload: dict[str, Any]) -> None:
        targets = list(sockets)
        if targets:
            await asyncio.gather(*(self._send(ws, payload) for ws in targets))
        if self._forward is not None:
            try:
                self._forward(str(payload.get("type", "message")), payload)
            except Exception:
                _log.exception("forwarding %s to the host failed", payload.get("type"))

    # messages ------------------------------------------------------------------
    async def broadcast(self, payload: dict[str, Any]) -> None:
        """Send to every ``/ws/fetch-progress`` socket (and the host's own socket)."""
        await self._send_all(self._fetch_sockets, payload)

    async def broadcast_init_progress(self, payload: dict[str, Any]) -> None:
        payload = {"type": "init_progress", **payload}
        self.init_progress[str(payload.get("model_type", ""))] = payload
        await self._send_all(self._init_sockets, payload)

    # task snapshots (fetch-all, auto-organize): kept until cleared ------------------
    def set_task_snapshot(self, key: str, snapshot: dict[str, Any]) -> None:
        self._task_snapshots[key] = dict(snapshot)

    def get_task_snapshot(self, key: str) -> dict[str, Any] | None:
        snap = self._task_snapshots.get(key)
        return dict(snap) if snap is not None else None

    def clear_task_snapshot(self, key: str) -> None:
        self._task_snapshots.pop(key, None)

    # download snapshots: one cache backs the push and the polling endpoint ----------
    async def broadcast_download_progress(self, download_id: str, snapshot: dict[str, Any]) -> None:
        payload = {"type": "download_progress", "download_id": download_id, **snapshot}
        self._download_snapshots[download_id] = (self._clock(), payload)
        self.cleanup_download_snapshots()
        targets = [ws for ws, wanted in self._download_sockets.items() if wanted in (None, download_id)]
        if targets:
            await asyncio.gather(*(self._send(ws, payload) for ws in targets))
        await self.broadcast(payload)

    def get_download_progress(self, download_id: str) -> dict[str, Any] | None:
        item = self._download_snapshots.get(download_id)
        return dict(item[1]) if item else None

    def has_download(self, download_id: str) -> bool:
        return download_id in self._download_snapshots

    def cleanup_download_snapshots(self) -> None:
        now = self._clock()
        terminal = ("completed", "failed", "cancelled")
        for key, (stamp, snap) in list(self._download_snapshots.items()):
            if snap.get("status") in terminal and now - stamp > SNAPSHOT_TTL_SECONDS:
                del self._download_snapshots[key]
