"""The one outbound HTTP client for CivitAI: lookups by hash and id, model details, downloads.

Owns the shared aiohttp session, base-URL fallback, the API key header, retries through the
process-wide rate limiter and the negative cache; it returns CivitAI's JSON as plain dicts
(sidecars store them verbatim) and must not touch sidecars, the index or the disk.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
from multidict import MultiDict
from yarl import URL

from ...errors import (
    AuthenticationRequired,
    EarlyAccessRequired,
    LibraryError,
    RateLimited,
    UpstreamNotFound,
    UpstreamUnavailable,
    ValidationError,
)
from ..shared.http_session import USER_AGENT, LazySession
from .civitai_not_found_cache import NotFoundCache, hash_key, model_key, version_key
from .civitai_rate_limiter import CivitaiRateLimiter

_log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://civitai.com/api/v1"
ENV_API_BASE = "CIVITAI_API_BASE"
ENV_API_KEY = "CIVITAI_API_KEY"
BATCH_LIMIT = 100  # CivitAI's cap for POST /model-versions/by-hash and GET /models?ids=
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
# A download may take hours: only bound connecting and silence between chunks.
DEFAULT_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)

_RETRYABLE = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_PAGES = 50
_ERROR_BODY_LIMIT = 64 * 1024
_JSON_IN_THREAD_ABOVE = 64 * 1024
_HASH_RE = re.compile(r"^[0-9a-fA-F]{8,64}$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")

HTML_INSTEAD_OF_FILE = (
    "CivitAI answered with a web page instead of the model file "
    "(usually a login page: this download needs an API key, or the key is not accepted)"
)


class _Unreachable(Exception):
    """Connection-level failure at one base URL (refused, reset, DNS, timeout): try the next."""


class _NotFoundHere(Exception):
    """HTTP 404 at one base URL: another base may still know the thing."""


def download_url_for(api_base: str, version_id: int) -> str:
    """``https://civitai.com/api/v1`` → ``https://civitai.com/api/download/models/{id}``."""
    base = api_base.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/download/models/{int(version_id)}"


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.explicit_port or url.port)


