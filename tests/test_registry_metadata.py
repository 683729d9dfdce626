"""The pyproject metadata the Comfy Registry needs, checked without comfy-cli.

.ci/run runs the registry's own `comfy node validate`; these tests are the fast, offline
part of it, plus what that command does not look at (the licence file, the icon file, the
placeholder marking). The rules mirror comfy-cli 1.23 (`comfy_cli/registry/config_parser.py`)
and https://docs.comfy.org/registry/specifications.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT_TEXT = (REPO / "pyproject.toml").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads(PYPROJECT_TEXT)
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]

ICON_PATH = "web/app/styles/icon.svg"
SVG_NS = "{http://www.w3.org/2000/svg}"
# The registry's limit for icons (docs: "Maximum resolution: 800px x 400px").
ICON_MAX_W, ICON_MAX_H = 800, 400


def _comment_above(key: str) -> str:
    """The run of `#` comment lines right above the line that sets `key`."""
    lines = PYPROJECT_TEXT.splitlines()
    index = next(i for i, line in enumerate(lines) if re.match(rf"\s*{re.escape(key)}\s*=", line))
    comments: list[str] = []
    for line in reversed(lines[:index]):
        if not line.lstrip().startswith("#"):
            break
        comments.append(line)
    return "\n".join(reversed(comments))


def test_name_is_a_valid_node_id():
    # The node id: under 100 characters, alphanumerics and - _ ., no two specials in a row,
    # starting with a letter.
    name = PROJECT["name"]
    assert len(name) < 100
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name), name
    assert not re.search(r"[._-]{2}", name), name
    assert name[-1].isalnum(), name


def test_version_is_semver():
    # Static, X.Y.Z: `comfy node validate` errors on an empty version.
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"]), PROJECT["version"]


def test_description_is_set():
    assert PROJECT["description"].strip()


def test_license_is_mit_and_the_licence_file_ships():
    # One of the two forms the registry accepts: {text = ...} or {file = ...}.
    assert PROJECT["license"] == {"text": "MIT"}
    licence = REPO / "LICENSE"
    assert licence.is_file(), "LICENSE is missing"
    text = licence.read_text(encoding="utf-8")
    assert text.startswith("MIT License\n"), "LICENSE is not the MIT licence"
    assert "Copyright (c) the Model Library contributors" in text
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert "License :: OSI Approved :: MIT License" in PROJECT.get("classifiers", [])


def test_classifiers_are_ones_the_registry_reads():
    # comfy-cli warns, and then ignores them all, on an OS classifier of another family or
    # on any "Environment ::" value that is not one of its accelerators.
    classifiers = PROJECT.get("classifiers", [])
    os_values = [c.removeprefix("Operating System :: ") for c in classifiers if c.startswith("Operating System :: ")]
    assert os_values, "no Operating System classifier"
    for value in os_values:
        assert value.startswith(("Microsoft", "POSIX", "MacOS", "OS Independent")), value
    accelerators = {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend", "GPU :: Apple Metal"}
    for c in classifiers:
        if c.startswith("Environment ::"):
            assert c.removeprefix("Environment :: ") in accelerators, c


def test_repository_is_a_marked_placeholder():
    # Until the project has a public home: a host that can never resolve, and a comment
    # saying so. When it gets one, set Repository and Icon to it and update this test.
    repository = PROJECT["urls"]["Repository"]
    parts = urlparse(repository)
    assert parts.scheme == "https"
    assert parts.hostname and parts.hostname.endswith(".invalid"), repository
    assert "PLACEHOLDER" in _comment_above("Repository"), "Repository placeholder is not marked with a comment"


def test_tool_comfy_identity_is_set():
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"]), COMFY["PublisherId"]
    assert COMFY["DisplayName"].strip()


def test_icon_is_a_url_to_the_shipped_svg():
    # The registry takes a URL, not a path: the raw URL of the shipped file under the same
    # Repository prefix, so both change together.
    icon = COMFY["Icon"]
    assert icon == f"{PROJECT['urls']['Repository']}/raw/main/{ICON_PATH}", icon
    assert not ICON_PATH.startswith("web/comfyui/"), "ComfyUI imports everything under web/comfyui"


def _length(value: str | None) -> float | None:
    if value is None:
        return None
    match = re.fullmatch(r"\s*([0-9.]+)\s*(px)?\s*", value)
    assert match, f"icon size {value!r} is not in pixels"
    return float(match.group(1))


def test_icon_file_is_a_static_svg_within_the_registry_limits():
    path = REPO / ICON_PATH
    assert path.is_file(), f"{ICON_PATH} is missing"
    root = ET.fromstring(path.read_bytes())
    assert root.tag == f"{SVG_NS}svg", root.tag
    view_box = [float(v) for v in root.get("viewBox", "").replace(",", " ").split()]
    assert len(view_box) == 4 and view_box[2] > 0 and view_box[3] > 0, root.get("viewBox")
    width = _length(root.get("width")) or view_box[2]
    height = _length(root.get("height")) or view_box[3]
    assert width <= ICON_MAX_W and height <= ICON_MAX_H, (width, height)
    # An icon is a picture: nothing that runs or loads something else.
    for element in root.iter():
        assert element.tag not in {f"{SVG_NS}script", f"{SVG_NS}foreignObject", f"{SVG_NS}image"}, element.tag
        for attribute, value in element.attrib.items():
            assert not attribute.lower().startswith("on"), attribute
            assert "href" not in attribute or value.startswith("#"), (attribute, value)


def test_requires_comfyui_is_a_version_range_the_registry_parses():
    # comfy-cli drops (with a warning) anything but [operator]X.Y.Z[-suffix], comma-separated.
    spec = COMFY.get("requires-comfyui", "")
    assert spec
    for part in spec.split(","):
        assert re.fullmatch(r"(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?", part.strip()), spec


def test_includes_and_web_are_safe():
    # `includes` adds folders to the registry zip; each must exist. `web` would make ComfyUI
    # register a second web folder beside WEB_DIRECTORY (web/comfyui) and import its .js.
    for folder in COMFY.get("includes", []):
        assert (REPO / folder).is_dir(), folder
    assert "web" not in COMFY
