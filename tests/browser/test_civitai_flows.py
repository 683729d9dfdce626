"""CivitAI from the page (issue 6 with issues 4 and 5): the download dialog against the suite's
local CivitAI test server, then the details dialog's description and versions of the result."""
from __future__ import annotations

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
    model = thread.call(server.add_model, model_id=501, name="Detail Tweaker",
                        description='<p>Adds <b>fine</b> detail.<script>alert(1)</script><img src=x onerror="alert(2)"></p>')
    thread.call(server.add_version, model, version_id=601, name="v1.0", base_model="SD 1.5")
    thread.call(server.add_version, model, version_id=602, name="v2.0", base_model="SDXL 1.0", trained_words=("tweak",))
    yield server
    thread.stop()


@pytest.fixture
def civitai_server(tmp_path: Path, civitai) -> Iterator[LibraryServer]:
    server = LibraryServer(build_small_library(tmp_path / "library"), env={"CIVITAI_API_BASE": civitai.api_base}).start()
    yield server
    server.stop()


def test_download_dialog_downloads_a_version_and_details_show_it(civitai_server, open_page, artifacts):
    page, errors = open_page(f"{civitai_server.base_url}/loras")
    page.wait_for_selector("body[data-socket='open']")
    page.click("[data-tool='download']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-role='download-ref']").fill("https://civitai.com/models/501/detail-tweaker?modelVersionId=602")
    dialog.locator("button[type='submit']").click()
    version = dialog.locator("select[aria-label='Version']")
    version.wait_for()
    assert version.locator("option").all_inner_texts() == ["v2.0 · SDXL 1.0", "v1.0 · SD 1.5"]
    assert version.input_value() == "602"
    dialog.locator("input[aria-label='Subfolder']").fill("downloads")
    page.wait_for_timeout(150)
    page.screenshot(path=str(artifacts / "download-dialog.png"))
    dialog.locator("[data-modal-action='start']").click()
    dialog.locator(".lm-download-progress", has_text="Completed").wait_for(timeout=20_000)
    target = civitai_server.library.loras / "downloads" / "Detail_Tweaker_v20.safetensors"
    assert target.exists()
    dialog.locator(".lm-modal-footer [data-modal-action='close']").click()

    # the downloader indexes the file, then writes its sidecar: wait for the CivitAI data
    civitai_server.wait_for(lambda: any(
        (i["civitai"] or {}).get("modelId") == 501 for i in civitai_server.list_loras(search="tweaker")["items"]
    ), timeout=15)
    # the grid picked the new model up from models_changed, without a reload
    # the grid recycles cards: a hidden one may still carry the path
    new_card = page.locator(".lm-card:not([hidden])[data-path$='/downloads/Detail_Tweaker_v20.safetensors']")
    page.fill("[data-role='search']", "tweaker")
    # the filtered list is on screen (a recycled card of the full list may still carry the path)
    page.locator(".lm-result-count", has_text=re.compile(r"^1 model$")).wait_for()
    new_card.wait_for()
    new_card.click()
    details = page.locator("dialog.lm-details-modal[open]")
    details.locator(".lm-chip--word", has_text="tweak").wait_for()
    details.locator("[data-tab='description']").click()
    description = details.locator(".lm-details-description")
    description.locator("b", has_text="fine").wait_for()
    html = description.inner_html()
    assert "<script" not in html and "onerror" not in html
    details.locator("[data-tab='versions']").click()
    local = details.locator(".lm-version--local")
    local.wait_for()
    assert local.locator(".lm-version-name").inner_text() == "v2.0"
    assert details.locator(".lm-version").count() == 2
    page.screenshot(path=str(artifacts / "details-versions.png"))
    assert errors.all() == []


def test_download_dialog_pauses_resumes_and_cancels(civitai_server, civitai, open_page):
    civitai.add_version(civitai.models[501], version_id=603, name="v3.0-large", base_model="SDXL 1.0", tensor_bytes=400_000)
    civitai.fail_next("signed", kind="slow", bytes_per_second=40_000, times=None)
    page, errors = open_page(f"{civitai_server.base_url}/loras")
    page.click("[data-tool='download']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-role='download-ref']").fill("https://civitai.com/models/501?modelVersionId=603")
    dialog.locator("button[type='submit']").click()
    dialog.locator("select[aria-label='Version']").wait_for()
    dialog.locator("[data-modal-action='start']").click()
    progress = dialog.locator(".lm-download-progress")
    progress.locator("strong", has_text="Downloading").wait_for(timeout=10_000)
    progress.locator("[data-dl='pause']").click()
    progress.locator("strong", has_text="Paused").wait_for(timeout=10_000)
    progress.locator("[data-dl='resume']").click()
    progress.locator("strong", has_text="Downloading").wait_for(timeout=10_000)
    progress.locator("[data-dl='cancel']").click()
    progress.locator("strong", has_text="Cancelled").wait_for(timeout=10_000)
    leftovers = [p.name for p in civitai_server.library.loras.rglob("*v30*")]
    assert leftovers == []
    civitai.clear_faults()
    assert errors.all() == []


def test_fetch_all_reports_progress_in_the_task_panel(civitai_server, civitai, open_page, artifacts):
    known = next(civitai_server.library.loras.rglob("lora_00.safetensors"))
    civitai.add_version(civitai.models[501], version_id=604, name="v0-local", base_model="SDXL 1.0", content=known.read_bytes())
    page, errors = open_page(f"{civitai_server.base_url}/loras")
    page.wait_for_selector("body[data-socket='open']")
    page.click("[data-tool='more']")
    page.click("[data-menu-id='fetch-all']")
    task = page.locator(".lm-progress-item[data-task='civitai:lora']")
    task.wait_for()
    done = page.locator(".lm-progress-item--done[data-task='civitai:lora']")
    done.wait_for(timeout=20_000)
    detail = task.locator(".lm-progress-detail").inner_text()
    assert detail.startswith("24/24 · 1 updated · 23 not found · 0 failed"), detail
    page.wait_for_timeout(300)  # bar transition
    page.screenshot(path=str(artifacts / "task-panel.png"))
    # the grid refetched: lora_00 now carries CivitAI's base model and trigger word
    page.locator(".lm-card[data-path$='/lora_00.safetensors']").click()
    page.locator("dialog.lm-details-modal[open] .lm-chip--word", has_text="detailed").wait_for()
    assert errors.all() == []
