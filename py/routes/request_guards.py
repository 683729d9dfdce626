"""The guard around every handler: trust checks, error rendering and protective headers.

Applied by the registrar to each handler (not as middleware) so it also holds on ComfyUI's
application, whose middleware chain is not ours, and never touches ComfyUI's own responses.
"""
from __future__ import annotations

import functools
import logging
from typing import Awaitable, Callable

from aiohttp import web

from ..errors import HostNotAllowed, LibraryError
from .trust_policy import TrustPolicy, host_refusal_page

_log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Our pages load only our own scripts, styles, images and media (previews included);
# nothing may frame them but our own pages.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
REFUSAL_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def error_response(error: LibraryError) -> web.Response:
    return web.json_response(error.to_json(), status=error.status)


def add_security_headers(response: web.StreamResponse) -> None:
    """``nosniff`` and the referrer policy on everything; a CSP and frame rules on pages."""
    if response.prepared:  # a WebSocket or a stream already sent its headers
        return
    for name, value in COMMON_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")


def host_refusal(request: web.Request, error: HostNotAllowed) -> web.Response:
    """A plain page for a browser asking for a page, the JSON envelope for everything else."""
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        return web.Response(
            text=host_refusal_page(error), status=error.status, content_type="text/html",
            headers={"Content-Security-Policy": REFUSAL_CSP},
        )
    return error_response(error)


def guarded(
    handler: Handler, *, policy: TrustPolicy, state_changing: bool, extensions: bool = False
) -> Handler:
    """Wrap a handler: Host allow-list, cross-origin rules for changes (and sockets), typed
    errors as the JSON envelope, the unknown as a logged 500, headers on what we answer."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            policy.check_host(request.headers.get("Host"))
            if state_changing:
                policy.check_change(request.headers, request.scheme, extensions=extensions)
            response = await handler(request)
        except HostNotAllowed as exc:
            response = host_refusal(request, exc)
        except LibraryError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            add_security_headers(exc)
            raise
        except ConnectionError:
            # The client went away mid-request: nothing to report. Raising would make aiohttp
            # log an error with a traceback; an answer to nobody is dropped quietly.
            _log.debug("client disconnected during %s %s", request.method, request.path)
            return web.Response(status=400, text="client disconnected")
        except Exception:
            _log.exception("unhandled error in %s %s", request.method, request.path)
            response = web.json_response(
                {"success": False, "error": "internal error; see the server log", "code": "internal_error"},
                status=500,
            )
        add_security_headers(response)
        return response

    return wrapper


def trust_middleware(policy: TrustPolicy):
    """The standalone server's middleware: the same Host check and headers on *every*
    response, 404s and 405s included (inside ComfyUI the per-route guard does this)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            policy.check_host(request.headers.get("Host"))
        except HostNotAllowed as exc:
            response: web.StreamResponse = host_refusal(request, exc)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                add_security_headers(exc)
                raise
        add_security_headers(response)
        return response

    return middleware
