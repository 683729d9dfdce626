"""Update checks in the page (issue 14): "Check for updates" from the header menu, the badge
on the card, the "Has update" filter and the details dialog's newer versions with Ignore,
on the standalone server against the suite's local CivitAI test server."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from .civitai_thread import CivitaiThread
from .library_builder import LibraryServer, build_small_library

pytestmark = pytest.mark.browser


@pytest.fixture
def civitai() -> Iterator:
    thread = CivitaiThread()
    server = thread.start()
    model = thread.call(server.add_model, model_id=501, name="Detail Tweaker")
    thread.call(server.add_version, model, version_id=601, name="v1.0", base_model="SD 1.5",
                published_at="2025-01-10T00:00:00.000Z")
    thread.call(server.add_version, model, version_id=602, name="v2.0 XL", base_model="SDXL 1.0",
                published_at="2025-02-10T00:00:00.000Z")
    thread.call(server.add_version, model, version_id=603, name="v3.0", base_model="SD 1.5",
                published_at="2025-03-10T00:00:00.000Z", size_kb=144 * 1024.0)
    yield server
    thread.stop()


@pytest.fixture
def server(tmp_path: Path, civitai) -> Iterator[LibraryServer]:
    library = build_small_library(tmp_path / "library")
    model = library.files.add_lora("detail_tweaker_v1", "civitai")
    sidecar = {
        "file_name": "detail_tweaker_v1", "model_name": "Detail Tweaker", "base_model": "SD 1.5",
        "from_civitai": True, "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "civitai": civitai.version_json(601),
    }
    model.with_suffix(".metadata.json").write_text(json.dumps(sidecar), encoding="utf-8")
    running = LibraryServer(library, env={"CIVITAI_API_BASE": civitai.api_base}).start()
    yield running
    running.stop()


def test_check_for_updates_badges_the_card_and_the_details_list_newer_versions(server, open_page, artifacts):
    page, errors = open_page(f"{server.base_url}/loras")
    page.wait_for_selector("body[data-socket='open']")
    card = page.locator(".lm-card:not([hidden])[data-path$='/civitai/detail_tweaker_v1.safetensors']")
    page.fill("[data-role='search']", "tweaker")
    page.locator(".lm-result-count", has_text=re.compile(r"^1 model$")).wait_for()
    assert card.locator(".lm-card-update").is_hidden()

    page.click("[data-tool='more']")
    page.locator("[role='menuitem']", has_text="Check for updates").click()
    badge = card.locator(".lm-card-update")
    badge.wait_for(state="visible", timeout=15_000)
    assert badge.inner_text().strip() == "Update"
    assert badge.get_attribute("title") == "A newer version is on CivitAI"
    page.screenshot(path=str(artifacts / "update-badge.png"))

    # the filter: only models with an update
    page.fill("[data-role='search']", "")
    page.click("[data-filter='has-update']")
    page.locator(".lm-result-count", has_text=re.compile(r"^1 model$")).wait_for()
    assert page.locator(".lm-card:not([hidden]) .lm-card-name").all_inner_texts() == ["Detail Tweaker"]

    card.click()
    details = page.locator("dialog.lm-details-modal[open]")
    section = details.locator("[data-role='updates']")
    section.wait_for(state="visible")
    assert section.locator("h3").text_content() == "Newer versions on CivitAI (1)"
    row = section.locator(".lm-update-row")
    assert row.count() == 1  # v2.0 XL is newer, but for another base model
    assert row.get_attribute("data-version-id") == "603"
    assert row.locator(".lm-update-name").inner_text() == "v3.0"
    meta = row.locator(".lm-update-meta").inner_text()
    assert "SD 1.5" in meta and "144 MB" in meta and "2025" in meta
    assert row.locator("[data-update='download']").inner_text().strip() == "Download update"
    assert row.locator("[data-update='replace']").is_visible()
    page.screenshot(path=str(artifacts / "update-details.png"))

    row.locator("[data-update='ignore']").click()
    section.locator(".lm-update-row--ignored").wait_for()
    assert row.locator("[data-update='unignore']").inner_text().strip() == "Stop ignoring"
    details.locator("[data-modal-action='cancel']").click()
    # ignored: the filter finds nothing, the badge is gone
    page.locator(".lm-result-count", has_text=re.compile(r"^0 models$")).wait_for()
    page.click("[data-filter='has-update']")
    page.fill("[data-role='search']", "tweaker")
    page.locator(".lm-result-count", has_text=re.compile(r"^1 model$")).wait_for()
    card.locator(".lm-card-update").wait_for(state="hidden")
    assert errors.all() == []
