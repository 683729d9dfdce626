"""Translations (issue 6): every locale has every key of English with the same placeholders,
and templates and front-end modules only use keys that exist. Needs no browser."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCALES = REPO / "locales"
LANGS = ("en", "zh-CN", "ja", "ko", "de", "fr", "es", "ru")
FILES = ("library.json", "main.json", "settings.json", "commands.json")
MODEL_TYPES = ("lora", "checkpoint", "embedding")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def flatten(data: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load(lang: str, name: str) -> dict[str, str]:
    return flatten(json.loads((LOCALES / lang / name).read_text(encoding="utf-8")))


def test_locales_hold_only_our_translation_files():
    found = {p.relative_to(LOCALES).as_posix() for p in LOCALES.rglob("*") if p.is_file()}
    assert found == {f"{lang}/{name}" for lang in LANGS for name in FILES}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_locale_has_every_key_with_the_same_placeholders(lang: str, name: str):
    english = load("en", name)
    other = load(lang, name)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        assert isinstance(other[key], str) and other[key].strip(), key
        assert sorted(PLACEHOLDER.findall(other[key])) == sorted(PLACEHOLDER.findall(text)), key


def used_keys() -> dict[str, set[str]]:
    """Keys referenced by templates and by web/app modules, with the files using them."""
    top_level = set(json.loads((LOCALES / "en" / "library.json").read_text(encoding="utf-8")))
    uses: dict[str, set[str]] = {}
    literal = re.compile(r"""['"]([a-z_]+(?:\.[a-z0-9_]+)+)['"]""")
    for path in sorted((REPO / "web" / "app").rglob("*.js")):
        for key in literal.findall(path.read_text(encoding="utf-8")):
            if key.split(".")[0] in top_level:
                uses.setdefault(key, set()).add(path.name)
    template_key = re.compile(r"""'([a-z_.]+)'\s*\|\s*t\b|data-i18n(?:-[a-z]+)?="([^"]+)\"""")
    for path in sorted((REPO / "templates").glob("*.html")):
        for a, b in template_key.findall(path.read_text(encoding="utf-8")):
            key = a or b
            keys = [key.replace("{{ mt.model_type }}", t) for t in MODEL_TYPES] if "{{" in key else [key]
            for k in keys:
                uses.setdefault(k, set()).add(path.name)
    return uses


def test_templates_and_modules_use_only_existing_keys():
    english = load("en", "library.json")
    uses = used_keys()
    assert len(uses) > 200  # the scan really found the keys
    missing = {key: sorted(files) for key, files in uses.items() if key not in english}
    assert missing == {}
