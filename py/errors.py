"""Domain errors every layer raises and one mapping renders as the JSON envelope.

Services raise these; handlers never build error responses themselves. Each error
carries the HTTP ``status`` and a stable ``code`` clients (and tests) can rely on.
"""
from __future__ import annotations

import errno
import os
from typing import Any


class LibraryError(Exception):
    """Base of every expected failure; rendered as ``{"success": false, "error": ...}``."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": False, "error": self.message, "code": self.code}
        body.update(self.extra)
        return body

    def with_extra(self, **extra: Any) -> "LibraryError":
        """A copy of this error whose JSON body carries ``extra`` too (the original is kept)."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.args = self.args
        copy.extra = {**self.extra, **extra}
        return copy


class ValidationError(LibraryError):
    status = 400
    code = "invalid_input"


class PayloadTooLarge(ValidationError):
    """An upload (or a fetched preview) is over its size limit."""

    status = 413
    code = "payload_too_large"


class PathOutsideLibrary(LibraryError):
    status = 403
    code = "path_outside_library"


class CrossSiteRequest(LibraryError):
    status = 403
    code = "cross_site_request"


class HostNotAllowed(LibraryError):
    """The request names this server by a name it does not answer to (a rebound DNS name)."""

    status = 403
    code = "host_not_allowed"


class UnsupportedMediaType(LibraryError):
    status = 415
    code = "unsupported_media_type"


class SettingNotWritable(LibraryError):
    """A setting that steers credentials or server-side fetches, changed over HTTP."""

    status = 403
    code = "setting_not_writable"


class ModelNotFound(LibraryError):
    status = 404
    code = "model_not_found"


class NotFoundError(LibraryError):
    status = 404
    code = "not_found"


class ConflictError(LibraryError):
    status = 409
    code = "conflict"


class AlreadyRunning(ConflictError):
    code = "already_running"


class EarlyAccessRequired(LibraryError):
    status = 401
    code = "early_access"


class AuthenticationRequired(LibraryError):
    status = 401
    code = "authentication_required"


class UpstreamNotFound(LibraryError):
    """The upstream service (CivitAI) does not know the thing asked for."""

    status = 404
    code = "upstream_not_found"


class UpstreamUnavailable(LibraryError):
    """The upstream service failed (5xx, timeout, malformed answer)."""

    status = 502
    code = "upstream_unavailable"


class RateLimited(UpstreamUnavailable):
    status = 503
    code = "rate_limited"


class ServiceNotReady(LibraryError):
    status = 503
    code = "service_not_ready"


class DiskFull(LibraryError, OSError):
    """No space (or quota) left where a write had to go; nothing half-written stays behind.

    Also an ``OSError`` (``errno`` ENOSPC or EDQUOT, ``filename`` the folder), so code that
    treats any filesystem failure of one file as that file's failure keeps doing so.
    """

    status = 507
    code = "disk_full"

    def __init__(self, folder: str, *, error_number: int | None = None) -> None:
        number = error_number if error_number is not None else errno.ENOSPC
        reason = os.strerror(number)
        LibraryError.__init__(self, f"the disk holding '{folder}' is full ({reason})", extra={"folder": folder})
        self.errno = number
        self.strerror = reason
        self.filename = folder

    def __str__(self) -> str:
        return self.message


# EDQUOT (quota exhausted) is not defined on Windows
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(exc: BaseException) -> bool:
    """True for the ``OSError`` a full disk or an exhausted quota raises."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
