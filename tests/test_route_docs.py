"""The README documents every route the app registers (Datasette-style docs check)."""
from __future__ import annotations

import re

from aiohttp import web

from lm_plugin.py.app import register_routes
from lm_plugin.py.app_services import build_services

from .conftest import ROOT

PREFIXES = ("loras", "checkpoints", "embeddings")


def documented_name(path: str) -> str:
    """The part of a route path the README names: what follows the type prefix."""
    for prefix in PREFIXES:
        path = path.replace(f"/api/lm/{prefix}/", "").replace(f"/lm/{prefix}", f"/{prefix}")
    return path


def test_every_registered_route_is_in_the_readme(library, tmp_path):
    services = build_services(library.config(state_dir=tmp_path / "s"))
    routes = web.RouteTableDef()
    registrar = register_routes(routes, services)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = []
    for _, path in registrar.registered:
        name = documented_name(path)
        name = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", name)  # aiohttp patterns as written in docs
        if name in ("/loras", "/checkpoints", "/embeddings", "/lm/static/{path}"):
            continue  # the pages and static files are described in prose
        if name not in readme:
            missing.append(name)
    assert missing == [], missing
