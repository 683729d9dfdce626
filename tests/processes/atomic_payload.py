"""Version v's exact bytes (about 6 MB), shared by the atomic-write test and its writer process."""
from __future__ import annotations

import json


def make_payload(version: int) -> bytes:
    rows = [f"{version:08d}-{i:06d}-" + "abcdefghij" * 8 for i in range(60000)]
    return json.dumps({"version": version, "rows": rows}).encode("utf-8")
