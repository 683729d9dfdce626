"""Editing the library from the page (issue 6 with the mutations of issue 3): details edits,
delete with Undo, preview replacement, bulk move and live updates from other clients.
Each test gets a fresh library and server."""
from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from .library_builder import LibraryServer, build_small_library, preview_bytes

pytestmark = pytest.mark.browser


def card(page, stem: str):
    return page.locator(f".lm-card[data-path$='/{stem}.safetensors']")


def item_of(server, stem: str) -> dict:
    items = server.list_loras(search=stem, search_filename="true", search_modelname="false", search_tags="false")["items"]
    return next(i for i in items if i["file_name"] == stem)


def post_json(server, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        server.base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read().decode())


def open_menu_action(page, stem: str, label: str) -> None:
    card(page, stem).click(button="right")
    page.locator(".lm-menu [role='menuitem']", has_text=label).click()


def test_details_dialog_edits_tags_and_notes_and_they_persist(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    card(page, "lora_00").click()
    dialog = page.locator("dialog.lm-details-modal[open]")
    dialog.wait_for()
    assert dialog.locator(".lm-chip--tag .lm-chip-label").all_inner_texts() == ["character", "clothing"]
    dialog.locator("[data-remove-tag='character']").click()
    dialog.locator("[data-role='tag-input']").fill("Soft Light")
    dialog.locator("[data-role='tag-input']").press("Enter")
    dialog.locator("[data-role='notes']").fill("Best at 0.7 with a soft prompt.")
    dialog.locator("[data-role='strength']").fill("0.7")
    dialog.locator("[data-role='base-model']").fill("Illustrious")
    dialog.locator("[data-modal-action='save']").click()
    page.wait_for_selector("dialog.lm-details-modal", state="detached")

    saved = fresh_server.wait_for(lambda: (i := item_of(fresh_server, "lora_00"))["notes"] and i)
    assert saved["tags"] == ["clothing", "soft light"]
    assert saved["notes"] == "Best at 0.7 with a soft prompt."
    assert json.loads(saved["usage_tips"])["strength"] == 0.7
    assert saved["base_model"] == "Illustrious"
    sidecar = json.loads(Path(saved["file_path"]).with_suffix(".metadata.json").read_text(encoding="utf-8"))
    assert sidecar["notes"] == "Best at 0.7 with a soft prompt."

    page.reload()
    page.wait_for_selector(".lm-card:not(.lm-card--loading)")
    card(page, "lora_00").click()
    dialog = page.locator("dialog.lm-details-modal[open]")
    dialog.wait_for()
    assert dialog.locator(".lm-chip--tag .lm-chip-label").all_inner_texts() == ["clothing", "soft light"]
    assert dialog.locator("[data-role='notes']").input_value() == "Best at 0.7 with a soft prompt."
    assert errors.all() == []


def test_delete_with_undo_restores_the_file(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    path = Path(item_of(fresh_server, "lora_00")["file_path"])
    open_menu_action(page, "lora_00", "Delete")
    toast = page.locator(".lm-toast", has=page.locator(".lm-toast-action"))
    toast.wait_for()
    assert not path.exists()
    card(page, "lora_00").wait_for(state="detached")
    assert fresh_server.list_loras()["total"] == 23

    toast.locator(".lm-toast-action").click()
    fresh_server.wait_for(path.exists)
    card(page, "lora_00").wait_for()
    assert path.with_suffix(".metadata.json").exists() and path.with_suffix(".webp").exists()
    assert fresh_server.list_loras()["total"] == 24
    assert errors.all() == []


def test_replace_preview_with_the_file_input_and_by_dropping_an_image(fresh_server, open_page, tmp_path):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    stem = "lora_02"  # generated without a preview
    assert item_of(fresh_server, stem)["preview_url"] == ""
    assert card(page, stem).locator(".lm-card-placeholder").is_visible()
    image = tmp_path / "new-preview.png"
    image.write_bytes(preview_bytes(99, fmt="PNG"))
    with page.expect_file_chooser() as chooser:
        open_menu_action(page, stem, "Replace preview")
    chooser.value.set_files(str(image))
    card(page, stem).locator(".lm-card-img.lm-loaded").wait_for()
    item = fresh_server.wait_for(lambda: (i := item_of(fresh_server, stem))["preview_url"] and i)
    assert card(page, stem).locator(".lm-card-img").get_attribute("src") == item["preview_url"]
    model = Path(item["file_path"])
    assert any(p.name.startswith(stem + ".") and p.suffix in (".webp", ".png") for p in model.parent.iterdir())

    # dropping an image file onto a card replaces its preview too
    before = card(page, "lora_04").locator(".lm-card-img").get_attribute("src")
    page.evaluate(
        """async () => {
            const canvas = document.createElement('canvas');
            canvas.width = 64; canvas.height = 80;
            const ctx = canvas.getContext('2d');
            ctx.fillStyle = '#c04080'; ctx.fillRect(0, 0, 64, 80);
            const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
            const data = new DataTransfer();
            data.items.add(new File([blob], 'dropped.png', { type: 'image/png' }));
            const target = document.querySelector(".lm-card[data-path$='/lora_04.safetensors'] .lm-card-media");
            target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
            target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
        }"""
    )
    page.wait_for_function(
        "(before) => { const img = document.querySelector(\".lm-card[data-path$='/lora_04.safetensors'] .lm-card-img\");"
        " return img.getAttribute('src') !== before && img.classList.contains('lm-loaded'); }",
        arg=before,
    )
    assert errors.all() == []


def test_bulk_move_moves_the_selected_models(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    stems = ["lora_00", "lora_10", "lora_20"]
    page.click("[data-bar='select']")
    for stem in stems:
        card(page, stem).click()
    assert page.locator(".lm-bulk-count").inner_text().startswith("3")
    page.click("[data-bulk='move']")
    dialog = page.locator("dialog[open]")
    dialog.locator(".lm-tree-label", has_text="(top level)").wait_for()
    dialog.locator("input[aria-label='New subfolder (optional)']").fill("moved/batch")
    dialog.locator("[data-modal-action='ok']").click()
    page.locator(".lm-toast--success", has_text="Moved 3").wait_for()
    target = fresh_server.library.loras / "moved" / "batch"
    for stem in stems:
        assert (target / f"{stem}.safetensors").exists()
        assert (target / f"{stem}.metadata.json").exists()
        assert item_of(fresh_server, stem)["folder"] == "moved/batch"
    assert page.locator(".lm-bulk-count").inner_text().startswith("0")
    assert errors.all() == []


def test_grid_follows_changes_made_by_another_client(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    card(page, "lora_00").wait_for()
    page.wait_for_selector("body[data-socket='open']")
    path = item_of(fresh_server, "lora_00")["file_path"]
    page.evaluate("() => { window.__lmMarker = 1; }")
    post_json(fresh_server, "/api/lm/loras/save-metadata", {"file_path": path, "model_name": "Aardvark Elsewhere"})
    card(page, "lora_00").locator(".lm-card-name", has_text="Aardvark Elsewhere").wait_for()
    post_json(fresh_server, "/api/lm/loras/delete", {"file_path": path})
    card(page, "lora_00").wait_for(state="detached")
    page.wait_for_function("() => document.querySelector('.lm-result-count').textContent.includes('23')")
    assert page.evaluate("() => window.__lmMarker") == 1  # no reload happened
    assert errors.all() == []


def test_card_actions_favourite_rename_and_copy_syntax(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    card(page, "lora_01").hover()
    card(page, "lora_01").locator("[data-action='favorite']").click()
    fresh_server.wait_for(lambda: item_of(fresh_server, "lora_01")["favorite"])
    assert card(page, "lora_01").get_attribute("class").count("lm-card--favorite") == 1

    card(page, "lora_01").hover()
    card(page, "lora_01").locator("[data-action='copy']").click()
    page.locator(".lm-toast", has_text="<lora:lora_01:0.8>").wait_for()

    open_menu_action(page, "lora_01", "Rename")
    dialog = page.locator("dialog[open]")
    dialog.locator("input").fill("lora_01_renamed")
    dialog.locator("[data-modal-action='ok']").click()
    card(page, "lora_01_renamed").wait_for()
    old = Path(fresh_server.library.loras / "SD_15" / "style" / "lora_01.safetensors")
    assert not old.exists() and old.with_name("lora_01_renamed.safetensors").exists()
    assert old.with_name("lora_01_renamed.metadata.json").exists()
    assert errors.all() == []


def test_mature_previews_blur_until_the_setting_is_off(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    nsfw = card(page, "lora_07")  # preview level 8 (X), default threshold R
    nsfw.wait_for()
    assert "lm-card--blur" in nsfw.get_attribute("class")
    assert "lm-card--blur" not in card(page, "lora_06").get_attribute("class")
    page.click("[data-tool='settings']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-setting='blur_mature_content']").uncheck()
    dialog.locator("[data-modal-action='save']").click()
    page.wait_for_function("() => !document.querySelector(\".lm-card[data-path$='/lora_07.safetensors']\").classList.contains('lm-card--blur')")
    assert fresh_server.get_json("/api/lm/settings")["settings"]["blur_mature_content"] is False
    assert errors.all() == []


def test_auto_organize_previews_the_plan_then_runs_it(fresh_server, open_page, artifacts):
    plan = post_json(fresh_server, "/api/lm/loras/auto-organize", {"dry_run": True})
    assert plan["moves"], "the generated library has models outside their template folders"
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    page.click("[data-tool='more']")
    page.click("[data-menu-id='organize']")
    dialog = page.locator("dialog[open]")
    dialog.locator(".lm-plan-row").first.wait_for()
    assert dialog.locator(".lm-organize > .lm-plan > .lm-plan-row").count() == len(plan["moves"])
    assert dialog.locator(".lm-modal-text").inner_text().startswith(f"{len(plan['moves'])} models will move")
    page.screenshot(path=str(artifacts / "auto-organize-plan.png"))
    dialog.locator("[data-modal-action='run']").click()
    dialog.locator(".lm-empty", has_text=f"Done: {len(plan['moves'])} moved, 0 failed.").wait_for(timeout=20_000)
    for move in plan["moves"]:
        assert Path(move["to"]).exists() and not Path(move["from"]).exists()
    assert post_json(fresh_server, "/api/lm/loras/auto-organize", {"dry_run": True})["moves"] == []
    assert errors.all() == []


@pytest.fixture
def duplicates_server(tmp_path: Path):
    """A library where `copies/lora_03_copy` is a byte-identical copy of `lora_03` (sidecar too)."""
    library = build_small_library(tmp_path / "library")
    original = next(library.loras.rglob("lora_03.safetensors"))
    copy = library.loras / "copies" / "lora_03_copy.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)
    shutil.copyfile(original.with_suffix(".metadata.json"), copy.with_suffix(".metadata.json"))  # same SHA256
    server = LibraryServer(library).start()
    yield server, original, copy
    server.stop()


def test_duplicates_view_verifies_and_deletes_the_extra_copy(duplicates_server, open_page):
    server, original, copy = duplicates_server
    assert len(server.get_json("/api/lm/loras/find-duplicates")["groups"]) == 1
    page, errors = open_page(f"{server.base_url}/loras")
    page.click("[data-tool='more']")
    page.click("[data-menu-id='duplicates']")
    dialog = page.locator("dialog[open]")
    group = dialog.locator(".lm-dupe-group")
    group.wait_for()
    assert group.locator(".lm-dupe-row").count() == 2
    group.locator("[data-verify]").click()
    group.locator(".lm-badge--ok", has_text="Identical").wait_for()
    marked = dialog.locator("input[data-mark]:checked")
    assert marked.count() == 1
    doomed = marked.get_attribute("data-mark")
    dialog.locator("[data-modal-action='delete']").click()
    page.locator("dialog[open] [data-modal-action='ok']", has_text="Delete").click()
    dialog.locator(".lm-empty", has_text="No duplicates found.").wait_for()
    assert not Path(doomed).exists()
    assert original.exists() != copy.exists()  # exactly one copy is left
    assert errors.all() == []


def test_exclude_hides_a_model_and_the_excluded_view_brings_it_back(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    open_menu_action(page, "lora_00", "Exclude from library")
    card(page, "lora_00").wait_for(state="detached")
    assert fresh_server.list_loras()["total"] == 23
    page.click("[data-tool='more']")
    page.click("[data-menu-id='excluded']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-include$='/lora_00.safetensors']").click()
    dialog.locator(".lm-empty", has_text="No excluded models.").wait_for()
    dialog.locator(".lm-modal-footer [data-modal-action='close']").click()
    card(page, "lora_00").wait_for()
    assert fresh_server.list_loras()["total"] == 24
    assert errors.all() == []


def test_bulk_tag_then_bulk_delete_with_undo(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    stems = ["lora_00", "lora_10"]
    page.click("[data-bar='select']")
    for stem in stems:
        card(page, stem).click()
    page.click("[data-bulk='tag']")
    prompt = page.locator("dialog[open]")
    prompt.locator("input").fill("Batch, keeper")
    prompt.locator("[data-modal-action='ok']").click()
    page.locator(".lm-toast--success", has_text="Tagged 2").wait_for()
    for stem in stems:
        assert {"batch", "keeper"} <= set(item_of(fresh_server, stem)["tags"])

    paths = [Path(item_of(fresh_server, stem)["file_path"]) for stem in stems]
    page.click("[data-bulk='delete']")
    page.locator("dialog[open] [data-modal-action='ok']").click()
    toast = page.locator(".lm-toast", has_text="Deleted 2 models")
    toast.wait_for()
    assert not any(p.exists() for p in paths)
    toast.locator(".lm-toast-action").click()
    fresh_server.wait_for(lambda: all(p.exists() for p in paths))
    for stem in stems:
        card(page, stem).wait_for()
    assert errors.all() == []


def test_settings_keep_the_api_key_write_only(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    page.click("[data-tool='settings']")
    dialog = page.locator("dialog[open]")
    key_input = dialog.locator("[data-setting='civitai_api_key']")
    key_input.fill("secret-key-123")
    dialog.locator("[data-modal-action='save']").click()
    page.locator(".lm-toast--success", has_text="Settings saved").wait_for()
    settings = fresh_server.get_json("/api/lm/settings")
    assert settings["civitai_api_key_set"] is True and "secret-key-123" not in json.dumps(settings)
    page.click("[data-tool='settings']")
    dialog = page.locator("dialog[open]")
    assert dialog.locator("[data-setting='civitai_api_key']").input_value() == ""
    assert dialog.locator(".lm-badge--ok").inner_text() == "Set"
    assert "secret-key-123" not in page.content()
    assert errors.all() == []


def test_settings_show_where_the_server_connects_read_only(fresh_server, open_page, artifacts):
    """Issue 9: the API base and image hosts are shown, not editable, with where to set them."""
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    page.click("[data-tool='settings']")
    dialog = page.locator("dialog[open]")
    base = dialog.locator("output[data-setting='civitai_api_base']")
    base.wait_for()
    assert base.inner_text() == "https://civitai.com/api/v1"
    assert "image.civitai.com" in dialog.locator("output[data-setting='preview_url_hosts']").inner_text()
    assert dialog.locator("output[data-setting='allowed_hosts']").inner_text() == "none"
    assert dialog.locator("input[data-setting='civitai_api_base'], input[data-setting='preview_url_hosts']").count() == 0
    assert str(fresh_server.library.settings) in dialog.inner_text()
    dialog.screenshot(path=str(artifacts / "settings-read-only.png"))
    assert errors.all() == []
