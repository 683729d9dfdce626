"""Crash safety of sidecar writes (issue 3): a process killed (SIGKILL) while it rewrites a
sidecar through ``write_sidecar`` leaves the old or the new file, never a torn one; readers
meanwhile never see a partial file either, and the library still lists the model.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .fixtures import services_of

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = 400_000  # large enough that a write takes a while

WRITER = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lm_plugin", {str(ROOT / "__init__.py")!r},
                                              submodule_search_locations=[{str(ROOT)!r}])
module = importlib.util.module_from_spec(spec)
sys.modules["lm_plugin"] = module
spec.loader.exec_module(module)
from lm_plugin.py.services.shared.sidecar_store import write_sidecar
model = sys.argv[1]
version = 0
while True:
    version += 1
    write_sidecar(model, {{"version": version, "payload": str(version % 10) * {PAYLOAD}, "custom_key": "kept"}})
"""


def read_whole(path: Path) -> dict:
    data = json.loads(path.read_bytes())  # a torn file would not parse
    assert data["custom_key"] == "kept" and data["payload"] == str(data["version"] % 10) * PAYLOAD
    return data


pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")


async def test_sigkilled_sidecar_writer_leaves_old_or_new_file(make_client, library, tmp_path):
    model = library.add_lora("victim", sidecar={"version": 0, "payload": "0" * PAYLOAD, "custom_key": "kept"})
    sidecar = library.loras / "victim.metadata.json"
    seen_versions: set[int] = set()
    for kill_after in (1, 3, 5, 8, 13, 21):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(model)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            start = read_whole(sidecar)["version"]
            while True:  # poll: readers only ever see a whole file while the writer runs
                version = read_whole(sidecar)["version"]
                if version >= start + kill_after:
                    break
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the writer made no progress"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        seen_versions.add(read_whole(sidecar)["version"])
    assert len(seen_versions) > 1
    leftovers = [n for n in os.listdir(library.loras) if n.endswith(".tmp")]
    assert all(n.startswith(".") for n in leftovers)  # hidden: the scanner skips them
    client = await make_client(library)
    body = await (await client.get("/api/lm/loras/list")).json()
    assert [i["metadata_status"] for i in body["items"]] == ["ok"]
    assert services_of(client).library  # the app started over the crashed folder
