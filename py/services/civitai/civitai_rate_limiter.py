"""The process-wide politeness policy for CivitAI: request spacing, back-off and Retry-After.

Owns *when* a request may go out and how long to wait after a 429/5xx; it never performs
HTTP itself (the client asks it for a slot and reports throttling back to it).
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)


class CivitaiRateLimiter:
    """Spaces requests and pauses every caller after throttling; build one per process.

    ``acquire()`` waits for the next free slot: at least ``min_interval`` seconds after the
    previous slot and never before a pause set by ``pause()``. A 429 seen by one caller
    therefore slows down every concurrent caller sharing the limiter. ``backoff_delay()``
    gives the delay for a retry: ``Retry-After`` when the server sent one (capped at
    ``max_retry_after``), else exponential back-off with full jitter from ``base_delay``
    doubling up to ``max_delay``. ``max_retries`` bounds the retries of one request.
    """

    def __init__(
        self,
        *,
        min_interval: float = 0.1,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        max_retries: int = 5,
        max_retry_after: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.min_interval = max(0.0, min_interval)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retries = max(0, max_retries)
        self.max_retry_after = max_retry_after
        self._clock = clock
        self._sleep = sleep
        self._random = random_fraction
        self._next_slot = float("-inf")
        self._paused_until = float("-inf")

    async def acquire(self) -> None:
        """Wait until this caller may send one request (no lock: slots are claimed synchronously)."""
        while True:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.min_interval
            if slot <= now:
                return
            await self._sleep(slot - now)
            # A pause set while we slept (another caller's 429) applies to us as well.
            if self._paused_until <= self._clock():
                return

    def pause(self, delay: float) -> None:
        """Hold every caller for ``delay`` seconds from now (throttling observed)."""
        if delay <= 0:
            return
        until = self._clock() + delay
        if until > self._paused_until:
            self._paused_until = until
            _log.info("CivitAI throttling: pausing requests for %.1f s", delay)

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return self._random() * ceiling

    @staticmethod
    def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
        """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
        if not value:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
