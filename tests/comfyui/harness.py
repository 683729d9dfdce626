"""Test plumbing for the ComfyUI sidebar: the standalone library server on a generated
library, a fake ComfyUI host page serving web/comfyui unchanged, and Chromium.

Owns processes and loopback servers only; the product code runs exactly as shipped.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from aiohttp import ClientSession, web

REPO = Path(__file__).resolve().parents[2]
FAKE_HOST = Path(__file__).resolve().parent / "fake_host"
EXTENSION_DIR = REPO / "web" / "comfyui"
LOCALES = REPO / "locales"

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `check` until it returns a truthy value (exceptions count as "not yet")."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the server is still starting
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


def get_json(url: str, *, method: str = "GET", timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


class StandaloneServer:
    """`python standalone.py` on a library folder, in a subprocess, with its own settings and cache."""

    def __init__(self, library_base: Path, state: Path, *, watch: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        state.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "XDG_CONFIG_HOME": str(state / "config"), "XDG_CACHE_HOME": str(state / "cache-home")}
        args = [
            sys.executable, str(REPO / "standalone.py"), "--port", str(self.port),
            "--settings", str(state / "settings.json"), "--cache-dir", str(state / "cache"),
            "--loras", str(library_base / "loras"), "--checkpoints", str(library_base / "checkpoints"),
            "--diffusion-models", str(library_base / "diffusion_models"),
            "--embeddings", str(library_base / "embeddings"), "--log-level", "WARNING",
            *([] if watch else ["--no-watch"]),
        ]
        self.log_path = state / "standalone.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=str(REPO), env=env)

    def wait_ready(self, expected: dict[str, int], timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"standalone server exited with {self.process.returncode}")
            return all(get_json(f"{self.url}/api/lm/{prefix}/list?page_size=1")["total"] >= count
                       for prefix, count in expected.items())
        try:
            wait_until(ready, timeout=timeout, what="standalone server")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def custom_node_translations() -> dict[str, dict[str, Any]]:
    """What ComfyUI's GET /i18n answers for our locales/ folder (custom_node_manager layout)."""
    out: dict[str, dict[str, Any]] = {}
    for lang_dir in sorted(p for p in LOCALES.iterdir() if p.is_dir()):
        data: dict[str, Any] = {}
        main = lang_dir / "main.json"
        if main.exists():
            data.update(json.loads(main.read_text(encoding="utf-8")))
        for name in ("commands", "settings", "nodeDefs"):
            path = lang_dir / f"{name}.json"
            if path.exists():
                data[name] = json.loads(path.read_text(encoding="utf-8"))
        out[lang_dir.name] = data
    return out


SESSION = web.AppKey("session", ClientSession)
BASE_PATH = "/comfy"


