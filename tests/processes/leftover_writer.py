"""A process that starts writing one of our temp files and then stops (the test kills it).

``python leftover_writer.py PLUGIN_DIR MODE ARGS...``; it prints one line once the file is
in the state the test wants, then sleeps until killed:

- ``hold DIRECTORY NAME``: an atomic-write temp file for NAME, created and locked
  (prints its path);
- ``part PATH``: a download's ``.part`` file open for writing (prints PATH);
- ``move SRC DST``: a cross-filesystem move (``os.link`` of SRC fails with EXDEV, as
  between two disks) stopped in the fsync of its fully copied temp file (prints "syncing").
"""
from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_package import load_plugin  # noqa: E402


def announce(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def sleep_forever() -> None:
    while True:
        time.sleep(60)


def hold(directory: str, name: str) -> None:
    from lm_plugin.py.services.shared.atomic_file import temp_file

    with temp_file(directory, name) as temp:
        announce(temp.path)
        sleep_forever()


def part(path: str) -> None:
    from lm_plugin.py.services.downloads.downloader import _PartFile

    part_file = _PartFile(path)
    part_file.open_new()
    part_file.write([b"first bytes of a download"])
    announce(path)
    sleep_forever()


def move(src: str, dst: str) -> None:
    from lm_plugin.py.services.shared.file_transfer import move_no_replace

    real_link, real_fsync = os.link, os.fsync

    def link(source, target, *args, **kwargs):
        if os.fspath(source) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link", source)
        return real_link(source, target, *args, **kwargs)

    def fsync(fd):
        real_fsync(fd)
        announce("syncing")
        sleep_forever()

    os.link, os.fsync = link, fsync
    move_no_replace(src, dst)


def main() -> None:
    load_plugin(Path(sys.argv[1]))
    mode, args = sys.argv[2], sys.argv[3:]
    {"hold": hold, "part": part, "move": move}[mode](*args)


if __name__ == "__main__":
    main()
