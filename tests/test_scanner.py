"""Scanning real files: sidecars, headers, previews, flags for broken data, odd folders."""
from __future__ import annotations

import json
import os

import pytest
from lm_plugin.py.services.library.model_records import HashStatus, MetadataStatus, ModelType
from lm_plugin.py.services.library.model_scanner import LibraryRoot, ModelScanner, ScanStats

from .fixtures import SD15_KOHYA, LibraryBuilder


def scan(root: str, model_type=ModelType.LORA, sub_type="", previous=None):
    scanner = ModelScanner(batch_size=3)
    stats = ScanStats()
    roots = [LibraryRoot(path=root, model_type=model_type, sub_type=sub_type)]
    entries = [e for batch in scanner.iter_batches(roots, previous or {}, None, stats) for e in batch]
    return {e.file_name: e for e in entries}, stats


def test_sidecar_fields_become_entry_fields(library: LibraryBuilder):
    library.add_lora("x", "a/b", sidecar={"model_name": "X", "tags": ["T1", "t2"], "sha256": "A" * 64,
                                          "base_model": "Pony", "favorite": True, "notes": "n", "exclude": False})
    entries, _ = scan(str(library.loras))
    e = entries["x"]
    assert (e.model_name, e.tags, e.sha256, e.autov2, e.base_model, e.favorite, e.folder) == (
        "X", ("T1", "t2"), "a" * 64, "a" * 10, "Pony", True, "a/b")
    assert e.hash_status is HashStatus.DONE and e.metadata_status is MetadataStatus.OK


def test_without_sidecar_the_header_gives_base_model_and_autov3(library):
    library.add_lora("plain", metadata={**SD15_KOHYA, "sshs_model_hash": "CD" * 32})
    e = scan(str(library.loras))[0]["plain"]
    assert e.base_model == "SD 1.5" and e.autov3 == ("cd" * 6)
    assert e.hash_status is HashStatus.PENDING and e.metadata_status is MetadataStatus.MISSING


def test_civitai_info_is_read_when_there_is_no_sidecar(library):
    path = library.add_lora("legacy")
    info = {"id": 5, "modelId": 3, "baseModel": "Illustrious", "model": {"name": "Legacy LoRA"},
            "trainedWords": ["leg"], "files": [{"hashes": {"SHA256": "B" * 64}}]}
    path.with_suffix(".civitai.info").write_text(json.dumps(info))
    e = scan(str(library.loras))[0]["legacy"]
    assert (e.model_name, e.base_model, e.sha256, e.from_civitai) == ("Legacy LoRA", "Illustrious", "b" * 64, True)
    assert e.civitai["trainedWords"] == ["leg"]


@pytest.mark.parametrize("content", [b"{broken", b"[1, 2]", b"\xff\xfe\x00", b""])
def test_a_corrupt_sidecar_never_hides_the_model(library, content):
    path = library.add_lora("broken")
    path.with_suffix(".metadata.json").write_bytes(content)
    e = scan(str(library.loras))[0]["broken"]
    assert e.model_name == "broken"
    assert e.metadata_status is MetadataStatus.CORRUPT_SIDECAR


@pytest.mark.parametrize("content", [b"", b"\x05\x00", (10**9).to_bytes(8, "little") + b"{}", (8).to_bytes(8, "little") + b"not json"])
def test_a_corrupt_header_is_flagged_not_hidden(library, content):
    (library.loras / "bad.safetensors").write_bytes(content)
    e = scan(str(library.loras))[0]["bad"]
    assert e.metadata_status is MetadataStatus.CORRUPT_HEADER


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_an_unreadable_file_is_listed_with_a_flag(library):  # pragma: no cover - not as root
    path = library.add_lora("secret")
    path.chmod(0)
    try:
        e = scan(str(library.loras))[0]["secret"]
        assert e.metadata_status is MetadataStatus.UNREADABLE
    finally:
        path.chmod(0o644)


