"""Translations (issue 6): every locale has every key of English with the same placeholders,
plural messages carry the forms their language needs, ComfyUI-only alias folders copy their
source, and templates and front-end modules only use keys that exist. Needs no browser."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCALES = REPO / "locales"
LANGS = ("en", "zh-CN", "ja", "ko", "de", "fr", "es", "ru")
FILES = ("library.json", "main.json", "settings.json", "commands.json")
# ComfyUI's own i18n files; ComfyUI's language codes that differ from ours get a copy of them
COMFYUI_FILES = ("main.json", "settings.json", "commands.json")
COMFYUI_ALIASES = {"zh": "zh-CN"}
MODEL_TYPES = ("lora", "checkpoint", "embedding")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# CLDR plural categories (Intl.PluralRules) each language's integer counts fall into
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}
REQUIRED_PLURAL_FORMS = {
    "en": {"one", "other"}, "de": {"one", "other"}, "fr": {"one", "other"}, "es": {"one", "other"},
    "ru": {"one", "few", "many", "other"}, "zh-CN": {"other"}, "ja": {"other"}, "ko": {"other"},
}


def is_plural(value: object) -> bool:
    """A message with forms per plural category (`{"one": ..., "other": ...}`), picked by `count`."""
    return isinstance(value, dict) and "other" in value and set(value) <= PLURAL_FORMS


def flatten(data: dict, prefix: str = "") -> dict[str, str | dict[str, str]]:
    out: dict[str, str | dict[str, str]] = {}
    for key, value in data.items():
        if isinstance(value, dict) and not is_plural(value):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load(lang: str, name: str) -> dict[str, str | dict[str, str]]:
    return flatten(json.loads((LOCALES / lang / name).read_text(encoding="utf-8")))


def forms(value: str | dict[str, str]) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


def test_locales_hold_only_our_translation_files():
    found = {p.relative_to(LOCALES).as_posix() for p in LOCALES.rglob("*") if p.is_file()}
    expected = {f"{lang}/{name}" for lang in LANGS for name in FILES}
    expected |= {f"{alias}/{name}" for alias in COMFYUI_ALIASES for name in COMFYUI_FILES}
    assert found == expected


@pytest.mark.parametrize("alias", sorted(COMFYUI_ALIASES))
def test_comfyui_alias_folder_copies_its_source_locale(alias: str):
    for name in COMFYUI_FILES:
        source = json.loads((LOCALES / COMFYUI_ALIASES[alias] / name).read_text(encoding="utf-8"))
        assert json.loads((LOCALES / alias / name).read_text(encoding="utf-8")) == source, name


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("lang", LANGS[1:])
def test_every_locale_has_every_key_with_the_same_placeholders(lang: str, name: str):
    english = load("en", name)
    other = load(lang, name)
    assert sorted(other) == sorted(english)
    for key, text in english.items():
        placeholders = sorted(PLACEHOLDER.findall(text["other"] if isinstance(text, dict) else text))
        for form in forms(other[key]):
            assert isinstance(form, str) and form.strip(), key
            assert sorted(PLACEHOLDER.findall(form)) == placeholders, key


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("lang", LANGS)
def test_plural_messages_have_the_forms_of_their_language(lang: str, name: str):
    plurals = {key: value for key, value in load(lang, name).items() if isinstance(value, dict)}
    for key, value in plurals.items():
        assert REQUIRED_PLURAL_FORMS[lang] <= set(value), key
        assert "{count}" in value["other"], key


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
