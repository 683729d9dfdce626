"""How a test subprocess imports the plugin: as the package ``lm_plugin``, as ComfyUI would."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_plugin(plugin_dir: Path) -> None:
    """Import the plugin folder as ``lm_plugin`` (relative imports inside it then work)."""
    spec = importlib.util.spec_from_file_location(
        "lm_plugin", plugin_dir / "__init__.py", submodule_search_locations=[str(plugin_dir)]
    )
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules["lm_plugin"] = package
    spec.loader.exec_module(package)
