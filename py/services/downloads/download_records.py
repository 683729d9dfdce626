"""Records of model downloads: the plan, the detail of a download job (bytes, rate, phase)
and the stored form of a job.

Owns the one snapshot shape every transport shows (in the status words download clients
have always read) and the record that keeps history and restart-resume; it must not do
I/O. A job's status is the job runtime's; the detail only counts bytes and names the phase.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import ConflictError, LibraryError, UpstreamUnavailable
from ..jobs.job import Job, JobStatus
from ..library.model_records import ModelType

MESSAGE_TYPE = "download_progress"
JOB_KIND = "download"
_RATE_WINDOW_SECONDS = 3.0
_SAMPLE_SPACING_SECONDS = 0.1

QUEUED, DOWNLOADING, VERIFYING = "queued", "downloading", "verifying"
# job status → the wire word (a running job says its phase: still opening counts as queued)
_WIRE_STATUS = {
    JobStatus.QUEUED: QUEUED,
    JobStatus.PAUSED: "paused",
    JobStatus.DONE: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
_STATUS_OF_WIRE = {
    QUEUED: JobStatus.QUEUED, DOWNLOADING: JobStatus.QUEUED, VERIFYING: JobStatus.QUEUED,
    "paused": JobStatus.PAUSED, "completed": JobStatus.DONE, "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}


class DownloadIntegrityError(UpstreamUnavailable):
    """The bytes received are not the file CivitAI describes (hash or size mismatch, web page)."""

    code = "download_corrupt"


class DownloadCancelledError(ConflictError):
    """A download someone waited for was cancelled."""

    code = "download_cancelled"


FILE_PARAM_KEYS = ("type", "format", "size", "fp")  # how a client names one file of a version


@dataclass(slots=True, frozen=True, kw_only=True)
class DownloadRequest:
    """A validated download request (the handler parses it; the use case plans it)."""

    model_id: int | None
    version_id: int | None
    model_root: str = ""  # a library root of the model's type ('' = the default one)
    relative_path: str = ""  # a folder below it, no '..' or hidden parts
    use_default_paths: bool = True  # no folder given: the download path template decides
    file_params: dict[str, str] = field(default_factory=dict)
    model_type: ModelType | None = None  # the type the client expects (checked against CivitAI)
    download_id: str | None = None
    huggingface: Any = None  # a ``HuggingFaceFileRef`` instead of a CivitAI version (issue 14)


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
    # where the bytes come from when not CivitAI: {"kind": "huggingface", "url": ..., ...} (issue 14)
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Same key → same download: a second request joins the active job."""
        if self.origin:
            return f"{self.origin.get('kind')} {self.origin.get('url')}"
        params = "&".join(f"{k}={v}" for k, v in sorted(self.file_params.items()))
        return f"model version {self.version_id}" + (f" ({params})" if params else "")

    def renamed(self, file_name: str) -> "DownloadPlan":
        return replace(self, file_name=file_name)

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
            **({"origin": dict(self.origin)} if self.origin else {}),
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
            origin=dict(data.get("origin") or {}),
        )


