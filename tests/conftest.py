"""Shared pytest set-up: import the plugin folder as a package, isolate settings and env.

The plugin folder may have any name, and ``py`` clashes with pytest's own module, so the
folder is imported under the fixed package name ``lm_plugin`` exactly as ComfyUI would
import it (a package whose ``__init__`` runs, with relative imports inside).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if "lm_plugin" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "lm_plugin", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
    )
    assert _spec and _spec.loader
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["lm_plugin"] = _module
    _spec.loader.exec_module(_module)


_ISOLATED_ENV = ("CIVITAI_API_BASE", "CIVITAI_API_KEY", "LM_SETTINGS_FILE", "LM_CACHE_DIR")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's settings, cache or CivitAI variables."""
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


# --- the product's fixtures ------------------------------------------------------
from .fixtures import LibraryBuilder, make_app_client  # noqa: E402


@pytest.fixture
def library(tmp_path: Path) -> LibraryBuilder:
    """A fresh library tree in tmp: ``library.add_lora("name", folder="style")`` etc."""
    return LibraryBuilder(tmp_path / "library")


@pytest.fixture
async def make_client(aiohttp_client, tmp_path: Path):
    """Factory: ``client = await make_client(library)`` starts the real app on it."""

    async def factory(lib: LibraryBuilder, **kwargs):
        return await make_app_client(aiohttp_client, lib, state_dir=tmp_path / "state", **kwargs)

    return factory


@pytest.fixture
async def client(make_client, library: LibraryBuilder):
    """The real app over an (initially empty) library; add files before first use."""
    return await make_client(library)
