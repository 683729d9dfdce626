"""The one outbound fetch of images and videos the library allows: only from hosts the
caller names, every redirect hop checked again, bounded in size and time.

Owns the URL check, the one session, redirects and size limits; it must not decide which
hosts are allowed (each caller passes its allow-list) nor store what it fetched.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from ...errors import PayloadTooLarge, UpstreamNotFound, UpstreamUnavailable, ValidationError
from .http_session import LazySession

__all__ = ["FetchedMedia", "RemoteImageFetcher"]

MAX_REDIRECTS = 3
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10, sock_read=30)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 256 * 1024


@dataclass(slots=True, frozen=True, kw_only=True)
class FetchedMedia:
    body: bytes
    content_type: str  # lower-case, without parameters ('' when the host sent none)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the image is larger than {max(1, limit // (1024 * 1024))} MiB")


class RemoteImageFetcher:
    """Fetches media from allowed hosts; one session for the process, closed by ``close()``."""

    def __init__(self, *, timeout: aiohttp.ClientTimeout = _TIMEOUT) -> None:
        self._http = LazySession(timeout=timeout)

    @staticmethod
    def check_url(url: object, allowed_hosts: Iterable[str], *, name: str = "image_url") -> URL:
        """``url`` as a ``URL`` when it is http(s) on an allowed host; ``ValidationError`` otherwise."""
        if not isinstance(url, str) or not url.strip():
            raise ValidationError(f"'{name}' is required")
        text = url.strip()
        if len(text) > 4096 or not text.isprintable():
            raise ValidationError(f"'{name}' is not a valid URL")
        try:
            text.encode("utf-8")
            parsed = URL(text)
            host = (parsed.host or "").lower()
        except (UnicodeError, ValueError, TypeError):
            raise ValidationError(f"'{name}' is not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not host:
            raise ValidationError(f"'{name}' must be an http(s) URL")
        allowed = {h.lower() for h in allowed_hosts}
        if host not in allowed:
            raise ValidationError(
                f"previews are fetched only from {', '.join(sorted(allowed)) or 'no host'}; not from '{host[:100]}'"
            )
        return parsed

    async def close(self) -> None:
        await self._http.close()

    async def fetch(
        self, url: str, *, allowed_hosts: Iterable[str], max_bytes: int | Callable[[str], int]
    ) -> FetchedMedia:
        """The body at ``url`` (redirects followed while they stay on allowed hosts).

        ``max_bytes`` is a limit, or a function of the content type giving one. Raises
        ``ValidationError`` (not an allowed URL, also after a redirect), ``UpstreamNotFound``
        (404), ``UpstreamUnavailable`` (another status, no answer, too many redirects) and
        ``PayloadTooLarge`` (as soon as the body passes the limit; the rest is not read).
        """
        hosts = list(allowed_hosts)
        current = self.check_url(url, hosts)
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                async with self._http.get().get(current, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location:
                        current = self.check_url(str(current.join(URL(location))), hosts)
                        continue
                    if resp.status == 404:
                        raise UpstreamNotFound(f"no image at '{str(current)[:200]}'")
                    if resp.status != 200:
                        raise UpstreamUnavailable(f"the image host answered {resp.status} for '{str(current)[:200]}'")
                    content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    limit = max_bytes(content_type) if callable(max_bytes) else max_bytes
                    if (resp.content_length or 0) > limit:
                        raise _too_large(limit)
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise _too_large(limit)
                        chunks.append(chunk)
                    return FetchedMedia(body=b"".join(chunks), content_type=content_type)
            raise UpstreamUnavailable(f"too many redirects for '{url[:200]}'")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamUnavailable(f"could not fetch '{url[:200]}': {exc.__class__.__name__}") from exc
