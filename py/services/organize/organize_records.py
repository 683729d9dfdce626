"""Records of auto-organize: the plan (moves and skips with reasons), the run's result and the
detail of its job (progress counts and the snapshot).

Owns the JSON shapes of a plan, a result and the progress snapshot (one shape for the
``/ws/fetch-progress`` push and the polling route); it must not touch files or the index.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..jobs.job import Job, JobStatus
from ..library.model_records import ModelType

MESSAGE_TYPE = "auto_organize_progress"
JOB_KIND = "auto-organize"
JOB_KEY = "auto_organize"  # one run at a time across every model type


class SkipReason(str, Enum):
    EXCLUDED = "excluded"  # matched an exclusion pattern, or the model is excluded from the library
    NO_FOLDER = "no_folder"  # the template gives no folder (no base model, tag, author, ...)
    IN_PLACE = "already_in_place"
    CONFLICT = "conflict"  # a file of that name is (or will be) in the target folder
    NOT_FOUND = "not_found"  # asked for, but not a model of this type in the library


@dataclass(slots=True, frozen=True, kw_only=True)
class PlannedMove:
    file_path: str
    target_dir: str
    target_path: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.file_path, "to": self.target_path, "target_dir": self.target_dir}


@dataclass(slots=True, frozen=True, kw_only=True)
class SkippedModel:
    file_path: str
    reason: SkipReason
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"file_path": self.file_path, "reason": self.reason.value, "detail": self.detail}


@dataclass(slots=True, frozen=True, kw_only=True)
class OrganizePlan:
    model_type: ModelType
    template: str
    moves: tuple[PlannedMove, ...] = ()
    skipped: tuple[SkippedModel, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type.value,
            "template": self.template,
            "moves": [m.to_json() for m in self.moves],
            "skipped": [s.to_json() for s in self.skipped],
        }


@dataclass(slots=True, frozen=True, kw_only=True)
class FailedMove:
    file_path: str
    target_dir: str
    error: str
    code: str

    def to_json(self) -> dict[str, Any]:
        return {"file_path": self.file_path, "target_dir": self.target_dir, "error": self.error, "code": self.code}


@dataclass(slots=True, frozen=True, kw_only=True)
class OrganizeResult:
    plan: OrganizePlan
    dry_run: bool
    moved: tuple[PlannedMove, ...] = ()
    failed: tuple[FailedMove, ...] = ()
    removed_folders: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        moves = self.plan.moves if self.dry_run else self.moved
        return {
            "dry_run": self.dry_run,
            "model_type": self.plan.model_type.value,
            "template": self.plan.template,
            "moves": [m.to_json() for m in moves],
            "skipped": [s.to_json() for s in self.plan.skipped],
            "failed": [f.to_json() for f in self.failed],
            "removed_folders": list(self.removed_folders),
            "summary": {
                "planned": len(self.plan.moves),
                "moved": 0 if self.dry_run else len(self.moved),
                "skipped": len(self.plan.skipped),
                "failed": len(self.failed),
            },
        }


# The words auto-organize progress has always used on the wire, per job status.
_WIRE_STATUS = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.PAUSED: "running",
    JobStatus.CANCELLING: "running",
    JobStatus.DONE: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


@dataclass(slots=True)
class OrganizeProgress:
    """The detail of an auto-organize job: counts, the model at hand, the result at the end."""

    model_type: ModelType
    dry_run: bool = False
    total: int = 0
    processed: int = 0
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    current_name: str = ""
    result: dict[str, Any] | None = None

    def start(self, *, total: int, skipped: int) -> None:
        self.total, self.skipped = total, skipped

    def advance(self, *, moved: bool, current_name: str) -> None:
        self.processed += 1
        if moved:
            self.moved += 1
        else:
            self.failed += 1
        self.current_name = current_name

    def snapshot(self, job: Job[Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "model_type": self.model_type.value,
            "status": _WIRE_STATUS[job.status],
            "dry_run": self.dry_run,
            "total": self.total,
            "processed": self.processed,
            "moved": self.moved,
            "skipped": self.skipped,
            "failed": self.failed,
            "progress": round(100.0 * self.processed / self.total, 1) if self.total else (100.0 if job.is_terminal else 0.0),
            "current_name": "" if job.is_terminal else self.current_name,
            "started_at": job.created_at,
            "finished_at": job.finished_at,
        }
        data.update(job.error_fields())
        if self.result is not None:
            data["result"] = self.result
        return data