def build_fake_host(upstream: str, plugin_name: str) -> web.Application:
    """The fake ComfyUI page, its shims, our extension dir, and a proxy to the library server."""
    app = web.Application()

    async def start_session(app: web.Application) -> Any:
        app[SESSION] = ClientSession()
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(start_session)

    async def index(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(FAKE_HOST / "index.html")

    async def shim_app(_request: web.Request) -> web.Response:
        return web.Response(text="export const app = window.comfyAPI.app.app;\n", content_type="text/javascript")

    async def shim_api(_request: web.Request) -> web.Response:
        return web.Response(text="export const api = window.comfyAPI.api.api;\n", content_type="text/javascript")

    async def extensions(_request: web.Request) -> web.Response:
        # like ComfyUI: every *.js under the web directory, recursively
        files = sorted(p.relative_to(EXTENSION_DIR).as_posix() for p in EXTENSION_DIR.rglob("*.js"))
        return web.json_response([f"/extensions/{plugin_name}/{f}" for f in files])

    async def i18n(_request: web.Request) -> web.Response:
        return web.json_response(custom_node_translations())

    async def proxy(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        body = await request.read()
        # "/comfy/..." plays ComfyUI served under a base path by a reverse proxy
        path = str(request.rel_url).removeprefix(BASE_PATH)
        async with request.app[SESSION].request(request.method, f"{upstream}{path}",
                                                  headers=headers, data=body or None,
                                                  allow_redirects=False) as upstream_response:
            payload = await upstream_response.read()
            out = {"Content-Type": upstream_response.headers.get("Content-Type", "application/octet-stream")}
            return web.Response(status=upstream_response.status, body=payload, headers=out)

    app.router.add_get("/", index)
    app.router.add_static("/fake/", FAKE_HOST)
    app.router.add_get("/scripts/app.js", shim_app)
    app.router.add_get("/scripts/api.js", shim_api)
    app.router.add_get("/api/extensions", extensions)
    app.router.add_get("/api/i18n", i18n)
    app.router.add_static(f"/extensions/{plugin_name}/", EXTENSION_DIR)
    app.router.add_route("*", "/api/{tail:.*}", proxy)
    app.router.add_route("*", "/lm/{tail:.*}", proxy)
    app.router.add_route("*", BASE_PATH + "/api/{tail:.*}", proxy)
    return app


class ThreadedServer:
    """Runs an aiohttp application on 127.0.0.1 in a background thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="fake-comfyui-host", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup())
        self.loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> str:
        self._thread.start()
        self._started.wait(30)
        if self._error:
            raise self._error
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)


class HostPage:
    """One fake ComfyUI page with our extension loaded; records console errors."""

    def __init__(self, page, url: str) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        # the console line of a failed load names no URL: keep the URL instead
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(url)
        page.wait_for_function("() => window.fakeReady || window.fakeError", timeout=20000)
        error = page.evaluate("() => window.fakeError || null")
        assert error is None, error

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def open_tab(self) -> None:
        self.js("() => window.fake.openTab('lm-model-library')")
        self.page.locator(".lm-comfy-sidebar .lm-card[data-path]").first.wait_for(timeout=15000)

    def card(self, name: str):
        return self.page.locator(".lm-comfy-sidebar .lm-card[data-path]", has=self.page.locator(".lm-card-name", has_text=name))

    def click_add(self, name: str) -> None:
        card = self.card(name)
        card.hover()
        card.locator('[data-action="add"]').click()

    def switch_type(self, label: str) -> None:
        self.page.locator(".lm-cs-types [role=tab]", has_text=label).click()

    def nodes(self) -> list[dict]:
        return self.js("() => window.fake.snapshot()")

    def wait_nodes(self, count: int) -> list[dict]:
        self.page.wait_for_function(f"() => window.fake.graph.nodes.length >= {count}", timeout=10000)
        return self.nodes()


# --- the real-ComfyUI panel tests (issue 12): warnings with their stacks, a sub-path proxy ---

# our code as the browser names it: the entry under /extensions/<plugin folder>/ and web/app
# under /lm/static/ (either behind ComfyUI's /api or a proxy's prefix)
OUR_SCRIPTS = ("/lm/static/", "/extensions/comfyui-model-library/")

# an init script: every console.warn/console.error and every LiteGraph deprecation notice
# (LiteGraph.onDeprecationWarning, repeated rather than once per session so one from the
# core cannot hide ours) is kept with the stack that raised it
WARNING_PROBE = """(() => {
  const seen = [];
  Object.defineProperty(window, '__lmWarnings', { value: seen });
  for (const level of ['warn', 'error']) {
    const original = console[level];
    console[level] = function (...args) {
      try { seen.push({ level, text: args.map((a) => String(a)).join(' ').slice(0, 400), stack: String(new Error().stack) }); } catch (e) { /* keep logging */ }
      return original.apply(this, args);
    };
  }
  const hook = () => {
    const lg = window.LiteGraph;
    if (!lg || !Array.isArray(lg.onDeprecationWarning)) { setTimeout(hook, 50); return; }
    lg.alwaysRepeatWarnings = true;
    lg.onDeprecationWarning.push((message) => seen.push({ level: 'deprecation', text: String(message), stack: String(new Error().stack) }));
  };
  hook();
})();"""


def warnings_from_us(page) -> list[dict]:
    """The warnings and errors of WARNING_PROBE whose stack passes through our scripts."""
    entries = page.evaluate("() => window.__lmWarnings || []")
    return [e for e in entries if any(marker in e["stack"] for marker in OUR_SCRIPTS)]


def deprecations(page) -> list[str]:
    """Every deprecation notice LiteGraph raised (whoever caused it)."""
    return [e["text"] for e in page.evaluate("() => window.__lmWarnings || []") if e["level"] == "deprecation"]


PROXY_UPSTREAM = web.AppKey("upstream", str)


def build_subpath_proxy(upstream: str, prefix: str) -> web.Application:
    """A reverse proxy serving `upstream` under `prefix` (e.g. '/comfy'), HTTP and WebSockets,
    as nginx's `location /comfy/ { proxy_pass http://upstream/; }` does: the prefix is cut off
    before the request goes on, Host names the upstream, the rest of the headers and redirects
    pass unchanged, and anything outside the prefix is a 404 (a page escaping its sub-path
    shows up as one)."""
    app = web.Application()
    app[PROXY_UPSTREAM] = upstream

    async def start_session(app: web.Application) -> Any:
        app[SESSION] = ClientSession(auto_decompress=False)
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(start_session)
    hop = {"host", "connection", "upgrade", "keep-alive", "transfer-encoding", "content-length",
           "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "origin"}

    async def socket(request: web.Request, path: str) -> web.StreamResponse:
        browser_side = web.WebSocketResponse()
        await browser_side.prepare(request)
        url = f"{upstream.replace('http', 'ws', 1)}{path}"
        async with request.app[SESSION].ws_connect(url, headers={"Origin": upstream}) as server_side:
            async def pump(source, sink) -> None:
                async for message in source:
                    if message.type == web.WSMsgType.TEXT:
                        await sink.send_str(message.data)
                    elif message.type == web.WSMsgType.BINARY:
                        await sink.send_bytes(message.data)
                    else:
                        break
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(pump(browser_side, server_side)), asyncio.ensure_future(pump(server_side, browser_side))],
                return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        await browser_side.close()
        return browser_side

    async def forward(request: web.Request) -> web.StreamResponse:
        tail = str(request.rel_url)
        if not tail.startswith(prefix + "/") and tail != prefix:
            return web.Response(status=404, text=f"outside {prefix}: {tail}")
        path = tail[len(prefix):] or "/"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await socket(request, path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        headers["Host"] = upstream.split("://", 1)[1]
        body = await request.read()
        async with request.app[SESSION].request(request.method, f"{upstream}{path}", headers=headers,
                                                  data=body or None, allow_redirects=False) as answer:
            payload = await answer.read()
            # Location passes as it is: an absolute path would leave the prefix, as behind nginx
            out = {k: v for k, v in answer.headers.items() if k.lower() not in hop}
            return web.Response(status=answer.status, body=payload, headers=out)

    app.router.add_route("*", "/{tail:.*}", forward)
    return app


# --- the full pages (issue 12): every link followed, every request answered, wherever served ---

# the shell ran (lm-ready), the grid shows cards or its empty message, both sockets are open
PAGE_READY = """() => document.body.classList.contains('lm-ready') && document.body.dataset.socket === 'open'
  && !!document.querySelector('.lm-card[data-path], .lm-grid-status:not([hidden])')"""

# every preview the grid asked for has arrived (loaded or failed; the test tells which)
PREVIEWS_SETTLED = """() => [...document.querySelectorAll('.lm-card[data-path] img[src]')].every((i) => i.complete)"""


class PageWatch:
    """What a Playwright page did: HTTP answers ≥ 400, console errors, page errors, and the
    WebSockets it opened with the number of frames each received. `ignore` names URL parts and
    `ignore_text` message parts that are known noise of the host (ComfyUI's own 404s and errors)."""

    def __init__(self, page, *, ignore: tuple[str, ...] = (), ignore_text: tuple[str, ...] = ()) -> None:
        self.page = page
        quiet = ("Failed to load resource", *ignore_text)
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.sockets: dict[str, int] = {}
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 and not any(n in r.url for n in ignore) else None)
        page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                if m.type == "error" and not any(n in m.text for n in quiet) else None)
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}") if not any(n in str(e) for n in quiet) else None)
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        self.sockets.setdefault(ws.url, 0)

        def count(_payload) -> None:
            self.sockets[ws.url] = self.sockets.get(ws.url, 0) + 1
        ws.on("framereceived", count)


