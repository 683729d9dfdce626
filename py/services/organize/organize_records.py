"""Records of auto-organize: the plan (moves and skips with reasons), the run's result and its job.

Owns the JSON shapes of a plan, a result and the progress snapshot (one shape for the
``/ws/fetch-progress`` push and the polling route); it must not touch files or the index.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...errors import LibraryError
from ..library.model_records import ModelType

MESSAGE_TYPE = "auto_organize_progress"
SNAPSHOT_KEY = "auto_organize"  # one run at a time across every model type


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


class OrganizeStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class AutoOrganizeJob:
    """Progress of one run; changes only through its methods."""

    model_type: ModelType
    dry_run: bool = False
    kind: str = "auto_organize"
    status: OrganizeStatus = OrganizeStatus.QUEUED
    total: int = 0
    processed: int = 0
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    current_name: str = ""
    message: str = ""
    error: str = ""
    error_code: str = ""
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in (OrganizeStatus.COMPLETED, OrganizeStatus.FAILED, OrganizeStatus.CANCELLED)

    def start(self, *, total: int, skipped: int) -> None:
        self.status = OrganizeStatus.RUNNING
        self.total, self.skipped = total, skipped

    def advance(self, *, moved: bool, current_name: str) -> None:
        self.processed += 1
        if moved:
            self.moved += 1
        else:
            self.failed += 1
        self.current_name = current_name

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, LibraryError):
            self.error, self.error_code = exc.message, exc.code
        else:
            self.error, self.error_code = "internal error; see the server log", "internal_error"
        self._end(OrganizeStatus.FAILED)

    def cancel(self) -> None:
        self._end(OrganizeStatus.CANCELLED)

    def finish(self, result: OrganizeResult) -> None:
        self.result = result.to_json()
        self._end(OrganizeStatus.COMPLETED)

    def _end(self, status: OrganizeStatus) -> None:
        self.status = status
        self.current_name = ""
        self.finished_at = time.time()

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "model_type": self.model_type.value,
            "status": self.status.value,
            "dry_run": self.dry_run,
            "total": self.total,
            "processed": self.processed,
            "moved": self.moved,
            "skipped": self.skipped,
            "failed": self.failed,
            "progress": round(100.0 * self.processed / self.total, 1) if self.total else (100.0 if self.is_terminal else 0.0),
            "current_name": self.current_name,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.error:
            data["error"], data["code"] = self.error, self.error_code
        if self.result is not None:
            data["result"] = self.result
        return data
