"""The hidden trash, its undo and the hand-off to the OS trash; the no-replace group move.

Real files in tmp; the OS trash is a process edge, replaced here by a recording folder
(send2trash reads ``XDG_DATA_HOME`` at import, so the real one cannot be pointed at tmp).
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from lm_plugin.py.services.edits.model_trash import MANIFEST, TRASH_DIR, ModelTrash
from lm_plugin.py.services.shared import file_transfer
from lm_plugin.py.services.shared.file_transfer import TargetExists, move_group, move_no_replace


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingOsTrash:
    """Moves files into a folder, as an OS trash would."""

    def __init__(self, folder: Path, *, fail: bool = False) -> None:
        self.folder = folder
        self.fail = fail
        self.sent: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, path: str) -> None:
        if self.fail:
            raise OSError(errno.EACCES, "no trash on this volume", path)
        self.sent.append(os.path.basename(path))
        os.replace(path, self.folder / f"{len(self.sent)}-{os.path.basename(path)}")


def make_model(root: Path, rel: str, *, companions: tuple[str, ...] = (".metadata.json", ".webp")) -> list[str]:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"model " + rel.encode())
    files = [str(path)]
    for suffix in companions:
        companion = path.with_name(path.stem + suffix)
        companion.write_bytes(b"companion " + suffix.encode())
        files.append(str(companion))
    return files


def put(trash: ModelTrash, root: Path, batch_id: str, files: list[str]) -> None:
    trash.put(batch_id=batch_id, root=str(root), model_type="lora", model_path=files[0], files=files)


def test_put_moves_the_group_under_the_batch_and_records_it(tmp_path):
    root = tmp_path / "loras"
    files = make_model(root, "style/a.safetensors")
    trash = ModelTrash(clock=Clock())
    batch = trash.new_batch_id()
    put(trash, root, batch, files)
    assert not any(os.path.exists(f) for f in files)
    batch_dir = root / TRASH_DIR / batch
    assert sorted(os.listdir(batch_dir / "files" / "style")) == [
        "a.metadata.json.deleted", "a.safetensors.deleted", "a.webp.deleted"]
    manifest = json.loads((batch_dir / MANIFEST).read_text())
    assert manifest["batch_id"] == batch and manifest["models"][0]["model_path"] == files[0]


def test_restore_puts_files_back_and_removes_the_batch(tmp_path):
    root = tmp_path / "loras"
    files = make_model(root, "a.safetensors") + make_model(root, "deep/er/b.safetensors")
    trash = ModelTrash(clock=Clock())
    batch = trash.new_batch_id()
    put(trash, root, batch, files[:3])
    put(trash, root, batch, files[3:])
    os.rmdir(root / "deep" / "er")  # the folder went away meanwhile: restore recreates it
    outcomes = trash.restore(batch, [str(root)])
    assert [o.restored for o in outcomes] == [True, True]
    assert all(os.path.exists(f) for f in files)
    assert not (root / TRASH_DIR).exists()


def test_restore_reports_a_conflict_and_keeps_that_model_undoable(tmp_path):
    root = tmp_path / "loras"
    files = make_model(root, "a.safetensors")
    trash = ModelTrash(clock=Clock())
    batch = trash.new_batch_id()
    put(trash, root, batch, files)
    Path(files[1]).write_text("{}")  # a new sidecar appeared at the old name
    outcome = trash.restore(batch, [str(root)])[0]
    assert not outcome.restored and outcome.conflict == files[1]
    assert Path(files[1]).read_text() == "{}" and not os.path.exists(files[0])
    assert len(trash.batch_models(batch, [str(root)])) == 1


def test_a_failed_put_leaves_every_file_in_place(tmp_path, monkeypatch):
    root = tmp_path / "loras"
    files = make_model(root, "a.safetensors")
    real = file_transfer.move_no_replace
    calls = []

    def flaky(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 3:
            raise OSError(errno.EIO, "disk error", src)
        real(src, dst)

    monkeypatch.setattr(file_transfer, "move_no_replace", flaky)
    trash = ModelTrash(clock=Clock())
    batch = trash.new_batch_id()
    with pytest.raises(OSError):
        put(trash, root, batch, files)
    assert all(os.path.exists(f) for f in files)
    assert trash.batch_models(batch, [str(root)]) == []


def test_batches_past_the_window_go_to_the_os_trash(tmp_path):
    root = tmp_path / "loras"
    clock = Clock()
    os_trash = RecordingOsTrash(tmp_path / "os-trash")
    trash = ModelTrash(os_trash=os_trash, keep_batches=2, keep_seconds=3600, clock=clock)
    batches = []
    for i in range(4):
        batch = trash.new_batch_id()
        put(trash, root, batch, make_model(root, f"m{i}.safetensors", companions=()))
        batches.append(batch)
        clock.now += 1
    expired = trash.expire([str(root)])
    assert sorted(expired) == sorted(batches[:2])  # only the newest two stay undoable
    assert sorted(os_trash.sent) == ["m0.safetensors", "m1.safetensors"]
    clock.now += 3600
    assert sorted(trash.expire([str(root)])) == sorted(batches[2:])
    assert not (root / TRASH_DIR).exists()


def test_without_an_os_trash_batches_stay_in_the_hidden_trash(tmp_path):
    root = tmp_path / "loras"
    clock = Clock()
    trash = ModelTrash(os_trash=None, keep_batches=0, keep_seconds=0, clock=clock)
    batch = trash.new_batch_id()
    put(trash, root, batch, make_model(root, "a.safetensors"))
    assert trash.expire([str(root)]) == []
    assert trash.restore(batch, [str(root)])[0].restored


def test_a_refusing_os_trash_keeps_the_batch_and_is_not_retried(tmp_path):
    root = tmp_path / "loras"
    os_trash = RecordingOsTrash(tmp_path / "os-trash", fail=True)
    trash = ModelTrash(os_trash=os_trash, keep_batches=0, keep_seconds=0, clock=Clock())
    batch = trash.new_batch_id()
    put(trash, root, batch, make_model(root, "a.safetensors"))
    assert trash.expire([str(root)]) == []
    manifest = json.loads((root / TRASH_DIR / batch / MANIFEST).read_text())
    assert manifest["handoff_failed"] is True
    os_trash.fail = False
    assert trash.expire([str(root)]) == [] and os_trash.sent == []
    assert trash.restore(batch, [str(root)])[0].restored


def test_restore_ignores_manifest_paths_outside_the_root(tmp_path):
    root = tmp_path / "loras"
    files = make_model(root, "a.safetensors", companions=())
    trash = ModelTrash(clock=Clock())
    batch = trash.new_batch_id()
    put(trash, root, batch, files)
    manifest_path = root / TRASH_DIR / batch / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["models"][0]["files"][0]["original"] = str(tmp_path / "escaped.safetensors")
    manifest_path.write_text(json.dumps(manifest))
    assert not trash.restore(batch, [str(root)])[0].restored
    assert not (tmp_path / "escaped.safetensors").exists()


# --- the no-replace group move ---------------------------------------------------------

def test_move_no_replace_refuses_an_existing_target(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with pytest.raises(TargetExists):
        move_no_replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "a").read_text() == "a" and (tmp_path / "b").read_text() == "b"


def test_move_across_filesystems_copies_verifies_and_deletes(tmp_path, monkeypatch):
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    content = os.urandom(300_000)
    src.write_bytes(content)
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    real_link = os.link
    links = []

    def cross_device_once(a, b):
        links.append(b)
        if len(links) == 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(a, b)

    monkeypatch.setattr(file_transfer.os, "link", cross_device_once)
    move_no_replace(str(src), str(dst))
    assert not src.exists() and dst.read_bytes() == content
    assert dst.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


def test_a_failed_cross_filesystem_copy_keeps_the_source(tmp_path, monkeypatch):
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(b"x" * 1000)

    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(file_transfer.os, "link", cross_device)
    monkeypatch.setattr(file_transfer, "_digest", lambda path: "corrupted copy")
    with pytest.raises(OSError):
        move_no_replace(str(src), str(dst))
    assert src.read_bytes() == b"x" * 1000 and not dst.exists()
    assert os.listdir(tmp_path) == ["src.bin"]


def test_move_group_rolls_back_when_a_member_fails(tmp_path, monkeypatch):
    names = ["m.safetensors", "m.metadata.json", "m.webp"]
    for name in names:
        (tmp_path / name).write_text(name)
    (tmp_path / "out").mkdir()
    real = file_transfer.move_no_replace
    calls = []

    def flaky(src: str, dst: str) -> None:
        calls.append(src)
        if len(calls) == 3:
            raise OSError(errno.EIO, "disk error", src)
        real(src, dst)

    monkeypatch.setattr(file_transfer, "move_no_replace", flaky)
    pairs = [(str(tmp_path / n), str(tmp_path / "out" / n)) for n in names]
    with pytest.raises(OSError):
        move_group(pairs)
    assert sorted(os.listdir(tmp_path)) == sorted(names + ["out"]) and os.listdir(tmp_path / "out") == []
