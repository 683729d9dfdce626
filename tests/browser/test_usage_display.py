"""Usage history on the page (issue 11): the two usage sorts in the sort select, "used N
times, last on …" on the cards and in the details dialog, in a real Chromium against the
standalone server whose usage history (``usage.sqlite3`` beside the cache) is seeded first."""
from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from .library_builder import LibraryServer, build_small_library

pytestmark = pytest.mark.browser
DAY = 86_400


def seed_usage(cache: Path, uses: dict[str, tuple[int, float]]) -> None:
    """Rows of the usage history as the prompt hook leaves them (count, first and last use)."""
    conn = sqlite3.connect(cache / "usage.sqlite3")
    conn.execute("CREATE TABLE IF NOT EXISTS usage (sha256 TEXT PRIMARY KEY, count INTEGER NOT NULL, "
                 "first_used REAL NOT NULL, last_used REAL NOT NULL)")
    conn.executemany("INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?)",
                     [(sha, count, last - DAY, last) for sha, (count, last) in uses.items()])
    conn.commit()
    conn.close()


def sha_of(library, stem: str) -> str:
    model = next(library.loras.rglob(f"{stem}.safetensors"))
    return hashlib.sha256(model.read_bytes()).hexdigest()


@pytest.fixture
def used_server(tmp_path: Path):
    library = build_small_library(tmp_path / "library")
    now = time.time()
    seed_usage(library.cache, {sha_of(library, "lora_09"): (7, now - 3 * DAY), sha_of(library, "lora_14"): (2, now - 60)})
    server = LibraryServer(library).start()
    yield server
    server.stop()


def card_names(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('.lm-card:not([hidden]):not(.lm-card--loading)')]
            .sort((a, b) => a.dataset.index - b.dataset.index)
            .map((el) => el.dataset.path.split('/').pop().replace('.safetensors', ''))"""
    )


def test_usage_sorts_cards_and_details_show_the_history(used_server, open_page, artifacts):
    page, errors = open_page(f"{used_server.base_url}/loras")
    options = page.locator(".lm-sort option").evaluate_all("(els) => els.map((e) => [e.value, e.textContent])")
    assert ["usage:desc", "Most used first"] in options and ["last_used:desc", "Recently used first"] in options

    page.select_option(".lm-sort", "usage:desc")
    page.wait_for_function("() => document.querySelector('.lm-card[data-index=\"0\"]')?.dataset.path?.includes('lora_09')")
    assert card_names(page)[:2] == ["lora_09", "lora_14"]
    first = page.locator(".lm-card[data-index='0'] .lm-card-usage")
    assert first.is_visible()
    assert first.inner_text().startswith("Used 7 times, last on ")
    assert page.locator(".lm-card[data-index='2'] .lm-card-usage").is_hidden()  # never used: nothing shown
    page.screenshot(path=str(artifacts / "usage-sort-cards.png"))

    page.select_option(".lm-sort", "last_used:desc")
    page.wait_for_function("() => document.querySelector('.lm-card[data-index=\"0\"]')?.dataset.path?.includes('lora_14')")
    assert card_names(page)[:2] == ["lora_14", "lora_09"]

    page.locator(".lm-card[data-index='1']").click()
    dialog = page.locator("dialog.lm-details-modal[open]")
    dialog.wait_for()
    facts = dialog.locator(".lm-facts").inner_text()
    assert "7 times, last on" in facts
    page.screenshot(path=str(artifacts / "usage-details.png"))
    assert not errors.all(), errors.all()
