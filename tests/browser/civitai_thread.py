"""The suite's local CivitAI test server (tests/civitai_server.py) run on its own event loop
in a background thread, so sync Playwright tests and a subprocess server can both reach it."""
from __future__ import annotations

import asyncio
import threading
from typing import Iterator

from aiohttp import web

from ..civitai_server import CivitaiTestServer


class CivitaiThread:
    """Start with `start()`; `server` is the CivitaiTestServer (add fixture data before use)."""

    def __init__(self, **options) -> None:
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="civitai-test-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self.server: CivitaiTestServer | None = None

    def start(self) -> CivitaiTestServer:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> CivitaiTestServer:
        self.server = CivitaiTestServer(**self._options)
        self._runner = web.AppRunner(self.server.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.server.bind(f"http://{host}:{port}")
        return self.server

    def call(self, fn, *args, **kwargs):
        """Run `fn` on the server's loop (fixture changes while requests may be in flight)."""
        async def run():
            return fn(*args, **kwargs)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def running_civitai(**options) -> Iterator[CivitaiTestServer]:
    thread = CivitaiThread(**options)
    server = thread.start()
    try:
        yield server
    finally:
        thread.stop()
