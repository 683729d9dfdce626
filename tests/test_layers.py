"""The house plan holds (issue 10): imports point down the layers, never up, and only the host
adapter (and node classes) know ComfyUI. Read from the source, so a violation fails here
before it can work by accident.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PY = ROOT / "py"
COMFYUI_MODULES = {"server", "folder_paths", "comfy", "nodes", "comfy_extras", "execution", "app", "latent_preview"}
# domain package -> the service packages it may import (besides itself); "errors" is always allowed
SERVICE_DEPENDENCIES = {
    "shared": set(),
    "jobs": set(),
    "library": {"shared"},
    "usage": {"shared"},
    "edits": {"shared", "library"},
    "civitai": {"shared", "library"},
    "organize": {"shared", "library", "edits", "jobs"},
    "downloads": {"shared", "library", "civitai", "jobs"},
    "workflows": {"shared", "library", "civitai"},
    "use_cases": {"shared", "library", "edits", "civitai", "organize", "downloads", "jobs", "usage", "workflows"},
}


def modules() -> list[Path]:
    return sorted(p for p in PY.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> list[str]:
    return list(path.relative_to(ROOT).with_suffix("").parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of import nodes inside ``if TYPE_CHECKING:`` (annotations only: the route
    controllers name the composition root's type, they import nothing from it at run time)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports at run time, as a dotted path from the plugin root
    (``py.services.x``), or as written for absolute imports; with the line number."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = dotted(path)[:-1]
    annotations_only = _type_checking_only(tree)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
    return found


def test_nothing_but_the_host_adapter_imports_comfyui():
    offenders = []
    for path in modules():
        parts = dotted(path)
        if parts[:2] == ["py", "host"] or parts[:2] == ["py", "nodes"]:
            continue
        for target, line in imports_of(path):
            if target.split(".")[0] in COMFYUI_MODULES:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offenders == []


def test_services_never_import_routes_host_or_the_composition_root():
    offenders = []
    for path in modules():
        if dotted(path)[:2] != ["py", "services"]:
            continue
        for target, line in imports_of(path):
            if target.startswith(("py.routes", "py.host", "py.app", "py.nodes")):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offenders == []


def test_routes_never_import_the_host():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in modules() if dotted(path)[:2] == ["py", "routes"]
        for target, line in imports_of(path) if target.startswith(("py.host", "py.app"))
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(SERVICE_DEPENDENCIES))
def test_each_domain_package_imports_only_the_packages_below_it(package):
    allowed = SERVICE_DEPENDENCIES[package] | {package}
    offenders = []
    for path in sorted((PY / "services" / package).rglob("*.py")):
        for target, line in imports_of(path):
            parts = target.split(".")
            if parts[:2] == ["py", "services"] and len(parts) > 2 and parts[2] not in allowed:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert offenders == []


def test_every_package_says_what_it_owns():
    missing = [
        str(init.relative_to(ROOT)) for init in sorted(PY.rglob("__init__.py"))
        if "__pycache__" not in init.parts and len((ast.get_docstring(ast.parse(init.read_text())) or "").strip()) < 20
    ]
    assert missing == []
