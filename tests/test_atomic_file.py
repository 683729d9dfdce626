"""Atomic writes: content, modes, cleanup on failure, and survival of a SIGKILL mid-write."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lm_plugin.py.services.shared import atomic_file
from lm_plugin.py.services.shared.atomic_file import is_atomic_temp_name, write_bytes_atomic, write_json_atomic

from .processes.atomic_payload import make_payload

PLUGIN_DIR = Path(__file__).resolve().parents[1]
WRITER = Path(__file__).resolve().parent / "processes" / "atomic_writer.py"


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


def test_write_bytes_atomic_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "model.metadata.json"
    target.write_bytes(b"old")

    write_bytes_atomic(target, b"new content")

    assert target.read_bytes() == b"new content"
    assert temp_files(tmp_path) == []


def test_write_bytes_atomic_accepts_str_path_and_empty_data(tmp_path: Path) -> None:
    target = tmp_path / "empty.bin"

    write_bytes_atomic(str(target), b"")

    assert target.read_bytes() == b""


def test_write_json_atomic_writes_utf8_without_escapes(tmp_path: Path) -> None:
    target = tmp_path / "a.metadata.json"

    write_json_atomic(target, {"model_name": "Café ✓", "tags": ["日本"]})

    text = target.read_text(encoding="utf-8")
    assert "Café ✓" in text and "日本" in text
    assert json.loads(text) == {"model_name": "Café ✓", "tags": ["日本"]}
    assert text.startswith('{\n  "model_name"')


def test_write_json_atomic_indent_none_is_compact(tmp_path: Path) -> None:
    target = tmp_path / "a.json"

    write_json_atomic(target, {"a": [1, 2]}, indent=None)

    assert target.read_bytes() == b'{"a": [1, 2]}'


def test_write_json_atomic_rejects_unserialisable_before_touching_disk(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("{}")

    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})

    assert target.read_text() == "{}"
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_rewrite_keeps_the_mode_of_the_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "private.json"
    target.write_text("{}")
    target.chmod(0o640)

    write_json_atomic(target, {"x": 1})

    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_new_file_gets_the_umask_default_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "new.json", b"{}")
    finally:
        os.umask(umask)

    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644


def test_failed_replace_removes_the_temp_file_and_keeps_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(atomic_file.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_bytes_atomic(target, b"new")

    assert target.read_text() == "old"
    assert temp_files(tmp_path) == []


def test_failed_write_removes_the_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.json"

    def disk_full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_bytes_atomic(target, b"new")

    assert list(tmp_path.iterdir()) == []


def test_missing_folder_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "missing" / "a.json", b"{}")


def test_directory_fsync_failure_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync_refusing_directories(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 1:  # the first fsync is the temp file, the second the folder
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(atomic_file.os, "fsync", fsync_refusing_directories)
    write_bytes_atomic(tmp_path / "a.json", b"{}")

    assert (tmp_path / "a.json").read_bytes() == b"{}"
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (".a.metadata.json.0123456789ab.tmp", True),
        (".x.abcdef012345.tmp", True),
        ("a.metadata.json.0123456789ab.tmp", False),
        (".a.metadata.json.tmp", False),
        (".a.metadata.json.0123456789AB.tmp", False),
        (".hidden.json", False),
    ],
)
def test_is_atomic_temp_name(name: str, expected: bool) -> None:
    assert is_atomic_temp_name(name) is expected


def test_temp_name_matches_what_the_writer_creates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_file.os, "replace", spy)
    write_bytes_atomic(tmp_path / "a.json", b"{}")

    assert len(seen) == 1 and is_atomic_temp_name(seen[0]) and seen[0].startswith(".a.json.")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_target_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """A writer killed at any moment leaves the old or the new content, never a torn file."""
    target = tmp_path / "big.metadata.json"
    write_bytes_atomic(target, make_payload(0))
    size = target.stat().st_size
    version = 1
    last_seen = 0
    killed_mid_write = 0
    # Kill points: right as a write starts, one write later, and when the temp file is
    # partly written (polled, so the kill lands inside the write itself).
    plan = ["start", "next", 0.1, 0.5, 0.9, "start", 0.3, 0.7, "next", 0.95]
    for kill_at in plan:
        proc = subprocess.Popen(
            [sys.executable, "-I", str(WRITER), str(PLUGIN_DIR), str(target), str(version)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = int(proc.stdout.readline())
            if kill_at == "next":
                proc.stdout.readline()
            elif isinstance(kill_at, float):
                _poll_for_partial_temp(tmp_path, int(size * kill_at), deadline=time.monotonic() + 3)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()

        data = target.read_bytes()
        current = json.loads(data)["version"]
        assert data == make_payload(current), "target is not exactly one complete version"
        assert last_seen <= current <= first + 2
        last_seen = current
        leftovers = temp_files(tmp_path)
        killed_mid_write += bool(leftovers)  # killed between creating the temp file and renaming it
        for leftover in leftovers:
            assert is_atomic_temp_name(leftover.name)
            leftover.unlink()
        version = first + 3
    assert killed_mid_write >= 1, "no kill landed inside a write"


def _poll_for_partial_temp(folder: Path, threshold: int, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                try:
                    if entry.stat().st_size >= threshold:
                        return
                except FileNotFoundError:  # renamed over the target meanwhile
                    pass
    raise AssertionError("the writer never produced a temp file")


def test_json_is_written_exactly_as_the_standard_library_writes_it():
    """Sidecars are encoded by orjson when it is there (issue 13: ten times faster), byte
    for byte as ``json.dumps(indent=2, ensure_ascii=False)``; what orjson would change
    (NaN, integers past 64 bits, non-string keys) is encoded by ``json``."""
    documents = [
        {"model_name": "Ñoño 雪 ✨", "tags": ["a", "b"], "civitai": {"images": [], "meta": {}, "id": 12},
         "notes": "line\nbreak \"quoted\" \\ \t\u0001", "weight": 0.75, "ok": True, "none": None},
        {"nan": float("nan")},
        {"big": 2**70},
        {1: "int key"},
        [],
    ]
    for doc in documents:
        assert atomic_file.encode_json(doc) == json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
