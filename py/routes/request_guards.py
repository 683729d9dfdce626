"""The two guards around every handler: error rendering and the cross-site check.

Applied by the registrar to each handler (not as middleware) so they also hold on
ComfyUI's application, whose middleware chain is not ours.
"""
from __future__ import annotations

import functools
import logging
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from ..errors import CrossSiteRequest, LibraryError

_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: LibraryError) -> web.Response:
    return web.json_response(error.to_json(), status=error.status)


def check_same_origin(request: web.Request) -> None:
    """Refuse browser requests that another site made (CSRF from any web page).

    Non-browser clients send neither header and pass; the ComfyUI page and our own
    pages are same-origin.
    """
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise CrossSiteRequest("cross-site requests may not change the library")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    host = request.headers.get("Host", "")
    if origin == "null" or not parts.netloc or parts.netloc.lower() != host.lower():
        raise CrossSiteRequest(f"requests from '{origin[:100]}' may not change the library")


def guarded(handler: Handler, *, state_changing: bool) -> Handler:
    """Wrap a handler: typed errors become the JSON envelope, the unknown a logged 500."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            if state_changing:
                check_same_origin(request)
            return await handler(request)
        except LibraryError as exc:
            return error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            _log.exception("unhandled error in %s %s", request.method, request.path)
            return web.json_response(
                {"success": False, "error": "internal error; see the server log", "code": "internal_error"},
                status=500,
            )

    return wrapper
