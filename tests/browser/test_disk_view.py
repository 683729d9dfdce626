"""The Disk view on the standalone page (issue 14): the header entry, totals per type and
folder, the largest models, a copy across types, never-used models, and a delete from the
view that the toast's Undo brings back; extra types in the type switcher only when they
have models."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from .library_builder import LibraryServer, build_small_library

pytestmark = pytest.mark.browser


@pytest.fixture
def disk_server(tmp_path: Path):
    library = build_small_library(tmp_path / "library")
    vae = tmp_path / "library" / "vae"
    (vae / "sdxl").mkdir(parents=True)
    save_file({"decoder.weight": np.arange(60_000, dtype=np.float32)}, str(vae / "sdxl" / "huge_vae.safetensors"))
    # one checkpoint also kept, copied, among the VAEs: a duplicate across types
    ckpt = next(library.checkpoints.rglob("*.safetensors"))
    shutil.copyfile(ckpt, vae / ckpt.name)
    (tmp_path / "library" / "upscale").mkdir()  # a folder without models: no tab
    library.write_settings(vae_roots=[str(vae)], upscaler_roots=[str(tmp_path / "library" / "upscale")])
    server = LibraryServer(library).start(ready_types=("lora", "checkpoint", "embedding", "vae"))
    server.vae_dir = vae
    server.copy_name = ckpt.name
    yield server
    server.stop()


def test_disk_view_shows_usage_and_deletes_with_undo(disk_server, open_page, artifacts):
    page, errors = open_page(f"{disk_server.base_url}/loras")
    types = page.locator(".lm-types [data-type]").evaluate_all("(els) => els.map((e) => e.dataset.type)")
    assert types == ["loras", "checkpoints", "embeddings", "vaes"]  # no upscalers: their folder is empty
    page.locator('.lm-types [data-view="disk"]').click()
    page.wait_for_selector('[data-view="disk"] [data-section="largest"] [data-path]')
    assert page.locator('.lm-types [data-view="disk"]').get_attribute("aria-current") == "page"

    huge = (disk_server.vae_dir / "sdxl" / "huge_vae.safetensors").as_posix()
    first = page.locator('[data-section="largest"] [data-path]').first
    assert first.get_attribute("data-path") == huge
    assert "VAEs" in first.inner_text()
    totals = page.locator('[data-section="totals"]').inner_text()
    assert "VAEs" in totals and "LoRAs" in totals and "sdxl" in totals
    # hashing may still run in the server: wait for the copy across types to be found
    page.wait_for_function("""() => fetch('../api/lm/disk').then((r) => r.json()).then((d) => d.duplicates.length === 1)""")
    page.reload()
    page.wait_for_selector('[data-section="duplicates"] [data-sha] [data-path]')
    dup_paths = page.locator('[data-section="duplicates"] [data-path]').evaluate_all("(els) => els.map((e) => e.dataset.path)")
    assert len(dup_paths) == 2 and any(p.endswith("/vae/" + disk_server.copy_name) for p in dup_paths)
    assert page.locator('[data-section="never-used"] [data-path]').count() > 0
    page.screenshot(path=str(artifacts / "disk-view.png"), full_page=True)

    # filter to one type and folder
    page.select_option('[data-disk="type"]', "vae")
    page.wait_for_function("""() => [...document.querySelectorAll('[data-section="largest"] [data-path]')]
        .every((el) => el.dataset.path.includes('/vae/'))""")
    page.locator('[data-folder-of="vae"][data-folder-name="sdxl"]').click()
    page.wait_for_function("""() => document.querySelectorAll('[data-section="largest"] [data-path]').length === 1""")

    # delete from the view, then undo from the toast
    page.locator(f'[data-section="largest"] [data-delete="{huge}"]').click()
    page.locator("dialog[open] .lm-btn--danger").click()
    page.wait_for_selector(".lm-toast-action")
    page.wait_for_function("""() => !document.querySelector('[data-section="largest"] [data-path]')""")
    assert not Path(huge).exists()
    page.locator(".lm-toast-action").click()
    page.wait_for_selector(f'[data-section="largest"] [data-path="{huge}"]')
    assert Path(huge).exists()
    page.screenshot(path=str(artifacts / "disk-view-folder.png"), full_page=True)
    assert not errors.all(), errors.all()
