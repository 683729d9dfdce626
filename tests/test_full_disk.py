"""A full disk (issue 9): every edit answers 507 naming the folder, and nothing is half-done.

The real thing is a small tmpfs library root filled to the last byte (needs root to mount;
skipped elsewhere); a twin that fakes ENOSPC in the atomic writer runs everywhere.
"""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from aiohttp import FormData
from lm_plugin.py.services.shared import atomic_file

from .fixtures import LibraryBuilder, png_bytes
from .mutation_helpers import disk_snapshot

FILLER = "filler.bin"


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 4 MiB tmpfs mounted under tmp_path (unmounted afterwards)."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_up(folder: Path) -> None:
    """Write until the filesystem says ENOSPC: not one byte is left."""
    with open(folder / FILLER, "wb", buffering=0) as fh:
        block = b"\0" * 65536
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        for size in (4096, 512, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                continue


def files_except_filler(base: Path) -> dict:
    return {k: v for k, v in disk_snapshot(base).items() if not k.endswith(FILLER)}


def hidden_leftovers(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob(".*"))


async def assert_disk_full(resp, folder: Path) -> None:
    body = await resp.json()
    assert resp.status == 507, body
    assert body["success"] is False and body["code"] == "disk_full"
    assert "is full" in body["error"] and str(folder).replace(os.sep, "/") in body["error"].replace(os.sep, "/")


def full_library(base: Path) -> LibraryBuilder:
    lib = LibraryBuilder(base / "library")
    lib.add_lora("alpha", sidecar={"tags": ["style"], "notes": "mine"}, preview="webp")
    lib.add_lora("beta", sidecar={"model_name": "Beta"}, preview="png")
    lib.add_lora("gamma")
    return lib


async def test_every_edit_on_a_full_tmpfs_root_is_a_507_and_changes_nothing(tmpfs, make_client):
    library = full_library(tmpfs)
    client = await make_client(library)
    fill_up(tmpfs)
    before = files_except_filler(tmpfs)
    alpha = str(library.loras / "alpha.safetensors")
    gamma = str(library.loras / "gamma.safetensors")

    await assert_disk_full(await client.post("/api/lm/loras/save-metadata", json={"file_path": alpha, "notes": "new"}),
                           library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/add-tags", json={"file_path": alpha, "tags": ["more"]}),
                           library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/save-metadata", json={"file_path": gamma, "favorite": True}),
                           library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/exclude", json={"file_path": alpha}), library.loras)
    form = FormData()
    form.add_field("model_path", alpha)
    form.add_field("preview_file", png_bytes(size=(96, 96)), filename="p.png", content_type="image/png")
    await assert_disk_full(await client.post("/api/lm/loras/replace-preview", data=form), library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/delete", json={"file_path": alpha}), library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/bulk-delete", json={"file_paths": [alpha, gamma]}),
                           library.loras)

    assert files_except_filler(tmpfs) == before  # every sidecar and preview byte-identical
    assert hidden_leftovers(tmpfs) == []  # no temp file, no empty trash batch
    listed = (await (await client.get("/api/lm/loras/list")).json())["items"]
    assert sorted(i["file_name"] for i in listed) == ["alpha", "beta", "gamma"]

    (tmpfs / FILLER).unlink()  # room again: the same edit now works
    resp = await client.post("/api/lm/loras/save-metadata", json={"file_path": alpha, "notes": "new"})
    assert resp.status == 200, await resp.text()


async def test_a_faked_enospc_gives_the_same_507_and_no_trash_batch(make_client, library, monkeypatch):
    library.add_lora("alpha", sidecar={"notes": "mine"}, preview="webp")
    client = await make_client(library)
    before = disk_snapshot(library.base)

    def no_space(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "write", no_space)
    alpha = str(library.loras / "alpha.safetensors")
    await assert_disk_full(await client.post("/api/lm/loras/save-metadata", json={"file_path": alpha, "notes": "x"}),
                           library.loras)
    await assert_disk_full(await client.post("/api/lm/loras/delete", json={"file_path": alpha}), library.loras)
    assert disk_snapshot(library.base) == before
    assert hidden_leftovers(library.base) == []
