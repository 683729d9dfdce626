"""Issue 9, item 9: our own half-written files (atomic-write temps, cross-filesystem move
temps, abandoned downloads) are removed by the next scan of their folder; files a live
writer holds, fresh ones and ``.part`` downloads that can resume are kept."""
from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lm_plugin.py.services.downloads.downloader import _PartFile
from lm_plugin.py.services.shared.atomic_file import is_atomic_temp_name, temp_file

PLUGIN_DIR = Path(__file__).resolve().parents[1]
WRITER = Path(__file__).resolve().parent / "processes" / "leftover_writer.py"
LONG_AGO = time.time() - 3600

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL and POSIX locks")


def age(*paths: Path) -> None:
    """Make files look last written an hour ago: past the scan's age guard, without waiting."""
    for path in paths:
        os.utime(path, (LONG_AGO, LONG_AGO))


def hidden_temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_atomic_temp_name(p.name))


async def scan(client, prefix: str = "loras") -> dict:
    resp = await client.post(f"/api/lm/{prefix}/scan", json={})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def scan_until_gone(client, path: Path, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while os.path.lexists(path):
        assert time.monotonic() < deadline, f"{path.name} is still there"
        await scan(client)


class Writer:
    """``tests/processes/leftover_writer.py`` in a child process, killed on exit."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(WRITER), str(PLUGIN_DIR), *args], stdout=subprocess.PIPE, text=True
        )

    def line(self, timeout: float = 20.0) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise AssertionError("the writer process said nothing")
        text = self.proc.stdout.readline().strip()
        assert text, f"the writer process ended (exit code {self.proc.poll()})"
        return text

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# -- atomic-write temps ----------------------------------------------------------------------

async def test_a_stale_atomic_temp_is_removed_by_the_next_scan(make_client, library, caplog):
    library.add_lora("model", "sub")
    client = await make_client(library)
    temp = library.loras / "sub" / ".model.metadata.json.0123456789ab.tmp"
    temp.write_bytes(b'{"half": ')
    age(temp)
    caplog.set_level(logging.INFO)

    await scan(client)

    assert not temp.exists()
    assert (library.loras / "sub" / "model.safetensors").exists()
    lines = [r for r in caplog.records if temp.name in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO


async def test_a_fresh_unlocked_temp_is_kept_by_the_age_guard(make_client, library):
    client = await make_client(library)
    temp = library.loras / ".model.metadata.json.0123456789ab.tmp"
    temp.write_bytes(b"just created by a writer on another host, not locked yet")

    await scan(client)

    assert temp.exists()


async def test_a_temp_held_by_this_process_is_kept(make_client, library):
    client = await make_client(library)
    with temp_file(str(library.loras), "model.metadata.json") as temp:
        age(Path(temp.path))

        await scan(client)

        assert os.path.exists(temp.path)


async def test_a_temp_held_by_a_live_process_is_kept_until_it_dies(make_client, library):
    client = await make_client(library)
    with Writer("hold", str(library.loras), "model.metadata.json") as writer:
        temp = Path(writer.line())
        age(temp)

        await scan(client)
        assert temp.exists()

        writer.kill()
        await scan_until_gone(client, temp)


def test_a_hidden_file_that_is_not_our_temp_is_left_alone(library, tmp_path):
    from lm_plugin.py.services.library.model_records import ModelType
    from lm_plugin.py.services.library.model_scanner import LibraryRoot, ModelScanner, ScanStats

    foreign = [library.loras / ".DS_Store", library.loras / ".model.metadata.json.tmp",
               library.loras / ".x.0123456789AB.tmp", library.loras / "model.tmp"]
    for path in foreign:
        path.write_bytes(b"not ours")
    age(*foreign)
    scanner = ModelScanner()

    for _ in scanner.iter_batches([LibraryRoot(path=str(library.loras), model_type=ModelType.LORA)], {}, None,
                                  ScanStats(), sweep=True):
        pass

    assert all(path.exists() for path in foreign)


# -- cross-filesystem moves ------------------------------------------------------------------

async def test_a_sigkilled_cross_filesystem_move_leaves_no_temp_after_restart(make_client, library):
    source = library.add_lora("big", values=1_000_000)  # 4 MB
    target_dir = library.loras / "moved"
    target_dir.mkdir()
    target = target_dir / "big.safetensors"
    with Writer("move", str(source), str(target)) as writer:
        assert writer.line() == "syncing"
        writer.kill()
    [temp] = hidden_temps(target_dir)  # the finding: a full-size copy stays behind
    assert temp.stat().st_size == source.stat().st_size
    age(temp)  # the restart comes later than the age guard

    client = await make_client(library)
    await scan_until_gone(client, temp)

    assert source.exists() and not target.exists()
    assert os.listdir(target_dir) == []
    listed = await (await client.get("/api/lm/loras/list")).json()
    assert [item["file_path"] for item in listed["items"]] == [str(source)]


def test_a_cross_filesystem_move_locks_its_temp_while_copying(library, monkeypatch):
    from lm_plugin.py.services.shared import file_transfer
    from lm_plugin.py.services.shared.atomic_file import temp_in_use

    source = library.add_lora("big")
    target = library.loras / "moved.safetensors"
    real_link, seen = os.link, []

    def cross_device(src, dst, *args, **kwargs):
        if os.fspath(src) == str(source):
            raise OSError(18, "Invalid cross-device link", src)
        seen.append((os.fspath(src), temp_in_use(os.fspath(src))))
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(file_transfer.os, "link", cross_device)

    file_transfer.move_no_replace(str(source), str(target))

    assert target.exists() and not source.exists()
    assert len(seen) == 1 and is_atomic_temp_name(os.path.basename(seen[0][0])) and seen[0][1] is True
    assert hidden_temps(library.loras) == []


# -- downloads -------------------------------------------------------------------------------

async def test_a_resumable_part_with_its_state_is_kept(make_client, library):
    client = await make_client(library)
    part = library.loras / "download.safetensors.part"
    state = library.loras / "download.safetensors.part.json"
    part.write_bytes(b"the first half")
    state.write_text('{"version_id": 1, "sha256": "", "file_params": {}}')
    age(part, state)

    await scan(client)

    assert part.exists() and state.exists()


@pytest.mark.parametrize("state_text", [None, "{not json"])
async def test_an_abandoned_part_is_removed(make_client, library, state_text, caplog):
    client = await make_client(library)
    part = library.loras / "download.safetensors.part"
    state = library.loras / "download.safetensors.part.json"
    part.write_bytes(b"the first half")
    if state_text is not None:
        state.write_text(state_text)
        age(state)
    age(part)
    caplog.set_level(logging.INFO)

    await scan(client)

    assert not part.exists() and not state.exists()
    assert len([r for r in caplog.records if r.getMessage().endswith(str(part))]) == 1


async def test_an_orphan_part_state_is_removed(make_client, library):
    client = await make_client(library)
    state = library.loras / "download.safetensors.part.json"
    state.write_text('{"version_id": 1}')
    age(state)

    await scan(client)

    assert not state.exists()


async def test_a_part_being_written_here_is_kept_until_closed(make_client, library):
    client = await make_client(library)
    path = library.loras / "download.safetensors.part"
    part = _PartFile(str(path))
    part.open_new()
    try:
        part.write([b"bytes"])
        age(path)

        await scan(client)

        assert path.exists()
    finally:
        part.close()
    age(path)  # closing flushed the last bytes
    await scan(client)
    assert not path.exists()


async def test_a_part_being_written_by_a_live_process_is_kept(make_client, library):
    client = await make_client(library)
    path = library.loras / "download.safetensors.part"
    with Writer("part", str(path)) as writer:
        assert writer.line() == str(path)
        age(path)

        await scan(client)
        assert path.exists()

        writer.kill()
        await scan_until_gone(client, path)


async def test_a_fresh_abandoned_part_is_kept_by_the_age_guard(make_client, library):
    client = await make_client(library)
    part = library.loras / "download.safetensors.part"
    part.write_bytes(b"just created")

    await scan(client)

    assert part.exists()
