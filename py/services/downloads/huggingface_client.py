"""The one outbound HTTP client for the HuggingFace hub: a file's metadata from the hub's HEAD
headers (size, SHA256 of LFS files, the commit a revision points at), the file's bytes (the hub
redirects to its CDN), the first bytes of a safetensors file (its header), a repo's licence.

The hub base comes from ``$HF_ENDPOINT`` or the composition root (tests inject theirs), never
from a request or the settings API; the token (``$HF_TOKEN`` or the write-only
``huggingface_token`` setting) goes only to that base's origin, never along a redirect to the
CDN. It must not touch the disk or the index.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ...errors import AuthenticationRequired, LibraryError, UpstreamNotFound, UpstreamUnavailable
from ..shared.http_session import USER_AGENT, LazySession
from .huggingface_refs import HuggingFaceFileRef

_log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
ENV_ENDPOINT = "HF_ENDPOINT"
ENV_TOKENS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
DEFAULT_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)
MAX_HEADER_BYTES = 8 * 1024 * 1024  # a safetensors header bigger than this is not read up front
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_ERROR_BODY_LIMIT = 16 * 1024
HTML_INSTEAD_OF_FILE = (
    "HuggingFace answered with a web page instead of the model file (check that the link is a file's "
    "/resolve/ or /blob/ link and, for a gated repo, that the token has access)"
)
WEB_PAGE_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(slots=True, frozen=True, kw_only=True)
class HubFileMetadata:
    """What the hub's HEAD says about a file, before any byte of it is fetched."""

    commit: str  # the commit the revision resolves to ('' when the hub did not say)
    sha256: str  # lower-case SHA256 of an LFS file ('' for a small git file: its ETag is a git hash)
    size: int  # bytes (0 = unknown)
    etag: str
    file_url: str  # the resolve URL pinned to ``commit``: a resume gets the same bytes


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.explicit_port or url.port)


def _unquote_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


