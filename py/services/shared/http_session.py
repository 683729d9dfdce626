"""The outbound HTTP session every client of ours uses: made on first use, closed with it.

Honours HTTP(S)_PROXY / NO_PROXY (``trust_env``) like every other tool on the box and names
this library in ``User-Agent``. It must not decide where requests go or what they carry.
"""
from __future__ import annotations

from collections.abc import Callable

import aiohttp

USER_AGENT = "comfyui-model-library/0.1"


class LazySession:
    """One ``aiohttp.ClientSession`` for a client, made when first needed.

    A session given at construction belongs to the caller: it is used as it is and never
    closed here. One made here (or by ``factory``) is closed by ``close()`` and made again
    if it was closed.
    """

    def __init__(
        self,
        *,
        timeout: aiohttp.ClientTimeout,
        session: aiohttp.ClientSession | None = None,
        factory: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self._timeout = timeout
        self._session = session
        self._owned = session is None
        self._factory = factory

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owned and self._session.closed):
            if self._factory is not None:
                self._session = self._factory()
            else:
                self._session = aiohttp.ClientSession(
                    trust_env=True, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
                )
            self._owned = True
        return self._session

    async def close(self) -> None:
        """Close the session if it was made here (idempotent)."""
        session, self._session = self._session, None
        if session is not None and self._owned and not session.closed:
            await session.close()
