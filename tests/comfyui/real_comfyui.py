"""A real ComfyUI for tests: the work tree from COMFYUI_DIR run with COMFYUI_PYTHON on a tmp
base directory that holds our plugin (symlinked) and a generated models folder, plus a
Chromium page on its frontend.

Owns processes and the page only; the product runs exactly as shipped. Tests skip unless
both variables are set (``.ci/run`` sets them). COMFYUI_EXTRA_ARGS adds arguments, e.g.
``--front-end-root DIR`` for a newer frontend.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import CHROMIUM_ARGS, REPO, chromium_path, free_port, get_json, wait_until

COMFYUI_DIR = os.environ.get("COMFYUI_DIR", "")
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON", "")
COMFYUI_EXTRA_ARGS = shlex.split(os.environ.get("COMFYUI_EXTRA_ARGS", ""))
PLUGIN_FOLDER = "comfyui-model-library"

# window.app is assigned once every extension's setup() ran (1.27.x and 1.5x)
APP_READY = "() => !!(window.app && window.app.graph && window.app.extensionManager && document.querySelector('.side-bar-button'))"

# known noise of a bare ComfyUI 0.3.64 / frontend 1.27 (shared/comfyui/README.md section 5); newer
# frontends also ask 0.3.64 for routes it lacks (/api/jobs, /api/global_subgraphs)
NOISE_URLS = ("/user.css", "/api/userdata/user.css", "/api/userdata?dir=workflows", "/api/userdata?dir=subgraphs",
              "/api/userdata/comfy.templates.json", "api.comfy.org/", "/api/jobs", "/api/global_subgraphs")
NOISE_TEXT = ("Failed to load resource", "net::ERR_NAME_NOT_RESOLVED", "Cannot read properties of undefined (reading 'id')",
              "JobsApiError")


def available() -> bool:
    return bool(COMFYUI_DIR and COMFYUI_PYTHON and Path(COMFYUI_DIR, "main.py").exists() and Path(COMFYUI_PYTHON).exists())


def skip_unless_available() -> None:
    if not available():
        pytest.skip("set COMFYUI_DIR and COMFYUI_PYTHON to run against a real ComfyUI", allow_module_level=True)


def is_noise(text: str) -> bool:
    return any(marker in text for marker in NOISE_TEXT)


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("LM_SCREENSHOT_DIR") or REPO / "tests" / "browser" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ComfyUIProcess:
    """``main.py --cpu`` on ``base`` (custom_nodes/ with our plugin, models/), on a free port."""

    def __init__(self, base: Path, state: Path, *, extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
        link = base / "custom_nodes" / PLUGIN_FOLDER
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        state.mkdir(parents=True, exist_ok=True)
        self.log_path = state / "comfyui.log"
        process_env = {**os.environ, "XDG_CONFIG_HOME": str(state / "config"), "XDG_CACHE_HOME": str(state / "cache"),
                       "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [COMFYUI_PYTHON, "main.py", "--base-directory", str(base), "--cpu", "--listen", "127.0.0.1",
             "--port", str(self.port), "--database-url", "sqlite:///:memory:", *COMFYUI_EXTRA_ARGS, *(extra_args or [])],
            cwd=COMFYUI_DIR, stdout=self._log, stderr=subprocess.STDOUT, env=process_env)

    def wait_for(self, check, *, timeout: float = 180, what: str = "ComfyUI with the model library") -> None:
        def up() -> Any:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}; see {self.log_path}")
            return check()
        wait_until(up, timeout=timeout, what=what, interval=0.5)

    def post_json(self, path: str, body: Any, *, timeout: float = 30) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method="POST", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def get_json(self, path: str, *, timeout: float = 10) -> Any:
        return get_json(f"{self.url}{path}", timeout=timeout)

    def skip_tutorial(self) -> None:
        self.post_json("/api/settings", {"Comfy.TutorialCompleted": True})

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


def open_comfyui_page(url: str, *, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A Chromium page on ComfyUI's frontend, ready (every extension set up); ``page.problems``
    collects console errors, page errors and HTTP errors that are not known noise."""
    executable = chromium_path()
    if not executable:
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        pg = browser.new_page(viewport={"width": width, "height": height})
        pg.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" and not is_noise(m.text) else None)
        pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}") if not is_noise(str(e)) else None)
        pg.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 and not any(n in r.url for n in NOISE_URLS) else None)
        pg.goto(f"{url}/")
        pg.wait_for_function(APP_READY, timeout=90000)
        pg.keyboard.press("Escape")
        pg.problems = problems
        yield pg
        browser.close()