def test_an_unreadable_file_is_listed_with_a_flag_even_as_root(library, monkeypatch):
    """Root reads anything, so simulate the OS refusing the read."""
    from lm_plugin.py.services.library import model_scanner

    library.add_lora("secret")

    def refuse(path, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(model_scanner, "read_safetensors_header", refuse)
    e = scan(str(library.loras))[0]["secret"]
    assert e.metadata_status is MetadataStatus.UNREADABLE


def test_previews_are_found_with_and_without_preview_infix(library):
    library.add_lora("a", preview="webp")
    library.add_lora("b", preview="preview.png")
    library.add_lora("c", preview="jpg")
    library.add_lora("d")
    (library.loras / "e.safetensors").write_bytes((library.loras / "d.safetensors").read_bytes())
    (library.loras / "e.preview.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    entries = scan(str(library.loras))[0]
    assert entries["a"].preview_path.endswith("/a.webp")
    assert entries["b"].preview_path.endswith("/b.preview.png")
    assert entries["c"].preview_path.endswith("/c.jpg")
    assert entries["d"].preview_path == ""
    assert entries["e"].preview_path.endswith("/e.preview.mp4")


def test_extensions_per_type(library):
    library.add_lora("lora_ok")
    (library.loras / "not_a_lora.ckpt").write_bytes(b"x")
    library.add_checkpoint("ck", extension=".ckpt")
    library.add_checkpoint("ck_gguf", extension=".gguf")
    library.add_diffusion_model("unet_gguf", extension=".gguf")
    assert set(scan(str(library.loras))[0]) == {"lora_ok"}
    assert set(scan(str(library.checkpoints), ModelType.CHECKPOINT, "checkpoint")[0]) == {"ck"}
    assert set(scan(str(library.diffusion_models), ModelType.CHECKPOINT, "diffusion_model")[0]) == {"unet_gguf"}


def test_symlinked_root_and_symlinked_folder_are_followed_without_loops(library, tmp_path):
    library.add_lora("inside", "real")
    link_root = tmp_path / "link_to_loras"
    link_root.symlink_to(library.loras, target_is_directory=True)
    (library.loras / "real" / "loop").symlink_to(library.loras / "real", target_is_directory=True)
    entries, _ = scan(str(link_root))
    assert set(entries) == {"inside"}
    assert entries["inside"].file_path == f"{link_root}/real/inside.safetensors"


def test_non_ascii_and_space_names(library):
    library.add_lora("Ölgemälde Stil 日本語", "Ordner mit Leerzeichen/子")
    e = scan(str(library.loras))[0]["Ölgemälde Stil 日本語"]
    assert e.folder == "Ordner mit Leerzeichen/子"


def test_hidden_folders_are_skipped(library):
    library.add_lora("visible")
    library.add_lora("trashed", ".lm-trash/batch1")
    assert set(scan(str(library.loras))[0]) == {"visible"}


def test_unchanged_files_are_reused_from_the_previous_scan(library):
    library.add_lora("one", sidecar={"tags": ["a"]})
    path = library.add_lora("two")
    first, _ = scan(str(library.loras))
    second, stats = scan(str(library.loras), previous={e.file_path: e for e in first.values()})
    assert stats.reused == 2 and stats.built == 0
    assert second["one"] is first["one"]
    # a changed sidecar or model is read again
    os.utime(path, ns=(1, 1))
    sidecar = library.loras / "one.metadata.json"
    sidecar.write_text(json.dumps({"tags": ["b"]}))
    os.utime(sidecar, ns=(2_000_000_000, 2_000_000_000))
    third, stats = scan(str(library.loras), previous={e.file_path: e for e in second.values()})
    assert stats.built == 2 and third["one"].tags == ("b",)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_a_walk_leaves_no_descriptor_open(library, tmp_path):
    """The walk lists folders through descriptors (issue 13): a walk run to the end, one given
    up half-way and one that meets a symlink loop close every folder they opened."""
    for n, folder in enumerate(["a", "a/x", "a/y", "b", "b/z", "c", "c/d/e"]):
        library.add_lora(f"m{n}", folder, sidecar={"model_name": f"M{n}"})
    os.symlink(library.loras / "a", library.loras / "c" / "loop")
    before = len(os.listdir("/proc/self/fd"))
    entries, stats = scan(str(library.loras))
    assert len(entries) == 7 and stats.errors == 0
    scanner = ModelScanner(batch_size=1)
    walk = scanner.iter_batches([LibraryRoot(path=str(library.loras), model_type=ModelType.LORA)], {}, None, ScanStats())
    next(walk)
    walk.close()  # given up after the first model
    assert len(os.listdir("/proc/self/fd")) == before
