"""One long-running flow: its status, its kind's progress detail, its error and its snapshot.

Owns the one status vocabulary and the transitions between statuses; it must not run
anything (``JobRegistry`` does) nor know how a kind counts progress (its ``detail`` does).
The error stays a typed ``LibraryError`` until it is serialised, once, for the wire.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable, Generic, Protocol, TypeVar

from ...errors import LibraryError

__all__ = ["TERMINAL", "Job", "JobDetail", "JobStatus", "JobStopped"]


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class JobStopped(Exception):
    """Raised inside a job that noticed it was asked to stop (cooperative cancel)."""


class JobDetail(Protocol):
    """What one kind of job counts, and its snapshot in the words its clients know."""

    def snapshot(self, job: "Job[Any]") -> dict[str, Any]: ...


D = TypeVar("D", bound=JobDetail)
T = TypeVar("T")
Notify = Callable[["Job[Any]"], Awaitable[None]]


class InternalError(LibraryError):
    """A job failed for a reason we did not expect; the log has the traceback."""


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True, eq=False, kw_only=True)
class Job(Generic[D]):
    """A job; it changes status only through its methods."""

    kind: str
    key: str  # single flight: one active job per key and registry
    detail: D
    id: str = field(default_factory=_new_id)
    status: JobStatus = JobStatus.QUEUED
    error: LibraryError | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _notify: Notify | None = field(default=None, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_signal(self) -> asyncio.Event:
        """Set once the job is asked to stop (for collaborators that watch an event)."""
        return self._stop

    # transitions ------------------------------------------------------------------
    def start(self) -> None:
        self.status = JobStatus.RUNNING
        self.started_at = self.started_at or time.time()

    def requeue(self) -> None:
        self.status = JobStatus.QUEUED
        self._stop = asyncio.Event()

    def pause(self) -> None:
        self.status = JobStatus.PAUSED

    def request_stop(self) -> None:
        """Ask the job to end; it is ``CANCELLING`` until its task has unwound."""
        if not self.is_terminal:
            self.status = JobStatus.CANCELLING
            self._stop.set()

    def finish(self) -> None:
        self._end(JobStatus.DONE)

    def fail(self, exc: BaseException) -> None:
        self.error = exc if isinstance(exc, LibraryError) else InternalError("internal error; see the server log")
        self._end(JobStatus.FAILED)

    def cancel(self) -> None:
        self._end(JobStatus.CANCELLED)

    def restore(
        self, status: JobStatus, *, error: LibraryError | None, created_at: float,
        started_at: float | None, finished_at: float | None,
    ) -> None:
        """Take the state a stored record kept (a job reloaded after a restart)."""
        self.status, self.error = status, error
        self.created_at, self.started_at, self.finished_at = created_at, started_at, finished_at
        if self.is_terminal:
            self._ended.set()

    def _end(self, status: JobStatus) -> None:
        self.status = status
        self.finished_at = time.time()
        self._ended.set()

    # reading -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The one shape pushed over the WebSocket and returned by polling."""
        return self.detail.snapshot(self)

    def error_fields(self) -> dict[str, Any]:
        """``error``, ``code`` and the error's JSON-safe extras; empty while there is no error."""
        if self.error is None:
            return {}
        fields: dict[str, Any] = {"error": self.error.message, "code": self.error.code}
        for name, value in self.error.extra.items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                fields.setdefault(name, value)
        return fields

    async def wait(self, timeout: float | None = None) -> "Job[D]":
        """The job once it is done, failed or cancelled."""
        await asyncio.wait_for(self._ended.wait(), timeout)
        return self

    async def until_stop_requested(self) -> None:
        await self._stop.wait()

    async def unless_stopped(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the job is asked to stop first: then abandon it and
        raise ``JobStopped`` (a CivitAI call or a pause between calls ends at once)."""
        if self.stop_requested:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise JobStopped()
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.until_stop_requested())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            raise JobStopped()
        return work.result()

    async def publish(self) -> None:
        """Tell the registry's subscribers (sockets, history) how the job stands now."""
        if self._notify is not None:
            await self._notify(self)
