"""Browser-test fixtures: Debian's Chromium through Playwright's sync API, the real
standalone server on generated libraries, and pages that record console errors.

Every test here is marked `browser` and is skipped (not failed) when Chromium is missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from .library_builder import Library, LibraryServer, build_small_library

CHROMIUM = Path(os.environ.get("LM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module. Module scope on purpose: the sync API keeps an event loop
    running in this thread while it is started, which would break the pytest-aiohttp tests
    collected after the browser tests if Playwright stayed up for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageErrors:
    """Console errors, uncaught exceptions and failed requests a page produced."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.exceptions: list[str] = []
        self.http: list[str] = []

    def all(self) -> list[str]:
        return self.console + self.exceptions + self.http


@pytest.fixture
def open_page(browser):
    """`open_page(url, width=1280, height=800)` → (page, errors); closed after the test."""
    contexts = []

    def _open(url: str, *, width: int = 1280, height: int = 800, wait_for_cards: bool = True):
        context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors = PageErrors()
        page.on("console", lambda m: errors.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.exceptions.append(str(e)))
        page.on("response", lambda r: errors.http.append(f"{r.status} {r.url}") if r.status >= 500 else None)
        page.goto(url)
        if wait_for_cards:
            page.wait_for_selector(".lm-card:not(.lm-card--loading)")
        return page, errors

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_small_library(tmp_path_factory.mktemp("small-library"))


@pytest.fixture(scope="module")
def shared_server(small_library: Library) -> Iterator[LibraryServer]:
    """One server for read-only tests of a module (never mutate through it)."""
    server = LibraryServer(small_library).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LibraryServer]:
    """A server on a new copy of the small library, for tests that change it."""
    server = LibraryServer(build_small_library(tmp_path / "library")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
