#!/usr/bin/env python3
"""Run the model library without ComfyUI: ``python3 standalone.py --demo``.

On a fresh machine the first run creates ``.venv`` beside this file and installs
``requirements.txt`` into it, then re-runs itself there; later runs start at once.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIRED = ("aiohttp", "jinja2", "safetensors", "watchdog", "PIL", "platformdirs", "send2trash")


def _missing() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _bootstrap() -> None:
    """Create the local venv with our requirements and re-exec inside it."""
    python = _venv_python()
    if Path(sys.prefix).resolve() == VENV.resolve():
        sys.exit(f"dependencies missing even inside {VENV}: {', '.join(_missing())}")
    if not python.exists():
        sys.stderr.write(f"first run: creating {VENV} and installing requirements...\n")
        venv.create(VENV, with_pip=True)
    subprocess.check_call([str(python), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")])
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def _load_package():
    """Import this folder as a package (its name may be anything) and return the host."""
    name = "comfyui_model_library"
    spec = importlib.util.spec_from_file_location(name, HERE / "__init__.py", submodule_search_locations=[str(HERE)])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.py.host.standalone")


if __name__ == "__main__":
    if _missing():
        _bootstrap()
    _load_package().main(sys.argv[1:])
