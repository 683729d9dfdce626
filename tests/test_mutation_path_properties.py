"""Property tests of the path guard through the mutation routes (issue 3).

Hostile paths (``..``, absolute paths elsewhere, symlinks pointing out, NUL bytes, mixed
separators, Windows drive and UNC forms, very long and non-UTF-8 names) sent to every
state-changing route never cause a 500 and never change anything outside the library.
The unit-level properties of ``PathGuard`` are in test_path_guard.py; here a real server
on a loopback port (its own thread and loop) answers plain HTTP from hypothesis examples.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import threading
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lm_plugin.py.app import build_app
from lm_plugin.py.app_keys import SERVICES

from .fixtures import LibraryBuilder, png_bytes, wait_ready
from .mutation_helpers import disk_snapshot

# 502: an allowed image host that does not answer (the live server allows only 127.0.0.1,
# and previews are fetched from a closed port there: the tests never reach the internet)
ALLOWED_STATUSES = {200, 400, 403, 404, 409, 413, 502}
CLOSED_PORT_URL = "http://127.0.0.1:9"


class LiveServer:
    """The real app on 127.0.0.1 in a background thread with its own event loop."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.library = LibraryBuilder(base / "library")
        self.outside = base / "outside"
        self.outside.mkdir()
        (self.outside / "victim.safetensors").write_bytes(b"outside model")
        (self.outside / "victim.metadata.json").write_text('{"notes": "outside"}')
        (self.outside / "sub").mkdir()
        self.library.add_lora("inside", preview="webp", sidecar={"notes": "inside"})
        self.library.add_lora("other", "folder")
        os.symlink(self.outside, self.library.loras / "link_out")  # a folder symlink pointing out
        os.symlink(self.outside / "victim.safetensors", self.library.loras / "file_link.safetensors")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = build_app(self.library.config(state_dir=base / "state"))
        self.runner = web.AppRunner(self.app)
        self._run(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self._run(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._run(wait_ready(self.app))
        self._run(self.app[SERVICES].settings.update({"preview_url_hosts": ["127.0.0.1"]}))

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 200:
                error = json.loads(payload)
                assert error["success"] is False and error["code"] and error["error"]
            return resp.status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("guarded"))
    yield server
    server.close()


def outside_state(server: LiveServer) -> tuple:
    top = sorted(os.listdir(server.base))
    return top, disk_snapshot(server.outside), sorted(os.listdir(server.base.parent))


# --- strategies ------------------------------------------------------------------------------

SEGMENTS = st.one_of(
    st.sampled_from([
        "..", ".", "", "...", "inside.safetensors", "other.safetensors", "victim.safetensors", "link_out",
        "file_link.safetensors", "outside", "library", "loras", "folder", "sub", "C:", "c$", "\x00", "a\x00b",
        "\udcff\udcfe", "bad\udc80name", "é名", "x" * 300, "y" * 5000, "CON", "nul", "a:b", "%2e%2e", "~",
    ]),
    st.text(min_size=1, max_size=10),
)
SEPARATORS = st.sampled_from(["/", "\\", "//", "\\\\", "/./", "\\..\\"])


def prefixes(server: LiveServer) -> st.SearchStrategy[str]:
    loras = str(server.library.loras)
    return st.sampled_from([
        loras, loras + "/link_out", loras + "/folder", str(server.outside), str(server.base), str(server.library.checkpoints),
        loras.replace("/", "\\"), "C:", "C:\\Windows", "c:/models", "\\\\server\\share", "//server/share",
        "\\\\?\\C:\\x", "", "relative", "/", "~", "file://", "/etc", "/tmp",
    ])


def hostile_paths(server: LiveServer) -> st.SearchStrategy[object]:
    built = st.builds(lambda p, sep, segs, bang: p + sep + sep.join(segs) + bang,
                      prefixes(server), SEPARATORS, st.lists(SEGMENTS, max_size=6), st.sampled_from(["", "", "!"]))
    junk = st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=2),
                     st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape")))
    return st.one_of(built, built, built, junk)


