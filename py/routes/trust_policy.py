"""Who may talk to the library: the host names it answers to and the origins that may change it.

Owns the rules against DNS rebinding (a ``Host`` allow-list) and against requests another
site or another local origin makes (fetch metadata, ``Origin``, ``Referer``); it must not
know routes or handlers (the registrar's guard applies it to each one).

- A name passes when it is an IP literal (rebinding needs a DNS name), ``localhost`` or
  ``*.localhost``, this machine's own host name (``name`` / ``name.local``), or a name the
  user configured (``--allowed-host``, ``LM_ALLOWED_HOSTS``, ``allowed_hosts`` in the
  settings file; ``*.example.lan`` allows a whole domain).
- A request that changes something passes when it carries no browser fetch metadata
  (curl, scripts, ComfyUI's backend), or ``Sec-Fetch-Site`` is ``same-origin``/``none``, or
  its ``Origin`` is allowed: this server as the request names it, a configured origin, or a
  browser extension where the route serves extensions. ``same-site`` (another port of
  127.0.0.1) and ``cross-site`` are refused, and so is a foreign ``Referer`` without ``Origin``.
"""
from __future__ import annotations

import html
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import CrossSiteRequest, HostNotAllowed

__all__ = ["EXTENSION_SCHEMES", "TrustPolicy", "host_refusal_page", "split_env_list"]

