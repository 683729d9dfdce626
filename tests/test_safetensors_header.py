"""Safetensors headers: real files written by the safetensors library, corrupt ones, base models."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from lm_plugin.py.services.library.safetensors_header import (
    HeaderError,
    SafetensorsHeader,
    autov3_from_metadata,
    guess_base_model,
    read_safetensors_header,
    trigger_words_from_metadata,
)
from safetensors.numpy import save_file

KOHYA_SDXL_METADATA = {
    "ss_base_model_version": "sdxl_base_v1-0",
    "ss_network_module": "networks.lora",
    "ss_sd_model_name": "sd_xl_base_1.0.safetensors",
    "ss_output_name": "my_style",
    "sshs_model_hash": "  C8A3EA7A8A5AF3E0D6A95C5F2B3E2D1C0B9A8F7E6D5C4B3A2918273645546372 ",
    "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
}


def tensors() -> dict[str, np.ndarray]:
    return {
        "lora_unet_down.weight": np.arange(64, dtype=np.float32).reshape(8, 8),
        "lora_unet_up.weight": np.ones((8, 4), dtype=np.float16),
        "alpha": np.array(4.0, dtype=np.float32),
    }


def write_raw(path: Path, header: bytes, *, length: int | None = None, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


# --- reading real files --------------------------------------------------------------


def test_reads_metadata_offset_and_count_of_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    save_file(tensors(), str(path), metadata=KOHYA_SDXL_METADATA)
    header_length = struct.unpack("<Q", path.read_bytes()[:8])[0]

    header = read_safetensors_header(path)

    assert header == SafetensorsHeader(
        metadata=KOHYA_SDXL_METADATA, data_offset=8 + header_length, tensor_count=3
    )
    assert path.stat().st_size - header.data_offset == 64 * 4 + 32 * 2 + 4


def test_file_without_metadata_has_empty_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file(tensors(), str(path))

    header = read_safetensors_header(str(path))

    assert header.metadata == {} and header.tensor_count == 3


def test_file_with_no_tensors(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    save_file({}, str(path), metadata={"k": "v"})

    assert read_safetensors_header(path) == SafetensorsHeader(
        metadata={"k": "v"}, data_offset=path.stat().st_size, tensor_count=0
    )


def test_non_string_metadata_values_are_kept_as_json_text(tmp_path: Path) -> None:
    header = {"__metadata__": {"steps": 1000, "tags": {"a": 1}, "name": "x"}}
    path = write_raw(tmp_path / "odd.safetensors", json.dumps(header).encode())

    assert read_safetensors_header(path).metadata == {"steps": "1000", "tags": '{"a": 1}', "name": "x"}


def test_null_metadata_is_empty(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "n.safetensors", b'{"__metadata__": null}')

    assert read_safetensors_header(path).metadata == {}


def test_header_padded_with_spaces_is_accepted(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "pad.safetensors", b'{"__metadata__": {"a": "b"}}      ')

    assert read_safetensors_header(path).metadata == {"a": "b"}


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_safetensors_header(tmp_path / "missing.safetensors")


# --- corrupt files ---------------------------------------------------------------------


def test_empty_file_is_a_header_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")

    with pytest.raises(HeaderError, match="file is 0 bytes, too short"):
        read_safetensors_header(path)


def test_file_shorter_than_the_length_prefix_is_a_header_error(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x10\x00\x00")

    with pytest.raises(HeaderError, match="file is 3 bytes, too short"):
        read_safetensors_header(path)


def test_header_length_past_the_end_of_the_file_is_a_header_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "long.safetensors", b"{}", length=1000)

    with pytest.raises(HeaderError, match="header length 1000 runs past the end of the 10-byte file"):
        read_safetensors_header(path)


def test_header_length_over_the_limit_is_a_header_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "big.safetensors", b"{}" + b" " * 200)

    with pytest.raises(HeaderError, match="header length 202 exceeds the limit of 100 bytes"):
        read_safetensors_header(path, max_header_bytes=100)


def test_huge_length_prefix_is_rejected_without_reading(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "huge.safetensors", b"{}", length=2**63)

    with pytest.raises(HeaderError, match="exceeds the limit"):
        read_safetensors_header(path)


def test_truncated_real_file_is_a_header_error(tmp_path: Path) -> None:
    path = tmp_path / "partial.safetensors"
    save_file(tensors(), str(path), metadata={"a": "b"})
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(HeaderError, match=r"truncated file\?"):
        read_safetensors_header(path)


def test_file_cut_inside_the_header_is_a_header_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_file(tensors(), str(path), metadata=KOHYA_SDXL_METADATA)
    path.write_bytes(path.read_bytes()[:100])

    with pytest.raises(HeaderError, match="runs past the end of the 100-byte file"):
        read_safetensors_header(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b'{"a": ', "header is not valid JSON"),
        (b"not json at all", "header is not valid JSON"),
        (b'\xff\xfe{"a": 1}', "header is not UTF-8"),
        (b"[1, 2, 3]", "header is a JSON list, not an object"),
        (b'"text"', "header is a JSON str, not an object"),
        (b"{}", None),
        (b"[" * 100000 + b"]" * 100000, "(nested too deeply|not valid JSON)"),
        (b'{"__metadata__": [1]}', "__metadata__ is a JSON list, not an object"),
        (b'{"t": 5}', "tensor 't' is described by a JSON int"),
        (b'{"t": {"dtype": "F32", "shape": [1]}}', "tensor 't' has invalid data_offsets None"),
        (b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', "invalid data_offsets"),
        (b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1.5]}}', "invalid data_offsets"),
        (b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', r"ends at byte 4 of a 0-byte data section"),
    ],
)
def test_malformed_header_is_a_header_error(tmp_path: Path, header: bytes, message: str | None) -> None:
    path = write_raw(tmp_path / "bad.safetensors", header)

    if message is None:
        assert read_safetensors_header(path).tensor_count == 0
        return
    with pytest.raises(HeaderError, match=message):
        read_safetensors_header(path)


def test_one_byte_header_is_a_header_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "tiny.safetensors", b"{")

    with pytest.raises(HeaderError, match="header length 1 is too small"):
        read_safetensors_header(path)


# --- base model ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"ss_base_model_version": "sd_v1"}, "SD 1.5"),
        ({"ss_base_model_version": "sd_v1-5"}, "SD 1.5"),
        ({"ss_base_model_version": "sd_v2"}, "SD 2.1"),
        ({"ss_base_model_version": "sd2.1"}, "SD 2.1"),
        ({"ss_base_model_version": "sdxl_base_v1-0"}, "SDXL 1.0"),
        ({"ss_base_model_version": "sdxl_"}, "SDXL 1.0"),
        ({"ss_base_model_version": "sd3"}, "SD 3"),
        ({"ss_base_model_version": "flux1"}, "Flux.1 D"),
        ({"ss_base_model_version": "FLUX.1-dev"}, "Flux.1 D"),
        ({"modelspec.architecture": "stable-diffusion-v1/lora"}, "SD 1.5"),
        ({"modelspec.architecture": "stable-diffusion-v1/textual-inversion"}, "SD 1.5"),
        ({"modelspec.architecture": "stable-diffusion-v2-512/lora"}, "SD 2.1"),
        ({"modelspec.architecture": "stable-diffusion-v2-768-v"}, "SD 2.1"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "SDXL 1.0"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-base"}, "SDXL 1.0"),
        ({"modelspec.architecture": "stable-diffusion-3-medium/lora"}, "SD 3"),
        ({"modelspec.architecture": "stable-diffusion-3-m/lora"}, "SD 3"),
        ({"modelspec.architecture": "stable-diffusion-v3-medium"}, "SD 3"),
        ({"modelspec.architecture": "stable-diffusion-3-5-large/lora"}, "SD 3.5 Large"),
        ({"modelspec.architecture": "stable-diffusion-v3.5-medium"}, "SD 3.5 Medium"),
        ({"modelspec.architecture": "stable-diffusion-3.5-large-turbo"}, "SD 3.5 Large Turbo"),
        ({"modelspec.architecture": "flux-1-dev/lora"}, "Flux.1 D"),
        ({"modelspec.architecture": "flux-1-schnell/lora"}, "Flux.1 S"),
        ({"modelspec.architecture": "flux-1/lora"}, "Flux.1 D"),
        ({"modelspec.architecture": "chroma/lora"}, "Chroma"),
        ({"modelspec.architecture": "lumina-2/lora"}, "Lumina"),
        # modelspec is more specific than kohya's version string
        ({"ss_base_model_version": "flux1", "modelspec.architecture": "flux-1-schnell/lora"}, "Flux.1 S"),
        # legacy kohya: only ss_v2 and the name of the model trained on
        ({"ss_v2": "True", "ss_sd_model_name": "v2-1_768-ema-pruned.ckpt"}, "SD 2.1"),
        ({"ss_v2": "True", "ss_sd_model_name": "512-base-ema-v2-0.ckpt"}, "SD 2.0"),
        ({"ss_v2": "False", "ss_sd_model_name": "sd_xl_base_1.0.safetensors"}, "SDXL 1.0"),
        ({"ss_v2": "False", "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors"}, ""),
        # SDXL derivatives named by the model trained on
        ({"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL_v6.safetensors"}, "Pony"),
        ({"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "illustriousXL_v01.safetensors"}, "Illustrious"),
        ({"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "noobaiXLNAIXL_vPred10.safetensors"}, "NoobAI"),
        ({"ss_base_model_version": "sd_v1", "ss_sd_model_name": "pony_for_sd15.safetensors"}, "SD 1.5"),
        # nothing to go on
        ({}, ""),
        ({"ss_base_model_version": ""}, ""),
        ({"ss_base_model_version": "something_new"}, ""),
        ({"modelspec.architecture": "z-image/lora"}, ""),
    ],
)
def test_guess_base_model(metadata: dict[str, str], expected: str) -> None:
    assert guess_base_model(metadata) == expected


def test_guess_base_model_from_a_real_header(tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    save_file(tensors(), str(path), metadata=KOHYA_SDXL_METADATA)

    assert guess_base_model(read_safetensors_header(path).metadata) == "SDXL 1.0"


# --- AutoV3 and trigger words ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KOHYA_SDXL_METADATA["sshs_model_hash"], "c8a3ea7a8a5a"),
        ("0xABCDEF0123456789", "abcdef012345"),
        ("abcdef01234", ""),  # too short
        ("not-a-hash-at-all", ""),
        ("", ""),
    ],
)
def test_autov3_from_metadata(value: str, expected: str) -> None:
    assert autov3_from_metadata({"sshs_model_hash": value}) == expected


def test_autov3_is_empty_without_the_key() -> None:
    assert autov3_from_metadata({"ss_output_name": "x"}) == ""


def test_trigger_words_are_not_guessed_from_training_tags() -> None:
    metadata = {"ss_tag_frequency": json.dumps({"img": {"mytrigger": 50, "1girl": 40}})}

    assert trigger_words_from_metadata(metadata) == []