class CivitaiClient:
    """Polite, typed-error access to the CivitAI REST API; build one per process and share it.

    Base URLs come from ``base_urls()`` (tried in order; ``$CIVITAI_API_BASE``, comma
    separated, overrides) and the key from ``api_key()`` or ``$CIVITAI_API_KEY``; the key only
    ever travels in the ``Authorization: Bearer`` header to a CivitAI base host. Errors raised:
    ``AuthenticationRequired`` (401, 403), ``EarlyAccessRequired`` (403 Early Access, deadline
    in ``extra``), ``UpstreamNotFound`` (410, and 404 for downloads), ``RateLimited`` (429 after
    the retries), ``UpstreamUnavailable`` (5xx, timeouts, unreachable hosts, malformed JSON,
    HTML where JSON was expected), ``ValidationError`` (malformed hashes or ids).
    """

    batch_limit = BATCH_LIMIT

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        base_urls: Callable[[], Sequence[str] | str | None] | None = None,
        api_key: Callable[[], str | None] | None = None,
        rate_limiter: CivitaiRateLimiter | None = None,
        not_found_cache: NotFoundCache | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        download_timeout: aiohttp.ClientTimeout = DEFAULT_DOWNLOAD_TIMEOUT,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        """``clock``/``sleep`` only feed the default limiter and cache (tests pass a fake clock)."""
        self._http = LazySession(timeout=timeout, session=session, factory=session_factory)
        self._base_urls = base_urls or (lambda: [DEFAULT_API_BASE])
        self._api_key = api_key or (lambda: None)
        if rate_limiter is None:
            timing: dict[str, Any] = {"clock": clock} if clock else {}
            if sleep:
                timing["sleep"] = sleep
            rate_limiter = CivitaiRateLimiter(**timing)
        self.rate_limiter = rate_limiter
        if not_found_cache is None:
            not_found_cache = NotFoundCache(clock=clock) if clock else NotFoundCache()
        self.not_found_cache = not_found_cache
        self._timeout = timeout
        self._download_timeout = download_timeout

    def __repr__(self) -> str:
        return f"CivitaiClient(bases={self.base_urls()!r}, api_key_set={self.api_key_set})"

    # ----------------------------------------------------------------- configuration

    def base_urls(self) -> list[str]:
        """The API bases to try, in order (environment first, then settings, then the default)."""
        raw: Sequence[str] | str | None = os.environ.get(ENV_API_BASE) or self._base_urls()
        if isinstance(raw, str):
            raw = raw.split(",")
        bases: list[str] = []
        for item in raw or ():
            base = str(item).strip().rstrip("/")
            if not base:
                continue
            if not base.startswith(("http://", "https://")):
                _log.warning("ignoring CivitAI API base %r: not an http(s) URL", base)
                continue
            if base not in bases:
                bases.append(base)
        return bases or [DEFAULT_API_BASE]

    def _key(self) -> str | None:
        key = self._api_key() or os.environ.get(ENV_API_KEY) or None
        return key.strip() or None if key else None

    @property
    def api_key_set(self) -> bool:
        return self._key() is not None

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and key in text else text

    # ----------------------------------------------------------------- session

    async def close(self) -> None:
        """Close the session if this client created it (idempotent)."""
        await self._http.close()

    # ----------------------------------------------------------------- public lookups

    async def get_version_by_hash(
        self, file_hash: str, *, bypass_not_found_cache: bool = False
    ) -> dict[str, Any] | None:
        """The version whose file has this hash (SHA256, AutoV1/V2/V3, CRC32, BLAKE3); None if unknown.

        A "not found" answer is remembered in the negative cache for its TTL.
        """
        value = (file_hash or "").strip().lower()
        if not _HASH_RE.match(value):
            raise ValidationError(f"not a CivitAI file hash: {file_hash!r}")
        key = hash_key(value)
        if not bypass_not_found_cache and key in self.not_found_cache:
            return None
        data = await self._get_json(f"/model-versions/by-hash/{value}", what=f"hash {value}")
        if data is None:
            self.not_found_cache.add(key)
            return None
        self.not_found_cache.discard(key)
        return self._expect_dict(data, f"hash {value}")

    async def get_versions_by_hashes(
        self, sha256s: Sequence[str], *, bypass_not_found_cache: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Lowercase SHA256 → version for every hash CivitAI knows (batches of 100).

        Hashes in the negative cache are not asked; those CivitAI does not know are added to it.
        """
        wanted: list[str] = []
        for raw in sha256s:
            value = (raw or "").strip().lower()
            if not _SHA256_RE.match(value):
                raise ValidationError(f"not a SHA256 hash: {raw!r}")
            if value in wanted:
                continue
            if not bypass_not_found_cache and hash_key(value) in self.not_found_cache:
                continue
            wanted.append(value)
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(wanted, self.batch_limit):
            found.update(await self._versions_for_chunk(list(chunk)))
        return found

    async def get_version(self, version_id: int) -> dict[str, Any] | None:
        """Version details by id; None when CivitAI answers 404 (negative-cached)."""
        vid = self._positive_id(version_id, "model version id")
        key = version_key(vid)
        if key in self.not_found_cache:
            return None
        data = await self._get_json(f"/model-versions/{vid}", what=f"model version {vid}")
        if data is None:
            self.not_found_cache.add(key)
            return None
        return self._expect_dict(data, f"model version {vid}")

    async def get_model(self, model_id: int) -> dict[str, Any] | None:
        """Model details (description, tags, creator, licence, versions); None on 404."""
        mid = self._positive_id(model_id, "model id")
        key = model_key(mid)
        if key in self.not_found_cache:
            return None
        data = await self._get_json(f"/models/{mid}", what=f"model {mid}")
        if data is None:
            self.not_found_cache.add(key)
            return None
        return self._expect_dict(data, f"model {mid}")

    async def get_models(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Model id → model for the ids CivitAI knows (``GET /models?ids=`` in batches of 100)."""
        wanted: list[int] = []
        for raw in ids:
            mid = self._positive_id(raw, "model id")
            if mid not in wanted and model_key(mid) not in self.not_found_cache:
                wanted.append(mid)
        found: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(wanted, self.batch_limit):
            found.update(await self._models_for_chunk(list(chunk)))
        return found

    async def search_models(self, query: str, *, types: Sequence[str] = (), limit: int = 5) -> list[dict[str, Any]]:
        """Models whose name matches ``query`` (``GET /models?query=&types=&limit=``), best first;
        [] when CivitAI finds none. Used to suggest a file a workflow names but nobody has."""
        text = " ".join((query or "").split())[:200]
        if not text:
            raise ValidationError("a CivitAI search needs a name")
        # ``types`` is an array parameter: repeated, as CivitAI's own site sends it
        params = MultiDict([("query", text), ("limit", str(max(1, min(int(limit), 20))))] + [("types", t) for t in types])
        data = await self._get_json("/models", what=f"models named {text!r}", params=params)  # type: ignore[arg-type]
        items = data.get("items") if isinstance(data, dict) else None
        return [m for m in items or () if isinstance(m, dict)]

    # ----------------------------------------------------------------- downloads

    async def open_download(
        self,
        version_id: int,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Start downloading a version's file; returns the open 200/206 response to stream.

        Follows CivitAI's redirect to the signed storage URL, sending the API key only to
        the CivitAI host. The caller must release the response (``async with resp:``).
        Raises the typed errors of the class; a web page or JSON where the file should be
        → ``UpstreamUnavailable``; 404 at every base → ``UpstreamNotFound``.
        """
        vid = self._positive_id(version_id, "model version id")
        what = f"model version {vid}"
        unreachable: list[str] = []
        for base in self.base_urls():
            url = URL(download_url_for(base, vid))
            if params:
                url = url.update_query({k: str(v) for k, v in params.items()})
            try:
                return await self._with_retries(
                    lambda url=url: self._open_download_once(url, headers or {}, what), what
                )
            except _Unreachable as exc:
                unreachable.append(f"{url.host}: {exc}")
            except _NotFoundHere:
                continue
        if unreachable:
            raise UpstreamUnavailable(
                self._redact(f"could not reach CivitAI to download {what} ({'; '.join(unreachable)})")
            )
        raise UpstreamNotFound(f"{what} is not available for download on CivitAI (HTTP 404)")

    async def _open_download_once(
        self, url: URL, extra_headers: dict[str, str], what: str
    ) -> tuple[int, Any, str | None]:
        session = self._http.get()
        first_origin = _origin(url)
        current = url
        key = self._key()
        for _hop in range(_MAX_REDIRECTS + 1):
            same_site = _origin(current) == first_origin
            request_headers = {"User-Agent": USER_AGENT, **extra_headers}
            if same_site:
                # JSON errors instead of a redirect to the HTML login page.
                request_headers["Content-Type"] = "application/json"
                if key:
                    request_headers["Authorization"] = f"Bearer {key}"
            try:
                resp = await session.get(
                    current,
                    headers=request_headers,
                    allow_redirects=False,
                    timeout=self._download_timeout,
                )
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                raise _Unreachable(type(exc).__name__) from None
            _log.debug("CivitAI download GET %s -> %s", current.with_query(None), resp.status)
            location = resp.headers.get("Location")
            if resp.status in _REDIRECTS and location:
                resp.release()
                current = current.join(URL(location))
                continue
            if resp.status in (200, 206):
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype in ("text/html", "application/xhtml+xml", "application/json"):
                    resp.release()
                    raise UpstreamUnavailable(HTML_INSTEAD_OF_FILE, extra={"content_type": ctype})
                return resp.status, resp, None
            try:
                body = await resp.content.read(_ERROR_BODY_LIMIT)
            except (asyncio.TimeoutError, aiohttp.ClientError):
                body = b""
            finally:
                resp.release()
            return resp.status, body, resp.headers.get("Retry-After")
        raise UpstreamUnavailable(f"too many redirects while downloading {what}")

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _positive_id(value: int, label: str) -> int:
        """An id callers parsed already (the handlers do): checked, never converted."""
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValidationError(f"invalid {label}: {value!r}")
        return value

    @staticmethod
    def _expect_dict(data: Any, what: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"CivitAI sent an unexpected answer for {what} (not an object)")
        return data

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def _get_json(self, path: str, *, what: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` at each base in turn; the decoded JSON, or None when every base says 404."""
        unreachable: list[str] = []
        for base in self.base_urls():
            try:
                return await self._call(base, "GET", path, what=what, params=params)
            except _Unreachable as exc:
                unreachable.append(f"{URL(base).host}: {exc}")
            except _NotFoundHere:
                continue
        if unreachable:
            # Some base could not be asked: "not found" would be a guess, so do not cache it.
            raise UpstreamUnavailable(f"could not reach CivitAI for {what} ({'; '.join(unreachable)})")
        return None

    async def _versions_for_chunk(self, chunk: list[str]) -> dict[str, dict[str, Any]]:
        pending = set(chunk)
        found: dict[str, dict[str, Any]] = {}
        unreachable: list[str] = []
        answered = False
        what = f"{len(chunk)} hashes"
        for base in self.base_urls():
            if not pending:
                break
            ordered = [h for h in chunk if h in pending]
            try:
                data = await self._call(base, "POST", "/model-versions/by-hash", what=what, json_body=ordered)
            except _Unreachable as exc:
                unreachable.append(f"{URL(base).host}: {exc}")
                continue
            except _NotFoundHere:
                answered = True
                continue
            answered = True
            if not isinstance(data, list):
                raise UpstreamUnavailable(f"CivitAI sent an unexpected answer for {what} (not a list)")
            for version in data:
                if not isinstance(version, dict):
                    continue
                for file in version.get("files") or ():
                    hashes = file.get("hashes") if isinstance(file, dict) else None
                    sha = str((hashes or {}).get("SHA256") or "").lower()
                    if sha in pending:
                        found[sha] = version
                        pending.discard(sha)
        if unreachable and not answered:
            raise UpstreamUnavailable(f"could not reach CivitAI for {what} ({'; '.join(unreachable)})")
        for sha in found:
            self.not_found_cache.discard(hash_key(sha))
        if not unreachable:
            self.not_found_cache.add_many(hash_key(sha) for sha in pending)
        return found

    async def _models_for_chunk(self, chunk: list[int]) -> dict[int, dict[str, Any]]:
        pending = set(chunk)
        found: dict[int, dict[str, Any]] = {}
        unreachable: list[str] = []
        answered = False
        for base in self.base_urls():
            if not pending:
                break
            ids = [mid for mid in chunk if mid in pending]
            params: dict[str, str] | None = {"ids": ",".join(map(str, ids))}
            what = f"{len(ids)} models"
            try:
                for _page in range(_MAX_PAGES):
                    data = await self._call(base, "GET", "/models", what=what, params=params)
                    answered = True
                    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                        raise UpstreamUnavailable(f"CivitAI sent an unexpected answer for {what}")
                    for model in data["items"]:
                        if isinstance(model, dict) and isinstance(model.get("id"), int):
                            if model["id"] in pending:
                                found[model["id"]] = model
                                pending.discard(model["id"])
                    next_page = (data.get("metadata") or {}).get("nextPage")
                    if not next_page or not pending:
                        break
                    # Follow the server's cursor, but on our own base (it may name another host).
                    params = dict(URL(str(next_page)).query)
            except _Unreachable as exc:
                unreachable.append(f"{URL(base).host}: {exc}")
            except _NotFoundHere:
                answered = True
                continue
        if unreachable and not answered:
            raise UpstreamUnavailable(f"could not reach CivitAI for models ({'; '.join(unreachable)})")
        if not unreachable:
            self.not_found_cache.add_many(model_key(mid) for mid in pending)
        return found

    async def _call(
        self,
        base: str,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """One API call at one base, retried on 429/5xx; decoded JSON on 200.

        Raises ``_NotFoundHere`` on 404, ``_Unreachable`` on connection failures and
        timeouts, the typed errors otherwise.
        """
        start = URL(base + path)

        async def once() -> tuple[int, Any, str | None]:
            session = self._http.get()
            url = start
            query: dict[str, str] | None = params
            try:
                for _hop in range(_MAX_REDIRECTS + 1):
                    # Redirects are followed by hand: the key goes to the configured base's
                    # origin only, never to wherever a redirect points.
                    headers = self._headers() if _origin(url) == _origin(start) else {"Accept": "application/json", "User-Agent": USER_AGENT}
                    async with session.request(
                        method, url, params=query, json=json_body, headers=headers,
                        timeout=self._timeout, allow_redirects=False,
                    ) as resp:
                        _log.debug("CivitAI %s %s -> %s", method, url.with_query(None), resp.status)
                        location = resp.headers.get("Location")
                        if resp.status in _REDIRECTS and location:
                            url, query = resp.url.join(URL(location)), None
                            continue
                        if resp.status == 200:
                            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                            body = await resp.read()
                            return 200, await self._decode(body, ctype, what), None
                        body = await resp.content.read(_ERROR_BODY_LIMIT)
                        return resp.status, body, resp.headers.get("Retry-After")
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                kind = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                _log.debug("CivitAI %s %s failed: %s", method, start, kind)
                raise _Unreachable(kind) from None
            raise UpstreamUnavailable(f"too many redirects from CivitAI for {what}")

        return await self._with_retries(once, what)

    async def _with_retries(self, once: Callable[[], Any], what: str) -> Any:
        """Run ``once`` under the rate limiter; back off on 429/5xx, map final statuses to errors."""
        limiter = self.rate_limiter
        attempt = 0
        while True:
            await limiter.acquire()
            status, payload, retry_after_header = await once()
            if status in (200, 206):
                return payload
            if status in _RETRYABLE:
                if attempt >= limiter.max_retries:
                    if status == 429:
                        raise RateLimited(
                            f"CivitAI is rate limiting requests for {what}; try again later",
                            extra={"upstream_status": 429},
                        )
                    raise UpstreamUnavailable(
                        f"CivitAI failed to answer for {what} (HTTP {status} after {attempt + 1} tries)",
                        extra={"upstream_status": status},
                    )
                retry_after = CivitaiRateLimiter.parse_retry_after(retry_after_header)
                delay = limiter.backoff_delay(attempt, retry_after)
                _log.info("CivitAI answered HTTP %s for %s; retrying in %.1f s", status, what, delay)
                limiter.pause(delay)
                attempt += 1
                continue
            if status == 404:
                raise _NotFoundHere()
            raise self._error_for(status, payload, what)

    async def _decode(self, body: bytes, ctype: str, what: str) -> Any:
        if "html" in ctype or body.lstrip()[:1] == b"<":
            raise UpstreamUnavailable(
                f"CivitAI answered with a web page instead of data for {what} "
                "(maintenance, a login wall or a proxy in the way)"
            )
        try:
            if len(body) > _JSON_IN_THREAD_ABOVE:
                return await asyncio.to_thread(json.loads, body)
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise UpstreamUnavailable(f"CivitAI sent malformed JSON for {what}") from None

    def _error_for(self, status: int, body: Any, what: str) -> LibraryError:
        info: dict[str, Any] = {}
        if isinstance(body, (bytes, bytearray)) and body:
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict):
                    info = parsed
            except (ValueError, UnicodeDecodeError):
                info = {}
        upstream = self._redact(str(info.get("error") or info.get("message") or "")[:200])
        extra: dict[str, Any] = {"upstream_status": status}
        if status == 401:
            if self.api_key_set:
                message = f"CivitAI rejected the API key for {what}: the key is invalid or expired"
            else:
                message = f"CivitAI requires an API key for {what}: add your key in the settings"
            return AuthenticationRequired(message, extra=extra)
        if status == 403 and "early access" in upstream.lower():
            deadline = info.get("deadline")
            extra["deadline"] = deadline
            until = f" until {deadline}" if deadline else ""
            return EarlyAccessRequired(
                f"{what} is in Early Access on CivitAI{until}: it can only be downloaded "
                "after buying early access on civitai.com or once early access ends",
                extra=extra,
            )
        if status == 403:
            reason = f": {upstream}" if upstream else ""
            return AuthenticationRequired(f"CivitAI refused access to {what} (HTTP 403){reason}", extra=extra)
        if status == 410:
            return UpstreamNotFound(f"{what} was removed from CivitAI (HTTP 410)", extra=extra)
        reason = f": {upstream}" if upstream else ""
        return UpstreamUnavailable(f"CivitAI rejected the request for {what} (HTTP {status}){reason}", extra=extra)
