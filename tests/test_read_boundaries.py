"""Issue 9, item 7: files whose real path is outside every library root are never read,
listed or served; hard-linked companions (sidecar, .civitai.info, preview) neither, since
their other name may be anywhere. Symlinked roots and links that stay inside are fine."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from lm_plugin.py.services.library.model_records import MetadataStatus, ModelType
from lm_plugin.py.services.library.model_scanner import LibraryRoot, ModelScanner, ScanStats
from lm_plugin.py.services.shared.path_guard import PathGuard

from .fixtures import LibraryBuilder, png_bytes

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX symlinks and hard links")

SECRET = {"model_name": "Leaked Name", "notes": "secret notes", "tags": ["leak"], "custom": "outside"}
CIVITAI_SECRET = {"id": 1, "modelId": 2, "baseModel": "Leaked Base", "model": {"name": "Leaked Name"},
                  "files": [{"hashes": {"SHA256": "C" * 64}}]}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the library, in no root: what a link must not reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.json").write_text(json.dumps(SECRET), encoding="utf-8")
    (folder / "secret.civitai.info").write_text(json.dumps(CIVITAI_SECRET), encoding="utf-8")
    (folder / "private.png").write_bytes(png_bytes())
    (folder / "elsewhere.safetensors").write_bytes(b"not in the library")
    return folder


async def listed(client, prefix: str = "loras") -> dict[str, dict]:
    resp = await client.get(f"/api/lm/{prefix}/list", params={"page_size": "100"})
    assert resp.status == 200, await resp.text()
    return {item["file_name"]: item for item in (await resp.json())["items"]}


async def metadata_of(client, path: Path) -> dict:
    resp = await client.get("/api/lm/loras/metadata", params={"file_path": str(path)})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["metadata"]


def link(kind: str, target: Path, name: Path) -> None:
    if kind == "symlink":
        name.symlink_to(target)
    else:
        os.link(target, name)


# -- sidecars and .civitai.info --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
async def test_a_sidecar_linked_from_outside_is_not_listed_or_served(make_client, library, outside, kind):
    model = library.add_lora("victim")
    link(kind, outside / "secret.json", model.with_suffix(".metadata.json"))
    client = await make_client(library)

    item = (await listed(client))["victim"]
    metadata = await metadata_of(client, model)

    assert item["model_name"] == "victim" and item["notes"] == "" and item["tags"] == []
    assert item["metadata_status"] == MetadataStatus.MISSING.value
    assert "secret" not in json.dumps(metadata) and "outside" not in json.dumps(metadata)


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
async def test_a_civitai_info_linked_from_outside_is_not_read(make_client, library, outside, kind):
    model = library.add_lora("legacy")
    link(kind, outside / "secret.civitai.info", model.with_suffix(".civitai.info"))
    client = await make_client(library)

    item = (await listed(client))["legacy"]
    metadata = await metadata_of(client, model)

    assert item["model_name"] == "legacy" and item["base_model"] != "Leaked Base"
    assert item["from_civitai"] is False and metadata == {}


async def test_a_sidecar_symlinked_to_another_file_inside_the_library_is_read(make_client, library):
    library.add_lora("original", sidecar={"notes": "shared notes"})
    model = library.add_lora("twin", "sub")
    model.with_suffix(".metadata.json").symlink_to(library.loras / "original.metadata.json")
    client = await make_client(library)

    assert (await listed(client))["twin"]["notes"] == "shared notes"
    assert (await metadata_of(client, model))["notes"] == "shared notes"


async def test_a_hard_linked_sidecar_is_refused_with_one_warning_per_file_not_per_scan(
    make_client, library, outside, caplog
):
    model = library.add_lora("victim")
    os.link(outside / "secret.json", model.with_suffix(".metadata.json"))
    caplog.set_level(logging.WARNING)
    client = await make_client(library)

    for _ in range(3):
        assert (await client.post("/api/lm/loras/scan", json={})).status == 200
        await metadata_of(client, model)

    warnings = [r for r in caplog.records if "victim.metadata.json" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "hard link" in warnings[0].getMessage()


# -- previews --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
async def test_a_preview_linked_from_outside_is_not_listed_or_served(make_client, library, outside, kind):
    model = library.add_lora("pic")
    preview = model.with_suffix(".png")
    link(kind, outside / "private.png", preview)
    client = await make_client(library)

    item = (await listed(client))["pic"]
    served = await client.get("/api/lm/previews", params={"path": str(preview)})

    assert item["preview_url"] == ""
    assert served.status == 403
    body = await served.json()
    assert body["success"] is False and body["code"]


async def test_a_refused_preview_gives_way_to_the_next_one(make_client, library, outside):
    model = library.add_lora("pic")
    os.link(outside / "private.png", model.with_suffix(".webp"))  # first in preview order
    model.with_suffix(".jpg").write_bytes(png_bytes(fmt="JPEG"))
    client = await make_client(library)

    item = (await listed(client))["pic"]

    assert "pic.jpg" in item["preview_url"]
    assert (await client.get(item["preview_url"])).status == 200


# -- symlinked roots and models --------------------------------------------------------------

async def test_a_symlinked_root_still_lists_reads_and_serves(make_client, tmp_path):
    real = LibraryBuilder(tmp_path / "real_library")
    real.add_lora("rooted", "sub", sidecar={"notes": "fine"}, preview="webp")
    linked = LibraryBuilder(tmp_path / "library")
    linked.loras.rmdir()
    linked.loras.symlink_to(real.loras, target_is_directory=True)
    client = await make_client(linked)

    item = (await listed(client))["rooted"]
    metadata = await metadata_of(client, linked.loras / "sub" / "rooted.safetensors")

    assert item["notes"] == "fine" and metadata["notes"] == "fine"
    assert item["file_path"] == f"{linked.loras}/sub/rooted.safetensors"
    assert (await client.get(item["preview_url"])).status == 200


async def test_models_linked_from_outside_are_not_listed_but_hard_linked_models_are(
    make_client, library, outside
):
    library.add_lora("kept")
    (library.loras / "escaped.safetensors").symlink_to(outside / "elsewhere.safetensors")
    (library.loras / "linked_out").symlink_to(outside, target_is_directory=True)
    inside_link = library.loras / "alias.safetensors"
    inside_link.symlink_to(library.loras / "kept.safetensors")
    os.link(library.loras / "kept.safetensors", library.loras / "deduped.safetensors")
    client = await make_client(library)

    assert set(await listed(client)) == {"kept", "alias", "deduped"}


# -- the scanner on its own --------------------------------------------------------------------

def scan(scanner: ModelScanner, root: str, previous=None) -> dict:
    roots = [LibraryRoot(path=root, model_type=ModelType.LORA)]
    return {e.file_name: e for batch in scanner.iter_batches(roots, previous or {}, None, ScanStats()) for e in batch}


def guarded_scanner(library: LibraryBuilder) -> ModelScanner:
    guard = PathGuard({ModelType.LORA: [str(library.loras)], ModelType.CHECKPOINT: [str(library.checkpoints)]})
    return ModelScanner(contains_real=guard.contains_real)


def test_scanner_does_not_list_a_model_symlinked_from_outside(library, outside):
    library.add_lora("kept")
    (library.loras / "escaped.safetensors").symlink_to(outside / "elsewhere.safetensors")

    assert set(scan(guarded_scanner(library), str(library.loras))) == {"kept"}


def test_scanner_does_not_walk_a_subfolder_symlinked_to_outside(library, outside, tmp_path):
    library.add_lora("kept")
    elsewhere = tmp_path / "outside_models"
    LibraryBuilder(elsewhere).add_lora("foreign")
    (library.loras / "linked_out").symlink_to(elsewhere / "loras", target_is_directory=True)

    assert set(scan(guarded_scanner(library), str(library.loras))) == {"kept"}


def test_scanner_follows_a_subfolder_symlinked_into_another_root(library):
    library.add_checkpoint("ck")
    library.add_lora("kept")
    (library.loras / "from_checkpoints").symlink_to(library.checkpoints, target_is_directory=True)

    entries = scan(guarded_scanner(library), str(library.loras))

    assert set(entries) == {"kept", "ck"} and entries["ck"].folder == "from_checkpoints"


def test_a_cached_entry_is_rebuilt_once_its_sidecar_becomes_a_hard_link(library, outside):
    model = library.add_lora("victim", sidecar={"notes": "mine"})
    scanner = guarded_scanner(library)
    first = scan(scanner, str(library.loras))
    sidecar = model.with_suffix(".metadata.json")
    mtime_ns = sidecar.stat().st_mtime_ns
    sidecar.unlink()
    os.link(outside / "secret.json", sidecar)
    os.utime(sidecar, ns=(mtime_ns, mtime_ns))  # same stamp as the cached sidecar

    second = scan(scanner, str(library.loras), previous={e.file_path: e for e in first.values()})

    assert first["victim"].notes == "mine"
    assert second["victim"] is not first["victim"] and second["victim"].notes == ""
    third = scan(scanner, str(library.loras), previous={e.file_path: e for e in second.values()})
    assert third["victim"] is second["victim"]  # refused once, then reused: no rebuild per scan


def test_a_refused_preview_does_not_rebuild_the_entry_on_every_scan(library, outside):
    model = library.add_lora("pic")
    os.link(outside / "private.png", model.with_suffix(".webp"))
    scanner = guarded_scanner(library)
    first = scan(scanner, str(library.loras))

    second = scan(scanner, str(library.loras), previous={e.file_path: e for e in first.values()})

    assert first["pic"].preview_path == ""
    assert second["pic"] is first["pic"]


def test_path_guard_contains_real_compares_resolved_components(tmp_path):
    real = tmp_path / "real_loras"
    real.mkdir()
    link_root = tmp_path / "link_root"
    link_root.symlink_to(real, target_is_directory=True)
    guard = PathGuard({ModelType.LORA: [str(link_root)]})

    assert guard.contains_real(str(real / "a.safetensors"))
    assert guard.contains_real(str(real))
    assert not guard.contains_real(str(tmp_path / "real_loras_other" / "a.safetensors"))
    assert not guard.contains_real(str(link_root / "a.safetensors"))  # not a real path
    assert not guard.contains_real("relative/a.safetensors")
    assert not guard.contains_real("")
    assert not guard.contains_real(str(real) + "/\x00x")
