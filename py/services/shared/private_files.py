"""Files only their owner may read (the caches name every model file the user has).

Owns creating such a file (and its folder) before a library like SQLite opens it: SQLite gives
its -wal and -shm files the database file's mode, so that mode must be right from the start.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["create_private_file"]


def create_private_file(path: Path) -> None:
    """Create ``path`` 0600 in a 0700 folder if missing; tighten one an older version left open.
    Blocking: call from a worker thread."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.close(fd)
    if os.name != "nt":
        os.chmod(path, 0o600)