ENV_ALLOWED_HOSTS = "LM_ALLOWED_HOSTS"
ENV_ALLOWED_ORIGINS = "LM_ALLOWED_ORIGINS"
EXTENSION_SCHEMES = frozenset({"chrome-extension", "moz-extension", "safari-web-extension"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


def split_env_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (how the environment lists names)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header → (lower-case name without brackets or trailing dot, port or None)."""
    text = value.strip().lower()
    port: int | None = None
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        name, rest = (text[1:end], text[end + 1 :]) if end > 0 else (text, "")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return name, port
    if text.count(":") == 1:
        name, _, raw_port = text.partition(":")
        if raw_port.isdigit():
            port = int(raw_port)
        return name.rstrip("."), port
    return text.rstrip("."), None  # a bare IPv6 literal has several colons


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        return False
    return True


def _normal_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` with the default port dropped, or None when not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _authority(name: str, port: int | None, scheme: str) -> str:
    shown = f"[{name}]" if ":" in name else name
    return shown if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"


def machine_names() -> set[str]:
    """This machine's own host name and its mDNS form: names no other site can answer to."""
    try:
        name = socket.gethostname().strip().lower().rstrip(".")
    except OSError:
        return set()
    if not name or _is_ip_literal(name):
        return set()
    short = name.split(".", 1)[0]
    return {name, short, f"{short}.local"}


@dataclass(slots=True, frozen=True, kw_only=True)
class TrustPolicy:
    """The allow-lists one process applies to every request it serves for the library."""

    host_names: frozenset[str] = frozenset()
    host_suffixes: tuple[str, ...] = ()  # '.example.lan' from '*.example.lan'
    origins: frozenset[str] = frozenset()  # normalised 'scheme://host[:port]'
    any_origin: bool = False  # the host said so (ComfyUI's --enable-cors-header without origin)

    @classmethod
    def build(
        cls, *, hosts: Iterable[str] = (), origins: Iterable[str] = (), any_origin: bool = False,
        include_machine_names: bool = True,
    ) -> "TrustPolicy":
        """A policy from configured names (``*.domain`` allows a domain) and origins."""
        names: set[str] = machine_names() if include_machine_names else set()
        suffixes: list[str] = []
        for raw in hosts:
            text = str(raw).strip().lower().rstrip(".")
            if not text:
                continue
            if text.startswith("*."):
                suffixes.append(text[1:])
            else:
                names.add(_split_host(text)[0])
        clean_origins = set()
        for raw in origins:
            if str(raw).strip() == "*":
                any_origin = True
                continue
            normal = _normal_origin(str(raw))
            if normal:
                clean_origins.add(normal)
                names.add(_split_host(urlsplit(normal).netloc)[0])
        return cls(
            host_names=frozenset(names), host_suffixes=tuple(sorted(set(suffixes))),
            origins=frozenset(clean_origins), any_origin=any_origin,
        )

    @classmethod
    def from_sources(
        cls, *, configured_hosts: Iterable[str] = (), configured_origins: Iterable[str] = (),
        environ: Mapping[str, str] | None = None, any_origin: bool = False,
    ) -> "TrustPolicy":
        """Configured names plus those of ``LM_ALLOWED_HOSTS`` / ``LM_ALLOWED_ORIGINS``."""
        env = os.environ if environ is None else environ
        return cls.build(
            hosts=[*configured_hosts, *split_env_list(env.get(ENV_ALLOWED_HOSTS))],
            origins=[*configured_origins, *split_env_list(env.get(ENV_ALLOWED_ORIGINS))],
            any_origin=any_origin,
        )

    # -- names -------------------------------------------------------------------
    def host_allowed(self, host_header: str | None) -> bool:
        """True when the ``Host`` a request names is one this server answers to.

        No header at all (HTTP/1.0 scripts) passes: a browser always sends one.
        """
        if host_header is None or not host_header.strip():
            return True
        name, _ = _split_host(host_header)
        if not name:
            return False
        if _is_ip_literal(name) or name == "localhost" or name.endswith(".localhost"):
            return True
        return name in self.host_names or any(name.endswith(s) for s in self.host_suffixes)

    def check_host(self, host_header: str | None) -> None:
        """Raises ``HostNotAllowed`` naming the refused name and how to allow it."""
        if self.host_allowed(host_header):
            return
        name, _ = _split_host(host_header or "")
        raise HostNotAllowed(
            f"this server does not answer to the name '{name[:100]}'. If you opened it by that name "
            f"on purpose, allow it: start with --allowed-host {name[:100]} (standalone), set "
            f"{ENV_ALLOWED_HOSTS}={name[:100]}, or add it to \"allowed_hosts\" in the settings file",
            extra={"host": name[:255]},
        )

    # -- origins -----------------------------------------------------------------
    def origin_allowed(self, origin: str, host_header: str | None, scheme: str, *, extensions: bool) -> bool:
        """True for this server's own origin (as the request names it), a configured one,
        or a browser extension on a route that serves extensions."""
        normal = _normal_origin(origin)
        if normal is None:
            return False  # 'null' (sandboxed frames, file://) and garbage
        parsed_scheme = normal.split("://", 1)[0]
        if parsed_scheme in EXTENSION_SCHEMES:
            return extensions
        if self.any_origin or normal in self.origins:
            return True
        if not host_header:
            return False
        name, port = _split_host(host_header)
        # Same origin: the page was loaded from the name and port this request names (the
        # Host is allowed already). Schemes may differ behind a TLS-terminating proxy.
        return normal.split("://", 1)[1] == _authority(name, port, parsed_scheme if parsed_scheme in _DEFAULT_PORTS else scheme)

    def check_change(self, headers: Mapping[str, str], scheme: str, *, extensions: bool = False) -> None:
        """Refuse a state-changing (or socket) request another site or local origin made.

        Raises ``CrossSiteRequest``.
        """
        host = headers.get("Host")
        origin = headers.get("Origin")
        site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
        if origin is not None:
            if self.origin_allowed(origin, host, scheme, extensions=extensions):
                return
            raise CrossSiteRequest(f"requests from '{origin[:100]}' may not change the library")
        if site:
            if site in _TRUSTED_FETCH_SITES:
                return
            raise CrossSiteRequest(f"{site} requests may not change the library")
        referer = headers.get("Referer")
        if referer:
            referer_origin = _normal_origin(referer)
            if referer_origin is None or not self.origin_allowed(referer_origin, host, scheme, extensions=extensions):
                raise CrossSiteRequest("requests from another site may not change the library")
        # no fetch metadata at all: curl, scripts, ComfyUI's backend


def host_refusal_page(error: HostNotAllowed) -> str:
    """The plain page a browser shows for a page request by a name not allowed."""
    name = html.escape(str(error.extra.get("host", "")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Name not allowed · Model Library</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5">
<h1>This name is not allowed</h1>
<p>The model library does not answer to <strong>{name}</strong>. A web page can point a name it
controls at your computer (DNS rebinding); refusing unknown names keeps such pages out of your library.</p>
<p>If you opened the library by this name yourself (for example a host name on your network), allow it:</p>
<ul>
<li>standalone: <code>python3 standalone.py --allowed-host {name}</code></li>
<li>any host (ComfyUI too): set the environment variable <code>{ENV_ALLOWED_HOSTS}={name}</code> before starting</li>
<li>or add <code>"allowed_hosts": ["{name}"]</code> to the library's <code>settings.json</code></li>
</ul>
<p>Then restart. <code>localhost</code> and IP addresses always work.</p>
</body></html>
"""
