"""A process that rewrites one file atomically forever, printing each version before it
writes it: ``python atomic_writer.py PLUGIN_DIR TARGET FIRST_VERSION``. The test kills it."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomic_payload import make_payload  # noqa: E402


def load_atomic_file(plugin_dir: Path):
    """The plugin's ``atomic_file`` module, imported inside the plugin package as ComfyUI would."""
    spec = importlib.util.spec_from_file_location(
        "lm_plugin", plugin_dir / "__init__.py", submodule_search_locations=[str(plugin_dir)]
    )
    assert spec and spec.loader
    package = importlib.util.module_from_spec(spec)
    sys.modules["lm_plugin"] = package
    spec.loader.exec_module(package)
    from lm_plugin.py.services import atomic_file

    return atomic_file


def main() -> None:
    atomic_file = load_atomic_file(Path(sys.argv[1]))
    target, version = sys.argv[2], int(sys.argv[3])
    while True:
        data = make_payload(version)
        sys.stdout.write(f"{version}\n")
        sys.stdout.flush()
        atomic_file.write_bytes_atomic(target, data)
        version += 1


if __name__ == "__main__":
    main()
