"""The Jinja2 environment of the full pages, made when a page is first rendered.

Jinja2 and an environment cost about 8 MiB, which a library used only through ComfyUI's
sidebar, the API or nodes never needs. Owns the template folder, autoescaping and the
pages' globals and filters; rendering stays with the page handlers.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..services.shared.server_i18n import ServerI18n

if TYPE_CHECKING:
    import jinja2


class PageTemplates:
    """One lazily built environment for every page of the server."""

    def __init__(self, *, folder: Path, host_name: str, i18n: ServerI18n) -> None:
        self._folder = folder
        self._host_name = host_name
        self._i18n = i18n
        self._env: "jinja2.Environment | None" = None

    @property
    def env(self) -> "jinja2.Environment":
        if self._env is None:
            import jinja2

            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(self._folder)),
                autoescape=jinja2.select_autoescape(["html", "xml"]),
                enable_async=True,
            )
            env.globals["host"] = self._host_name  # the pages offer "Add to workflow" only when ComfyUI serves them
            i18n = self._i18n

            @jinja2.pass_context
            def translate(context: Mapping[str, Any], key: str) -> str:
                return i18n.translate(key, context.get("lang") or "en")

            env.filters["t"] = translate
            self._env = env
        return self._env

    def get(self, name: str) -> "jinja2.Template":
        return self.env.get_template(name)

