"""Records of model downloads: the plan, the job (progress, status, error) and its errors.

Owns the one snapshot shape every transport shows and the stored form of a job (history and
restart-resume); it must not do I/O. Jobs change only through their methods.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...errors import ConflictError, LibraryError, UpstreamUnavailable
from ..library.model_records import ModelType

MESSAGE_TYPE = "download_progress"
_RATE_WINDOW_SECONDS = 3.0
_SAMPLE_SPACING_SECONDS = 0.1


class DownloadStatus(str, Enum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    VERIFYING = "verifying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED})


class DownloadIntegrityError(UpstreamUnavailable):
    """The bytes received are not the file CivitAI describes (hash or size mismatch, web page)."""

    code = "download_corrupt"


class DownloadCancelledError(ConflictError):
    """A download someone waited for was cancelled."""

    code = "download_cancelled"


@dataclass(slots=True, frozen=True, kw_only=True)
class DownloadPlan:
    """What to fetch and where: decided before the job is queued, stored with it."""

    version_id: int
    model_id: int
    model_type: ModelType
    target_dir: str  # absolute, forward slashes, inside a root of ``model_type``
    file_name: str  # the planned final name; the free name actually used may differ
    sha256: str = ""  # CivitAI's SHA256 of the file, lowercase ('' = unknown)
    size: int = 0  # CivitAI's size in bytes (0 = unknown)
    file_params: dict[str, str] = field(default_factory=dict)
    version: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[int, tuple[tuple[str, str], ...]]:
        """Same key → same download: a second request joins the active job."""
        return (self.version_id, tuple(sorted(self.file_params.items())))

    @property
    def part_path(self) -> str:
        return f"{self.target_dir}/{self.file_name}.part"

    def to_json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "model_id": self.model_id,
            "model_type": self.model_type.value,
            "target_dir": self.target_dir,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "size": self.size,
            "file_params": dict(self.file_params),
            "version": self.version,
            "model": self.model,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DownloadPlan":
        return cls(
            version_id=int(data["version_id"]),
            model_id=int(data.get("model_id") or 0),
            model_type=ModelType(data["model_type"]),
            target_dir=str(data["target_dir"]),
            file_name=str(data["file_name"]),
            sha256=str(data.get("sha256") or ""),
            size=int(data.get("size") or 0),
            file_params={str(k): str(v) for k, v in (data.get("file_params") or {}).items()},
            version=dict(data.get("version") or {}),
            model=data.get("model") if isinstance(data.get("model"), dict) else None,
        )


@dataclass(slots=True)
class DownloadJob:
    """One download's progress; updated in place only through its methods."""

    id: str
    plan: DownloadPlan
    kind: str = "download"
    status: DownloadStatus = DownloadStatus.QUEUED
    bytes_downloaded: int = 0
    total_bytes: int = 0
    bytes_per_second: float = 0.0
    file_path: str = ""
    message: str = ""
    error: str = ""
    error_code: str = ""
    error_status: int = 0
    error_extra: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def progress(self) -> float:
        if self.status is DownloadStatus.COMPLETED:
            return 100.0
        if self.total_bytes <= 0:
            return 0.0
        return round(min(100.0, 100.0 * self.bytes_downloaded / self.total_bytes), 2)

    @property
    def eta_seconds(self) -> float | None:
        if self.status is not DownloadStatus.DOWNLOADING or self.bytes_per_second <= 0 or self.total_bytes <= 0:
            return None
        return round(max(0, self.total_bytes - self.bytes_downloaded) / self.bytes_per_second, 1)

    # transitions ----------------------------------------------------------------
    def start(self, *, offset: int, total: int, now: float | None = None) -> None:
        """Bytes start flowing (from ``offset`` when resuming)."""
        now = time.monotonic() if now is None else now
        self.status = DownloadStatus.DOWNLOADING
        self.bytes_downloaded = offset
        self.total_bytes = total
        self.message = "resuming" if offset else ""
        self.started_at = self.started_at or time.time()
        self._samples = [(now, offset)]

    def advance(self, received: int, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.bytes_downloaded += received
        if self._samples and now - self._samples[-1][0] < _SAMPLE_SPACING_SECONDS:
            return  # called per network chunk: keep the rate window small and cheap
        self._samples.append((now, self.bytes_downloaded))
        while len(self._samples) > 2 and now - self._samples[0][0] > _RATE_WINDOW_SECONDS:
            self._samples.pop(0)
        first_time, first_bytes = self._samples[0]
        if now > first_time:
            self.bytes_per_second = round((self.bytes_downloaded - first_bytes) / (now - first_time), 1)

    def rewind(self, offset: int) -> None:
        """The server ignored a resume: counting starts again at ``offset``."""
        self.bytes_downloaded = offset
        self._samples = [(time.monotonic(), offset)]

    def verify(self) -> None:
        self.status = DownloadStatus.VERIFYING
        self.bytes_per_second = 0.0

    def pause(self) -> None:
        self.status = DownloadStatus.PAUSED
        self.bytes_per_second = 0.0

    def requeue(self) -> None:
        self.status = DownloadStatus.QUEUED
        self.bytes_per_second = 0.0

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, LibraryError):
            self.error, self.error_code, self.error_status = exc.message, exc.code, exc.status
            self.error_extra = {k: v for k, v in exc.extra.items() if isinstance(v, (str, int, float, bool)) or v is None}
        else:
            self.error, self.error_code, self.error_status = "internal error; see the server log", "internal_error", 500
        self._end(DownloadStatus.FAILED)

    def cancel(self) -> None:
        self._end(DownloadStatus.CANCELLED)

    def finish(self, file_path: str) -> None:
        self.file_path = file_path
        self.bytes_downloaded = max(self.bytes_downloaded, self.total_bytes)
        self._end(DownloadStatus.COMPLETED)

    def _end(self, status: DownloadStatus) -> None:
        self.status = status
        self.bytes_per_second = 0.0
        self.finished_at = time.time()

    def error_object(self) -> LibraryError:
        """The failure as a typed error (for a waiting request); cancelled → 409."""
        if self.status is DownloadStatus.CANCELLED:
            return DownloadCancelledError(f"download {self.id} was cancelled", extra={"download_id": self.id})
        error = LibraryError(self.error or "download failed", extra={**self.error_extra, "download_id": self.id})
        error.status = self.error_status or 500
        error.code = self.error_code or "download_failed"
        return error

    # wire and disk forms -------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The one shape pushed over the WebSocket and returned by polling."""
        plan = self.plan
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "download_id": self.id,
            "status": self.status.value,
            "progress": self.progress,
            "bytes_downloaded": self.bytes_downloaded,
            "total_bytes": self.total_bytes,
            "bytes_per_second": self.bytes_per_second,
            "eta_seconds": self.eta_seconds,
            "file_path": self.file_path,
            "file_name": plan.file_name,
            "target_dir": plan.target_dir,
            "model_type": plan.model_type.value,
            "model_id": plan.model_id,
            "model_version_id": plan.version_id,
            "model_name": str((plan.model or {}).get("name") or (plan.version.get("model") or {}).get("name") or ""),
            "version_name": str(plan.version.get("name") or ""),
            "message": self.message,
            "error": self.error or None,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.error:
            data["code"] = self.error_code
            data.update({k: v for k, v in self.error_extra.items() if k not in data})
        return data

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan": self.plan.to_json(),
            "status": self.status.value,
            "bytes_downloaded": self.bytes_downloaded,
            "total_bytes": self.total_bytes,
            "file_path": self.file_path,
            "error": self.error,
            "error_code": self.error_code,
            "error_status": self.error_status,
            "error_extra": self.error_extra,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "DownloadJob":
        return cls(
            id=str(data["id"]),
            plan=DownloadPlan.from_json(data["plan"]),
            status=DownloadStatus(data.get("status", "queued")),
            bytes_downloaded=int(data.get("bytes_downloaded") or 0),
            total_bytes=int(data.get("total_bytes") or 0),
            file_path=str(data.get("file_path") or ""),
            error=str(data.get("error") or ""),
            error_code=str(data.get("error_code") or ""),
            error_status=int(data.get("error_status") or 0),
            error_extra=dict(data.get("error_extra") or {}),
            created_at=float(data.get("created_at") or time.time()),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
        )
