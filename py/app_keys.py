"""Typed keys for what the aiohttp application stores (no string keys)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .app_services import AppServices

SERVICES: "web.AppKey[AppServices]" = web.AppKey("lm_services")
