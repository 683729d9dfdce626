"""Write-only secrets in the settings dialog (issue 14, part 4): the HuggingFace token is set,
shown only as "Set", cleared, and never echoed, beside the CivitAI API key; the download dialog
names both sources it accepts."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def open_settings(page):
    page.click("[data-tool='settings']")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-setting='huggingface_token']").wait_for()
    return dialog


def test_the_huggingface_token_is_write_only_and_can_be_cleared(fresh_server, open_page, artifacts):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    dialog = open_settings(page)
    assert dialog.locator("[data-secret-status='huggingface_token']").inner_text() == "Not set"
    assert dialog.locator("[data-secret-clear='huggingface_token']").is_hidden()
    dialog.locator("[data-setting='huggingface_token']").fill("hf_secret_token_456")
    dialog.locator("[data-modal-action='save']").click()
    page.locator(".lm-toast--success", has_text="Settings saved").wait_for()
    settings = fresh_server.get_json("/api/lm/settings")
    assert settings["settings"]["huggingface_token_set"] is True
    assert settings["settings"]["civitai_api_key_set"] is False  # the other secret is untouched
    assert "hf_secret_token_456" not in json.dumps(settings)

    dialog = open_settings(page)
    token = dialog.locator("[data-setting='huggingface_token']")
    assert token.input_value() == "" and token.get_attribute("type") == "password"
    assert token.get_attribute("placeholder") == "A token is saved — type to replace it"
    assert dialog.locator("[data-secret-status='huggingface_token']").inner_text() == "Set"
    assert dialog.locator("[data-secret-status='civitai_api_key']").inner_text() == "Not set"
    assert "hf_secret_token_456" not in page.content()
    dialog.screenshot(path=str(artifacts / "settings-huggingface-token.png"))
    dialog.locator("[data-secret-clear='huggingface_token']").click()
    assert dialog.locator("[data-secret-status='huggingface_token']").inner_text() == "Will be removed"
    dialog.locator("[data-modal-action='save']").click()
    page.wait_for_selector("dialog[open]", state="detached")  # closed once saved
    assert fresh_server.get_json("/api/lm/settings")["settings"]["huggingface_token_set"] is False
    assert errors.all() == []


def test_saving_other_settings_leaves_both_secrets_alone(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    dialog = open_settings(page)
    dialog.locator("[data-setting='civitai_api_key']").fill("civitai-key-1")
    dialog.locator("[data-setting='huggingface_token']").fill("hf_token_1")
    dialog.locator("[data-modal-action='save']").click()
    page.locator(".lm-toast--success", has_text="Settings saved").wait_for()
    dialog = open_settings(page)
    dialog.locator("[data-setting='default_lora_strength']").fill("0.7")
    dialog.locator("[data-modal-action='save']").click()
    page.wait_for_selector("dialog[open]", state="detached")  # closed once saved
    view = fresh_server.get_json("/api/lm/settings")["settings"]
    assert view["civitai_api_key_set"] is True and view["huggingface_token_set"] is True
    assert view["default_lora_strength"] == 0.7
    assert errors.all() == []


def test_the_download_dialog_names_civitai_and_huggingface(fresh_server, open_page):
    page, errors = open_page(f"{fresh_server.base_url}/loras")
    page.click("[data-tool='download']")
    dialog = page.locator("dialog[open]")
    assert dialog.locator(".lm-modal-title").inner_text() == "Download from CivitAI or HuggingFace"
    help_text = dialog.locator("[role='status']").inner_text()
    assert "CivitAI" in help_text and "HuggingFace" in help_text
    dialog.locator("[data-role='download-ref']").fill("not a link at all")
    dialog.locator("button[type='submit']").click()
    assert "CivitAI or HuggingFace link" in dialog.locator("[role='status']").inner_text()
    assert errors.all() == []