ROUTES = ("delete", "bulk-delete", "exclude", "unexclude", "save-metadata", "add-tags", "remove-tags",
          "set-preview-from-url", "rename", "verify-duplicates", "move_model", "move_models_bulk", "replace-preview")


def request_for(route: str, path: object, other: object, inside: str) -> tuple[str, bytes, str]:
    """(url, body, content type) with ``path`` as the model and ``other`` as the second path."""
    if route == "replace-preview":
        boundary = "lmboundary"
        text = path if isinstance(path, str) else json.dumps(path)
        field = text.encode("utf-8", "surrogateescape")
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"model_path\"\r\n\r\n".encode() + field
            + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"preview_file\"; filename=\"p.png\"\r\n"
              f"Content-Type: image/png\r\n\r\n".encode() + png_bytes(size=(8, 8)) + f"\r\n--{boundary}--\r\n".encode()
        )
        return "/api/lm/loras/replace-preview", body, f"multipart/form-data; boundary={boundary}"
    body = {
        "delete": {"file_path": path},
        "bulk-delete": {"file_paths": [path]},
        "exclude": {"file_path": path},
        "unexclude": {"file_path": path},
        "save-metadata": {"file_path": inside, "notes": other, "model_name": other} if isinstance(path, str) and path.endswith("!")
        else {"file_path": path, "notes": "changed"},
        "add-tags": {"file_path": inside, "tags": [other]} if isinstance(path, str) and path.endswith("!")
        else {"file_path": path, "tags": ["t"]},
        "remove-tags": {"file_path": path, "tags": ["t"]},
        "set-preview-from-url": {"model_path": inside, "image_url": f"{CLOSED_PORT_URL}/{other}"}
        if isinstance(other, str) and isinstance(path, str) and path.endswith("!")
        else {"model_path": path, "image_url": f"{CLOSED_PORT_URL}/x.png"},
        "rename": {"file_path": inside, "new_file_name": other} if isinstance(other, str) and other[:1] != "/" else {"file_path": path, "new_file_name": "renamed"},
        "verify-duplicates": {"file_paths": [path]},
        "move_model": {"file_path": inside, "target_path": other},
        "move_models_bulk": {"file_paths": [path, inside], "target_path": other},
    }[route]
    return f"/api/lm/loras/{route}", json.dumps(body).encode(), "application/json"


def test_hostile_paths_never_500_and_never_touch_anything_outside(live):
    before = outside_state(live)
    inside = str(live.library.loras / "inside.safetensors")

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(route=st.sampled_from(ROUTES), path=hostile_paths(live), other=hostile_paths(live))
    def check(route, path, other):
        if not os.path.exists(inside):  # an example renamed, moved or deleted it: bring it back
            live.library.add_lora("inside")
            assert live.post("/api/lm/loras/scan", b"{}") == 200
        url, body, content_type = request_for(route, path, other, inside)
        status = live.post(url, body, content_type)
        assert status in ALLOWED_STATUSES, (route, path, other, status)
        assert outside_state(live) == before, (route, path, other)

    check()


def test_the_escape_forms_are_refused_with_403(live):
    loras = str(live.library.loras)
    for path in (str(live.outside / "victim.safetensors"), loras + "/../../outside/victim.safetensors",
                 loras + "/link_out/victim.safetensors", loras + "/file_link.safetensors",
                 loras + "\\..\\..\\outside\\victim.safetensors", "\\\\server\\share\\victim.safetensors",
                 "C:\\models\\victim.safetensors", "//server/share/victim.safetensors"):
        for route in ("delete", "rename", "save-metadata", "move_model"):
            url, body, content_type = request_for(route, path, str(live.library.loras / "folder"), path)
            assert live.post(url, body, content_type) == 403, (route, path)
    for target in (str(live.outside), loras + "/link_out", loras + "/../../outside"):
        url, body, content_type = request_for("move_model", "", target, str(live.library.loras / "folder" / "other.safetensors"))
        assert live.post(url, body, content_type) == 403, target
    for path in (loras + "/x\x00.safetensors", "/" + "a" * 5000):
        url, body, content_type = request_for("delete", path, "", "")
        assert live.post(url, body, content_type) == 400
