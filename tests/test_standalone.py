"""The standalone entry point, run as a user runs it: a real process on a real port."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .conftest import ROOT
from .fixtures import services_of, wait_hashed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def test_demo_library_is_served_by_the_standalone_server(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "standalone.py"), "--demo", "--demo-dir", str(tmp_path / "demo"),
         "--port", str(port), "--settings", str(tmp_path / "settings.json"), "--cache-dir", str(tmp_path / "cache"),
         "--no-watch"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = get_json(f"{base}/api/lm/health-check")
                if all(health["ready"].values()):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        loras = get_json(f"{base}/api/lm/loras/list?page_size=100")
        assert loras["total"] == 48
        assert any(item["preview_url"] for item in loras["items"])
        checkpoints = get_json(f"{base}/api/lm/checkpoints/list")
        assert {i["sub_type"] for i in checkpoints["items"]} == {"checkpoint", "diffusion_model"}
        with urllib.request.urlopen(f"{base}/", timeout=2) as resp:  # follows the redirect
            assert resp.url.endswith("/loras") and b'data-prefix="loras"' in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_help_lists_the_documented_options():
    out = subprocess.run([sys.executable, str(ROOT / "standalone.py"), "--help"], capture_output=True, text=True, timeout=30)
    for option in ("--host", "--port", "--settings", "--loras", "--checkpoints", "--diffusion-models",
                   "--embeddings", "--demo"):
        assert option in out.stdout


async def test_hash_only_sidecars_are_written_when_the_setting_asks(make_client, library):
    library.add_lora("no_sidecar")
    client = await make_client(library)
    resp = await client.post("/api/lm/settings", json={"write_hash_sidecars": True})
    assert resp.status == 200
    await client.post("/api/lm/loras/scan")  # nothing new: the file was hashed before the setting
    library.add_lora("later")
    await client.post("/api/lm/loras/scan")
    await wait_hashed(client)
    sidecar = json.loads((library.loras / "later.metadata.json").read_text())
    assert len(sidecar["sha256"]) == 64 and sidecar["file_name"] == "later"
    assert services_of(client).settings.get("write_hash_sidecars") is True


async def test_a_first_scan_writes_nothing_into_the_library(make_client, library):
    library.add_lora("untouched", "deep/folder")
    before = sorted(p.name for p in library.base.rglob("*"))
    client = await make_client(library)
    await wait_hashed(client)
    assert sorted(p.name for p in library.base.rglob("*")) == before


def test_pillow_and_jinja2_load_only_when_a_page_or_image_needs_them(tmp_path):
    """Issue 13: a server used through the sidebar, the API or nodes does not pay for the
    full pages' template engine or the image encoder (about 7 MiB of RSS between them)."""
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(ROOT)!r})
import standalone
host = standalone._load_package()
import importlib
app_mod = importlib.import_module("comfyui_model_library.py.app")
from aiohttp.test_utils import TestClient, TestServer
args = host.parse_args(["--loras", {str(tmp_path)!r}, "--cache-dir", {str(tmp_path / "cache")!r},
                        "--settings", {str(tmp_path / "settings.json")!r}, "--no-watch"])
async def main():
    async with TestClient(TestServer(app_mod.build_app(host.config_from_args(args)))) as client:
        await (await client.get("/api/lm/loras/list")).read()
        print("before", "jinja2" in sys.modules, "PIL" in sys.modules)
        html = await (await client.get("/loras")).text()
        print("after", "jinja2" in sys.modules, "<html" in html)
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["before False False", "after True True"]