def open_library_page(page, url: str) -> dict[str, Any]:
    """Load one full page the way a user opens it and check it is the library, not JSON or a
    404: 200, HTML, the shell ready with its sockets open, every preview loaded. Returns what
    the page shows: its type, title, stylesheet applied, and every link it offers."""
    response = page.goto(url)
    assert response is not None, url
    content_type = response.headers.get("content-type", "")
    assert response.status == 200 and content_type.startswith("text/html"), (url, response.status, content_type)
    page.wait_for_function(PAGE_READY, timeout=30000)
    page.wait_for_function(PREVIEWS_SETTLED, timeout=15000)
    return page.evaluate("""() => ({
        url: location.href, prefix: document.body.dataset.prefix, title: document.title,
        styled: getComputedStyle(document.querySelector('.lm-header')).display === 'flex',
        current: document.querySelector('.lm-type[aria-current=page]')?.dataset.type || null,
        broken: [...document.querySelectorAll('img[src]')].filter((i) => i.complete && !i.naturalWidth).map((i) => i.src),
        previews: [...document.querySelectorAll('.lm-card[data-path] img[src]')].filter((i) => i.naturalWidth).length,
        links: [...document.querySelectorAll('a[href]')].map((a) => ({href: a.href, text: a.textContent.trim(), blank: a.target === '_blank'})),
    })""")


def crawl_library_pages(page, start: str) -> dict[str, dict[str, Any]]:
    """Open `start` and then every same-origin link any reached page offers (breadth first,
    fragments dropped), each checked by `open_library_page`. Returns {url: what it showed}."""
    origin = start.split("/", 3)[:3]
    seen: dict[str, dict[str, Any]] = {}
    queue = [start]
    while queue:
        url = queue.pop(0).split("#", 1)[0]
        if url in seen:
            continue
        shown = open_library_page(page, url)
        seen[url] = shown
        for link in shown["links"]:
            target = link["href"].split("#", 1)[0]
            if target.split("/", 3)[:3] == origin and not link["blank"] and target not in seen:
                queue.append(target)
    return seen
