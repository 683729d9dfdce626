"""A second process holding model locks: ``python lock_holder.py PLUGIN_DIR MODEL_PATH...``.

Takes the cross-process locks of the given models through ``ModelLocks.hold`` (as a server
would), prints ``held``, keeps them until a line arrives on stdin (or stdin closes), then
prints ``released`` and exits.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_package import load_plugin  # noqa: E402


def load_model_locks(plugin_dir: Path):
    load_plugin(plugin_dir)
    from lm_plugin.py.services.shared import model_locks

    return model_locks


async def hold(model_locks, paths: list[str]) -> None:
    locks = model_locks.ModelLocks()
    async with locks.hold(*paths):
        sys.stdout.write("held\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.readline)
    sys.stdout.write("released\n")
    sys.stdout.flush()


def main() -> None:
    model_locks = load_model_locks(Path(sys.argv[1]))
    asyncio.run(hold(model_locks, sys.argv[2:]))


if __name__ == "__main__":
    main()
