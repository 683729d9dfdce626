"""The README's route list is exactly the route table, and the table is what gets registered
(a Datasette-style docs check: a route added without docs, or docs of a removed route, fail)."""
from __future__ import annotations

import re

from aiohttp import web
from lm_plugin.py.app import register_routes
from lm_plugin.py.app_services import build_services
from lm_plugin.py.routes.route_table import (
    COMMON_ROUTE_DEFINITIONS,
    GLOBAL_ROUTE_DEFINITIONS,
    STANDALONE_ROUTE_DEFINITIONS,
    TYPE_SPECIFIC_ROUTE_DEFINITIONS,
)
from lm_plugin.py.services.shared.model_types import ModelType

from .conftest import ROOT

BLOCK = re.compile(r"<!-- route table -->\s*```text\n(.*?)```", re.S)


def as_written(path: str) -> str:
    """aiohttp patterns as the docs write them: ``{name:.+}`` is ``{name}``."""
    return re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)


def table_lines() -> set[str]:
    lines = {f"{d.method} {as_written(d.path)}" for d in COMMON_ROUTE_DEFINITIONS}
    for model_type, definitions in TYPE_SPECIFIC_ROUTE_DEFINITIONS.items():
        lines |= {f"{d.method} {as_written(d.for_prefix(model_type.prefix))}" for d in definitions}
    lines |= {f"{d.method} {as_written(d.path)}" for d in GLOBAL_ROUTE_DEFINITIONS + STANDALONE_ROUTE_DEFINITIONS}
    return lines


def readme_lines() -> set[str]:
    match = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "the README has no route table block"
    lines = (line.strip() for line in match.group(1).splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def test_the_readme_lists_exactly_the_route_table():
    documented, table = readme_lines(), table_lines()
    assert sorted(table - documented) == [], "routes missing from the README"
    assert sorted(documented - table) == [], "README routes that do not exist"


def test_the_route_table_is_exactly_what_is_registered(library, tmp_path):
    services = build_services(library.config(state_dir=tmp_path / "s"))
    registrar, _ = register_routes(web.RouteTableDef(), services, standalone=True)
    registered = {f"{method} {as_written(path)}" for method, path in registrar.registered}
    expected = set()
    for line in table_lines():
        if "{prefix}" in line:
            # the main three per prefix; every other type through one pattern (model_type_routes)
            expected |= {line.replace("{prefix}", t.prefix) for t in ModelType if t.is_core} | {line}
        else:
            expected.add(line)
    assert registered == expected
