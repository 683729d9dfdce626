"""Auto-organize one model type, one run at a time across the whole library.

Owns single flight (one active auto-organize job in the job registry, checked before the
organize service is called) and what a run leaves for polling; it must not plan or move
files itself (``AutoOrganizeService`` does).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import AlreadyRunning, ConflictError
from ..jobs.job import Job, JobStatus
from ..jobs.job_registry import JobRegistry
from ..library.model_records import ModelType
from ..organize.auto_organize_service import AutoOrganizeService
from ..organize.organize_records import JOB_KEY, JOB_KIND, OrganizeProgress, OrganizeResult


class AutoOrganizeInProgressError(AlreadyRunning):
    """Another auto-organize run is active (HTTP 409)."""


class AutoOrganizeUseCase:
    """``execute`` runs (or dry-runs) auto-organize for one model type.

    Raises ``AutoOrganizeInProgressError`` before calling the organize service when a run
    is active, ``ValidationError`` for a bad template or pattern list.
    """

    def __init__(
        self, *, model_type: ModelType, organizer: AutoOrganizeService, jobs: JobRegistry[OrganizeProgress]
    ) -> None:
        self.model_type = model_type
        self._organizer = organizer
        self._jobs = jobs

    def _refuse_if_running(self) -> None:
        active = self._jobs.active_for(JOB_KEY)
        if active is not None:
            raise AutoOrganizeInProgressError(
                f"auto-organize is already running (for {active.detail.model_type.value}); "
                "wait for it to finish, then try again",
                extra={"progress": active.snapshot()},
            )

    async def execute(
        self, file_paths: Sequence[str] | None, *, exclusion_patterns: Sequence[str] = (), dry_run: bool = False
    ) -> OrganizeResult:
        """Plan and move; a dry run only plans (no files touched, no progress kept)."""
        self._refuse_if_running()
        if dry_run:
            return await self._organizer.auto_organize_models(
                self.model_type, file_paths, exclusion_patterns=exclusion_patterns, dry_run=True
            )
        results: list[OrganizeResult] = []

        async def run(job: Job[OrganizeProgress]) -> None:
            result = await self._organizer.auto_organize_models(
                self.model_type, file_paths, exclusion_patterns=exclusion_patterns, job=job
            )
            job.detail.result = result.to_json()
            results.append(result)

        job = Job(kind=JOB_KIND, key=JOB_KEY, detail=OrganizeProgress(model_type=self.model_type))
        await self._jobs.submit(job, run)
        await job.wait()
        if job.status is JobStatus.FAILED and job.error is not None:
            raise job.error
        if not results:  # cancelled: the server is shutting down
            raise ConflictError("auto-organize was stopped before it finished")
        return results[0]

    def progress(self) -> dict[str, Any] | None:
        latest = self._jobs.latest(JOB_KEY)
        return latest.snapshot() if latest is not None else None

    def clear(self) -> bool:
        """Forget the last run's progress; ``AutoOrganizeInProgressError`` while one runs."""
        self._refuse_if_running()
        return self._jobs.forget(JOB_KEY)
