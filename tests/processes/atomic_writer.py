"""A process that rewrites one file atomically forever, printing each version before it
writes it: ``python atomic_writer.py PLUGIN_DIR TARGET FIRST_VERSION``. The test kills it."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atomic_payload import make_payload  # noqa: E402
from plugin_package import load_plugin  # noqa: E402


def main() -> None:
    load_plugin(Path(sys.argv[1]))
    from lm_plugin.py.services.shared import atomic_file

    target, version = sys.argv[2], int(sys.argv[3])
    while True:
        data = make_payload(version)
        sys.stdout.write(f"{version}\n")
        sys.stdout.flush()
        atomic_file.write_bytes_atomic(target, data)
        version += 1


if __name__ == "__main__":
    main()
