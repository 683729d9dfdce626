"""The ``civitai`` pytest fixture: a fresh local CivitAI test server per test.

Owns only the fixture wiring; the server itself lives in ``civitai_server``. Import the
fixture into a conftest or a test module with ``from .civitai_fixtures import civitai``.
"""
from __future__ import annotations

from typing import Any

import pytest

from .civitai_server import CivitaiTestServer, start_civitai_server


@pytest.fixture
async def civitai(aiohttp_server: Any) -> CivitaiTestServer:
    """A real CivitAI stand-in on 127.0.0.1 (``civitai.api_base`` is the API base URL)."""
    return await start_civitai_server(aiohttp_server)