class HuggingFaceClient:
    """Typed-error access to the hub; one per process (one session).

    Raises ``AuthenticationRequired`` (401/403: gated or private; the message says whether a
    token was sent), ``UpstreamNotFound`` (404: repo, revision or file), ``UpstreamUnavailable``
    (5xx, timeouts, unreachable, a web page instead of the file; ``upstream_status`` in extra).
    """

    def __init__(
        self,
        *,
        endpoint: Callable[[], str | None] | None = None,
        token: Callable[[], str | None] | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        download_timeout: aiohttp.ClientTimeout = DEFAULT_DOWNLOAD_TIMEOUT,
    ) -> None:
        self._endpoint = endpoint or (lambda: None)
        self._token = token or (lambda: None)
        self._http = LazySession(timeout=timeout, factory=session_factory)
        self._timeout = timeout
        self._download_timeout = download_timeout

    def __repr__(self) -> str:
        return f"HuggingFaceClient(endpoint={self.endpoint()!r}, token_set={self.token_set})"

    # ----------------------------------------------------------------- configuration
    def endpoint(self) -> str:
        """The hub base: ``$HF_ENDPOINT``, else what the composition root injected, else the hub."""
        raw = os.environ.get(ENV_ENDPOINT) or self._endpoint() or DEFAULT_ENDPOINT
        base = str(raw).strip().rstrip("/")
        if not base.startswith(("https://", "http://")):
            _log.warning("ignoring HuggingFace endpoint %r: not an http(s) URL", base)
            return DEFAULT_ENDPOINT
        return base

    def is_hub_host(self, host: str) -> bool:
        """Whether a pasted URL's host is the hub this library talks to (``hf.co`` counts for the hub)."""
        ours = (URL(self.endpoint()).host or "").lower()
        host = host.lower()
        return host == ours or (ours == "huggingface.co" and host in ("hf.co", "www.huggingface.co"))

    def _key(self) -> str | None:
        value = self._token() or next((os.environ[n] for n in ENV_TOKENS if os.environ.get(n)), None)
        return value.strip() or None if value else None

    @property
    def token_set(self) -> bool:
        return self._key() is not None

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and key in text else text

    async def close(self) -> None:
        await self._http.close()

    def file_url(self, ref: HuggingFaceFileRef, revision: str | None = None) -> str:
        return self.endpoint() + ref.resolve_path(revision)

    # ----------------------------------------------------------------- requests
    def _headers(self, url: URL, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **(extra or {})}
        key = self._key()
        if key and _origin(url) == _origin(URL(self.endpoint())):
            headers["Authorization"] = f"Bearer {key}"  # the hub only: never the CDN it redirects to
        return headers

    async def _send(self, method: str, url: URL, *, headers: dict[str, str] | None = None,
                    follow: str = "all", timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """One request with redirects followed by hand (``follow``: "all", or "hub" = stop at the
        first redirect that leaves the hub's origin and return that response). The caller
        releases the response."""
        session = self._http.get()
        current = url
        for _hop in range(_MAX_REDIRECTS + 1):
            try:
                resp = await session.request(method, current, headers=self._headers(current, headers),
                                             allow_redirects=False, timeout=timeout or self._timeout)
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                kind = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                raise UpstreamUnavailable(f"could not reach HuggingFace ({current.host}: {kind})") from None
            _log.debug("HuggingFace %s %s -> %s", method, current.with_query(None), resp.status)
            location = resp.headers.get("Location")
            if resp.status in _REDIRECTS and location:
                target = current.join(URL(location))
                if follow == "hub" and _origin(target) != _origin(URL(self.endpoint())):
                    return resp
                resp.release()
                current = target
                continue
            return resp
        raise UpstreamUnavailable(f"too many redirects from HuggingFace for {url.path}")

    async def _error(self, resp: aiohttp.ClientResponse, what: str) -> LibraryError:
        try:
            body = await resp.content.read(_ERROR_BODY_LIMIT)
        except (asyncio.TimeoutError, aiohttp.ClientError):
            body = b""
        finally:
            resp.release()
        upstream = ""
        try:
            parsed = json.loads(body) if body else {}
            upstream = str(parsed.get("error") or "")[:200] if isinstance(parsed, dict) else ""
        except (ValueError, UnicodeDecodeError):
            upstream = ""
        code = resp.headers.get("X-Error-Code", "")
        extra: dict[str, Any] = {"upstream_status": resp.status, **({"hub_error": code} if code else {})}
        status = resp.status
        if status in (401, 403):
            if code == "GatedRepo" or "gated" in upstream.lower():
                reason = ("the token has no access yet: accept the conditions on the repository's page"
                          if self.token_set else "it needs a HuggingFace token: set HF_TOKEN or the huggingface_token setting")
                return AuthenticationRequired(f"{what} is in a gated repository; {reason}", extra=extra)
            if self.token_set:
                return AuthenticationRequired(f"HuggingFace refused {what} (HTTP {status}): the token is invalid "
                                              "or has no access to this repository", extra=extra)
            return AuthenticationRequired(f"HuggingFace refused {what} (HTTP {status}): the repository is private "
                                          "or gated; set HF_TOKEN or the huggingface_token setting", extra=extra)
        if status == 404:
            kind = {"RepoNotFound": "repository", "RevisionNotFound": "revision", "EntryNotFound": "file"}.get(code, "file")
            return UpstreamNotFound(f"HuggingFace has no such {kind} for {what} (HTTP 404)", extra=extra)
        reason = f": {self._redact(upstream)}" if upstream else ""
        return UpstreamUnavailable(f"HuggingFace failed for {what} (HTTP {status}){reason}", extra=extra)

    # ----------------------------------------------------------------- public
    async def file_metadata(self, ref: HuggingFaceFileRef) -> HubFileMetadata:
        """Size, SHA256 (LFS files) and commit of ``ref`` from the hub's HEAD, before any byte."""
        what = f"'{ref.path}' in {ref.repo}@{ref.revision}"
        url = URL(self.file_url(ref), encoded=True)
        resp = await self._send("HEAD", url, headers={"Accept-Encoding": "identity"}, follow="hub")
        if resp.status not in (200, 302, 301, 303, 307, 308):
            raise await self._error(resp, what)
        headers = resp.headers
        resp.release()
        commit = headers.get("X-Repo-Commit", "").strip()
        linked = _unquote_etag(headers.get("X-Linked-Etag", ""))
        etag = linked or _unquote_etag(headers.get("ETag", ""))
        size_text = headers.get("X-Linked-Size") or (headers.get("Content-Length") if resp.status == 200 else "")
        try:
            size = int(size_text or 0)
        except ValueError:
            size = 0
        sha256 = linked if len(linked) == 64 and all(c in "0123456789abcdef" for c in linked) else ""
        pinned = self.file_url(ref, commit) if commit else self.file_url(ref)
        return HubFileMetadata(commit=commit, sha256=sha256, size=size, etag=etag, file_url=pinned)

    async def open_download(self, file_url: str, *, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        """The open 200/206 response of the file (through the CDN redirect); the caller releases it.

        A 416 (nothing after the requested offset) is ``UpstreamUnavailable`` with
        ``upstream_status`` 416, as the downloader expects of every source.
        """
        url = URL(file_url, encoded=True)
        resp = await self._send("GET", url, headers=headers, timeout=self._download_timeout)
        if resp.status in (200, 206):
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype in WEB_PAGE_TYPES:
                resp.release()  # a page does not turn into the file on a retry: the caller fails at once
                raise UpstreamUnavailable(HTML_INSTEAD_OF_FILE, extra={"content_type": ctype, "web_page": True})
            return resp
        if resp.status == 416:
            resp.release()
            raise UpstreamUnavailable("HuggingFace has no bytes after the requested offset", extra={"upstream_status": 416})
        raise await self._error(resp, url.path)

    async def read_range(self, file_url: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the file)."""
        resp = await self.open_download(file_url, headers={"Range": f"bytes={start}-{start + length - 1}"})
        try:
            if resp.status == 200 and start:
                raise UpstreamUnavailable("HuggingFace ignored the byte range asked for")
            data = await resp.content.read(length) if resp.status == 206 else await resp.content.read(start + length)
            return data[:length]
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamUnavailable(f"reading the start of the file failed ({type(exc).__name__})") from None
        finally:
            resp.release()

    async def safetensors_header(self, file_url: str) -> dict[str, Any] | None:
        """The JSON header of a safetensors file, read with two small range requests; None when
        the file is not one (or its header is over ``MAX_HEADER_BYTES``)."""
        prefix = await self.read_range(file_url, 0, 8)
        if len(prefix) < 8:
            return None
        length = int.from_bytes(prefix, "little")
        if not 2 <= length <= MAX_HEADER_BYTES:
            return None
        raw = await self.read_range(file_url, 8, length)
        try:
            header = json.loads(raw) if len(raw) < 256 * 1024 else await asyncio.to_thread(json.loads, raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return header if isinstance(header, dict) else None

    async def model_info(self, repo: str, revision: str = "") -> dict[str, Any] | None:
        """``GET /api/models/<repo>[/revision/<rev>]`` (card data, licence); None when it fails."""
        path = f"/api/models/{repo}" + (f"/revision/{revision}" if revision else "")
        try:
            resp = await self._send("GET", URL(self.endpoint() + path, encoded=False), headers={"Accept": "application/json"})
        except LibraryError:
            return None
        try:
            if resp.status != 200:
                return None
            data = json.loads(await resp.content.read(2 * 1024 * 1024))
            return data if isinstance(data, dict) else None
        except (ValueError, UnicodeDecodeError, asyncio.TimeoutError, aiohttp.ClientError):
            return None
        finally:
            resp.release()