@dataclass(slots=True)
class DownloadProgress:
    """The detail of a download job: its plan, bytes, rate and phase; updated in place."""

    plan: DownloadPlan
    phase: str = QUEUED  # QUEUED while connecting, then DOWNLOADING, then VERIFYING
    bytes_downloaded: int = 0
    total_bytes: int = 0
    bytes_per_second: float = 0.0
    file_path: str = ""
    message: str = ""
    # set once bytes flow, or the job paused or ended: what a waiting request waits for
    opened: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def start(self, *, offset: int, total: int, now: float | None = None) -> None:
        """Bytes start flowing (from ``offset`` when resuming)."""
        now = time.monotonic() if now is None else now
        self.phase = DOWNLOADING
        self.bytes_downloaded = offset
        self.total_bytes = total
        self.message = "resuming" if offset else ""
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

    def verify(self) -> None:
        self.phase = VERIFYING
        self.bytes_per_second = 0.0

    def stopped(self) -> None:
        """Paused, queued again or ended: no rate, and the next run starts by connecting."""
        self.phase = QUEUED
        self.bytes_per_second = 0.0

    def finish(self, file_path: str) -> None:
        self.file_path = file_path
        self.bytes_downloaded = max(self.bytes_downloaded, self.total_bytes)

    def wire_status(self, job: Job[Any]) -> str:
        if job.status in (JobStatus.RUNNING, JobStatus.CANCELLING):
            return self.phase
        return _WIRE_STATUS[job.status]

    def snapshot(self, job: Job[Any]) -> dict[str, Any]:
        """The one shape pushed over the WebSocket and returned by polling."""
        plan = self.plan
        status = self.wire_status(job)
        done = job.status is JobStatus.DONE
        progress = 100.0 if done else (
            round(min(100.0, 100.0 * self.bytes_downloaded / self.total_bytes), 2) if self.total_bytes > 0 else 0.0
        )
        eta = None
        if status == DOWNLOADING and self.bytes_per_second > 0 and self.total_bytes > 0:
            eta = round(max(0, self.total_bytes - self.bytes_downloaded) / self.bytes_per_second, 1)
        data: dict[str, Any] = {
            "type": MESSAGE_TYPE,
            "download_id": job.id,
            "status": status,
            "progress": progress,
            "bytes_downloaded": self.bytes_downloaded,
            "total_bytes": self.total_bytes,
            "bytes_per_second": self.bytes_per_second if status == DOWNLOADING else 0.0,
            "eta_seconds": eta,
            "file_path": self.file_path,
            "file_name": plan.file_name,
            "target_dir": plan.target_dir,
            "model_type": plan.model_type.value,
            "model_id": plan.model_id,
            "model_version_id": plan.version_id,
            "model_name": str((plan.model or {}).get("name") or (plan.version.get("model") or {}).get("name") or ""),
            "version_name": str(plan.version.get("name") or ""),
            "source": str(plan.origin.get("kind") or "civitai"),
            "source_url": str(plan.origin.get("source_url") or ""),
            "message": self.message,
            "error": job.error.message if job.error is not None else None,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
        }
        if job.error is not None:
            data.update({k: v for k, v in job.error_fields().items() if k not in data or k == "code"})
        return data


DownloadJob = Job[DownloadProgress]


def new_download_job(plan: DownloadPlan, job_id: str) -> DownloadJob:
    return Job(kind=JOB_KIND, key=plan.key, id=job_id, detail=DownloadProgress(plan=plan))


def job_record(job: DownloadJob) -> dict[str, Any]:
    """The stored form of a download (history, and resume after a restart)."""
    d = job.detail
    error = job.error
    return {
        "id": job.id,
        "plan": d.plan.to_json(),
        "status": d.wire_status(job),
        "bytes_downloaded": d.bytes_downloaded,
        "total_bytes": d.total_bytes,
        "file_path": d.file_path,
        "error": error.message if error else "",
        "error_code": error.code if error else "",
        "error_status": error.status if error else 0,
        "error_extra": {k: v for k, v in (error.extra if error else {}).items()
                        if isinstance(v, (str, int, float, bool)) or v is None},
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def job_from_record(data: dict[str, Any]) -> DownloadJob:
    """A download job as stored; one that was running comes back queued (it resumes).

    Raises ``KeyError``/``ValueError``/``TypeError`` for a record that does not read.
    """
    plan = DownloadPlan.from_json(data["plan"])
    job = new_download_job(plan, str(data["id"]))
    job.detail.bytes_downloaded = int(data.get("bytes_downloaded") or 0)
    job.detail.total_bytes = int(data.get("total_bytes") or 0)
    job.detail.file_path = str(data.get("file_path") or "")
    error: LibraryError | None = None
    if data.get("error"):
        error = LibraryError(str(data["error"]), extra=dict(data.get("error_extra") or {}))
        error.status = int(data.get("error_status") or 500)
        error.code = str(data.get("error_code") or "download_failed")
    job.restore(
        _STATUS_OF_WIRE[str(data.get("status", QUEUED))], error=error,
        created_at=float(data.get("created_at") or time.time()),
        started_at=data.get("started_at"), finished_at=data.get("finished_at"),
    )
    if job.is_terminal:
        job.detail.opened.set()
    return job
