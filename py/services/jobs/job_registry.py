"""The jobs of one kind and the tasks that run them: single flight, a queue, pause, cancel.

Owns every job of its kind in this process (active ones and a bounded history), the
concurrency limit, and the events subscribers get on each change; it must not know what a
job does (the runner it is given does that) nor how progress travels (subscribers do).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ...errors import AlreadyRunning, LibraryError, NotFoundError, ValidationError
from .job import Job, JobDetail, JobStatus, JobStopped

__all__ = ["JobRegistry", "Runner", "Subscriber"]

_log = logging.getLogger(__name__)

D = TypeVar("D", bound=JobDetail)
Runner = Callable[[Job[Any]], Awaitable[None]]
Subscriber = Callable[[Job[Any]], Awaitable[None]]


class JobRegistry(Generic[D]):
    """Owns the jobs of one ``kind``.

    ``submit`` queues a job and starts it once a slot is free (``concurrency`` at once); a
    second job for an active key raises ``AlreadyRunning`` (or joins it). ``cancel`` asks a
    job to stop: cooperatively (the runner watches ``job.stop_requested``) or, with
    ``cancel_tasks``, by cancelling its task. ``pause``/``resume`` stop a job and queue it
    again later. Every change is published to the subscribers.
    """

    def __init__(
        self,
        *,
        kind: str,
        concurrency: Callable[[], int] = lambda: 1,
        cancel_tasks: bool = False,
        history_limit: int | None = 200,
    ) -> None:
        self.kind = kind
        self._concurrency = concurrency
        self._cancel_tasks = cancel_tasks
        self._history_limit = history_limit
        self._jobs: dict[str, Job[D]] = {}
        self._runners: dict[str, Runner] = {}
        self._queue: deque[str] = deque()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._subscribers: list[Subscriber] = []
        self._closing = False

    # subscribers --------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, job: Job[D]) -> None:
        for subscriber in list(self._subscribers):
            try:
                await subscriber(job)
            except Exception:  # a socket or a history write must never break the job
                _log.exception("%s job %s: a subscriber failed", self.kind, job.id)

    # queries ------------------------------------------------------------------------
    def get(self, job_id: str) -> Job[D] | None:
        return self._jobs.get(job_id)

    def require(self, job_id: str) -> Job[D]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no {self.kind} with id '{job_id}'")
        return job

    def active(self) -> list[Job[D]]:
        """Queued, running, paused and stopping jobs, oldest first."""
        return sorted((j for j in self._jobs.values() if not j.is_terminal), key=lambda j: j.created_at)

    def history(self) -> list[Job[D]]:
        """Finished jobs, newest first."""
        return sorted((j for j in self._jobs.values() if j.is_terminal), key=lambda j: -(j.finished_at or 0))

    def active_for(self, key: str) -> Job[D] | None:
        return next((j for j in self.active() if j.key == key), None)

    def latest(self, key: str) -> Job[D] | None:
        """The newest job for ``key``, finished or not (what a progress poll shows)."""
        jobs = [j for j in self._jobs.values() if j.key == key]
        return max(jobs, key=lambda j: j.created_at) if jobs else None

    def is_running(self, job_id: str) -> bool:
        return job_id in self._tasks

    def running_count(self) -> int:
        return len(self._tasks)

    # commands -----------------------------------------------------------------------
    async def submit(self, job: Job[D], run: Runner, *, join_active: bool = False) -> Job[D]:
        """Queue ``job`` and start it when a slot is free; returns the job that will run.

        Raises ``AlreadyRunning`` when a job with the same key (or id) is active, unless
        ``join_active`` (then that job is returned).
        """
        active = self.active_for(job.key)
        if active is not None:
            if join_active:
                return active
            raise AlreadyRunning(f"a {self.kind} is already running for {job.key}", extra={"job_id": active.id})
        existing = self._jobs.get(job.id)
        if existing is not None and not existing.is_terminal:
            raise AlreadyRunning(f"{self.kind} id '{job.id}' is already in use by an unfinished {self.kind}")
        self.adopt(job, run)
        self._queue.append(job.id)
        await self.publish(job)
        self.pump()
        return job

    def adopt(self, job: Job[D], run: Runner | None = None) -> None:
        """Hold ``job`` (restored from a record, or about to be submitted) without starting it."""
        job._notify = self.publish
        self._jobs[job.id] = job
        if run is not None:
            self._runners[job.id] = run

    async def cancel(self, job_id: str) -> Job[D]:
        """Stop a job for good; a finished job is returned as it is."""
        job = self.require(job_id)
        if job.is_terminal:
            return job
        if job_id in self._queue:
            self._queue.remove(job_id)
        task = self._tasks.get(job_id)
        job.request_stop()
        if task is None:
            job.cancel()
            await self._ended(job)
            return job
        await self.publish(job)
        if self._cancel_tasks:
            task.cancel()
        await asyncio.gather(asyncio.shield(task), return_exceptions=True)
        return job

    async def pause(self, job_id: str) -> Job[D]:
        """Stop a job's task and keep the job to resume later (its runner picks up again)."""
        job = self.require(job_id)
        if job.status is JobStatus.PAUSED:
            return job
        if job.is_terminal or job.status is JobStatus.CANCELLING:
            raise ValidationError(f"{self.kind} {job_id} is {job.status.value} and cannot be paused")
        if job_id in self._queue:
            self._queue.remove(job_id)
        job.pause()
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.publish(job)
        return job

    async def resume(self, job_id: str) -> Job[D]:
        job = self.require(job_id)
        if job.status is not JobStatus.PAUSED:
            if job.is_terminal:
                raise ValidationError(f"{self.kind} {job_id} is {job.status.value} and cannot be resumed")
            return job
        await self.requeue(job)
        return job

    async def requeue(self, job: Job[D], run: Runner | None = None) -> None:
        """Queue a held job again (after a pause, or restored after a restart)."""
        if run is not None:
            self._runners[job.id] = run
        job.requeue()
        self._queue.append(job.id)
        await self.publish(job)
        self.pump()

    def forget(self, key: str) -> bool:
        """Drop the finished jobs of ``key`` (an active one raises ``AlreadyRunning``)."""
        if self.active_for(key) is not None:
            raise AlreadyRunning(f"a {self.kind} is running for {key}")
        gone = [j.id for j in self._jobs.values() if j.key == key]
        for job_id in gone:
            self._drop(job_id)
        return bool(gone)

    async def shutdown(self) -> None:
        """Cancel every task; jobs keep their status (a download resumes at the next start)."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # running ------------------------------------------------------------------------
    def pump(self) -> None:
        """Start queued jobs while slots are free."""
        if self._closing:
            return
        while self._queue and len(self._tasks) < max(1, self._concurrency()):
            job = self._jobs.get(self._queue.popleft())
            if job is None or job.status is not JobStatus.QUEUED:
                continue
            self._tasks[job.id] = asyncio.create_task(self._drive(job), name=f"lm-{self.kind}-{job.id}")

    async def _drive(self, job: Job[D]) -> None:
        run = self._runners[job.id]
        try:
            job.start()
            await self.publish(job)
            await run(job)
        except asyncio.CancelledError:
            if job.status is JobStatus.CANCELLING:
                job.cancel()
                await self._ended(job)
            elif job.status is not JobStatus.PAUSED and not self._closing:
                raise
            # paused, or shutting down: the job stays as it is
        except JobStopped:
            job.cancel()
            await self._ended(job)
        except Exception as exc:
            if job.status is JobStatus.CANCELLING:
                job.cancel()
            else:
                if isinstance(exc, LibraryError):
                    _log.info("%s %s failed: %s", self.kind, job.id, exc.message)
                else:
                    _log.exception("%s %s failed", self.kind, job.id)
                job.fail(exc)
            await self._ended(job)
        else:
            if job.status is JobStatus.CANCELLING:
                job.cancel()
            else:
                job.finish()
            await self._ended(job)
        finally:
            self._tasks.pop(job.id, None)
            self.pump()

    async def _ended(self, job: Job[D]) -> None:
        await self.publish(job)
        if self._history_limit is not None:
            self.prune(self._history_limit)

    def prune(self, keep: int) -> list[Job[D]]:
        """Forget all but the ``keep`` newest finished jobs; returns the forgotten ones."""
        dropped = self.history()[keep:]
        for old in dropped:
            self._drop(old.id)
        return dropped

    def _drop(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self._runners.pop(job_id, None)
