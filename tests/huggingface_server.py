"""A local stand-in for the HuggingFace hub and its CDN: two real aiohttp apps on 127.0.0.1 (two
origins), serving fixture repositories and faults (issue 14).

The hub answers ``HEAD``/``GET /<repo>/resolve/<rev>/<path>`` as the real one does for LFS files:
``302`` to the CDN with ``X-Repo-Commit``, ``X-Linked-Etag`` (the SHA256), ``X-Linked-Size`` and
``ETag``; small files are served directly with a git ``ETag``. Gated repositories answer 401
(no token) or 403 (a token without access) with ``X-Error-Code: GatedRepo``; ``/api/models/<repo>``
gives the card data (licence). The CDN serves bytes with ``Range`` and can drop a connection.
Every request is recorded with its headers, so tests can see where a token went. It must never
be pointed at, or proxy to, the real hub.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web


@dataclass(slots=True)
class HubFile:
    content: bytes
    lfs: bool = True
    advertised_sha256: str | None = None  # set: the hub lies about the SHA256 (a corrupt upload)
    web_page: bool = False  # set: the CDN answers with an HTML page (a login / error page) instead

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(slots=True)
class HubRepo:
    repo_id: str
    files: dict[str, dict[str, HubFile]]  # commit -> path -> file
    refs: dict[str, str]  # branch / tag -> commit
    gated: bool = False
    allowed_tokens: set[str] = field(default_factory=set)
    card: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Seen:
    server: str  # "hub" | "cdn"
    method: str
    path: str
    headers: dict[str, str]


class HuggingFaceTestServer:
    """Fixture hub: ``add_file(repo, path, content)``; read ``requests``; ``drop_after(n)`` once."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[Seen] = []
        self.hub_origin = ""
        self.cdn_origin = ""
        self._blobs: dict[str, bytes] = {}
        self._drop_after: list[int] = []
        self._web_pages: set[str] = set()
        self.hub_app = self._hub_app()
        self.cdn_app = self._cdn_app()

    # ------------------------------------------------------------------ data
    def add_file(self, repo_id: str, path: str, content: bytes, *, revision: str = "main", lfs: bool = True,
                 gated: bool = False, license: str | None = "apache-2.0", advertised_sha256: str | None = None,
                 web_page: bool = False) -> str:
        """Add (or replace) a file; returns the commit it is in (a new commit per call)."""
        repo = self.repos.get(repo_id)
        if repo is None:
            repo = self.repos[repo_id] = HubRepo(repo_id=repo_id, files={}, refs={})
        repo.gated = repo.gated or gated
        if license is not None:
            repo.card["license"] = license
        previous = repo.files.get(repo.refs.get(revision, ""), {})
        commit = secrets.token_hex(20)
        repo.files[commit] = {**previous, path: HubFile(content=content, lfs=lfs, advertised_sha256=advertised_sha256,
                                                                web_page=web_page)}
        repo.refs[revision] = commit
        return commit

    def allow_token(self, repo_id: str, token: str) -> None:
        self.repos[repo_id].allowed_tokens.add(token)

    def drop_after(self, n_bytes: int) -> None:
        """The next CDN download closes the connection after ``n_bytes``."""
        self._drop_after.append(n_bytes)

    def url(self, repo_id: str, path: str, *, revision: str = "main", kind: str = "resolve") -> str:
        return f"{self.hub_origin}/{repo_id}/{kind}/{quote(revision, safe='')}/{quote(path)}"

    def seen(self, server: str, method: str | None = None) -> list[Seen]:
        return [r for r in self.requests if r.server == server and (method is None or r.method == method)]

    # ------------------------------------------------------------------ hub
    def _hub_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record("hub")])
        app.router.add_get("/api/models/{tail:.+}", self._model_info)
        app.router.add_route("*", "/{tail:.+}", self._resolve)
        return app

    def _record(self, server: str) -> Any:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append(Seen(server, request.method, request.path_qs, dict(request.headers)))
            return await handler(request)

        return record

    def _repo_and_rest(self, segments: list[str]) -> tuple[HubRepo | None, list[str]]:
        for size in (2, 1):
            repo = self.repos.get("/".join(segments[:size]))
            if repo is not None:
                return repo, segments[size:]
        return None, segments

    def _denied(self, request: web.Request, repo: HubRepo) -> web.Response | None:
        if not repo.gated:
            return None
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if token in repo.allowed_tokens:
            return None
        status = 403 if token else 401
        message = (f"Access to model {repo.repo_id} is restricted and you are not in the authorized list."
                   if token else f"Access to model {repo.repo_id} is restricted. You must be authenticated.")
        return web.json_response({"error": message}, status=status, headers={"X-Error-Code": "GatedRepo"})

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        segments = [unquote(s) for s in request.match_info["tail"].split("/")]
        repo, rest = self._repo_and_rest(segments)
        if repo is None or len(rest) < 3 or rest[0] not in ("resolve", "blob"):
            return web.json_response({"error": "Repository not found"}, status=404, headers={"X-Error-Code": "RepoNotFound"})
        denied = self._denied(request, repo)
        if denied is not None:
            return denied
        revision, path = rest[1], "/".join(rest[2:])
        commit = repo.refs.get(revision, revision if revision in repo.files else "")
        if not commit:
            return web.json_response({"error": "Invalid rev id"}, status=404, headers={"X-Error-Code": "RevisionNotFound"})
        file = repo.files[commit].get(path)
        if file is None:
            return web.json_response({"error": "Entry not found"}, status=404, headers={"X-Error-Code": "EntryNotFound"})
        git_etag = hashlib.sha1(b"blob %d\0" % len(file.content) + file.content).hexdigest()
        if not file.lfs:
            headers = {"X-Repo-Commit": commit, "ETag": f'"{git_etag}"'}
            return web.Response(body=b"" if request.method == "HEAD" else file.content, headers=headers,
                                content_type="application/octet-stream")
        sha = file.advertised_sha256 or file.sha256
        key = secrets.token_hex(8)
        self._blobs[key] = file.content
        if file.web_page:
            self._web_pages.add(key)
        name = quote(path.rsplit("/", 1)[-1])
        location = f"{self.cdn_origin}/repos/{key}/{name}?X-Amz-Signature={secrets.token_hex(8)}"
        headers = {"Location": location, "X-Repo-Commit": commit, "X-Linked-Etag": f'"{sha}"',
                   "X-Linked-Size": str(len(file.content)), "ETag": f'"{git_etag}"'}
        return web.Response(status=302, headers=headers)

    async def _model_info(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"]
        repo_id, _, revision = tail.partition("/revision/")
        repo = self.repos.get(repo_id)
        if repo is None:
            return web.json_response({"error": "Repository not found"}, status=404)
        denied = self._denied(request, repo)
        if denied is not None:
            return denied
        commit = repo.refs.get(revision or "main", revision)
        return web.json_response({"id": repo_id, "sha": commit, "gated": "manual" if repo.gated else False,
                                  "cardData": dict(repo.card)})

    # ------------------------------------------------------------------ CDN
    def _cdn_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record("cdn")])
        app.router.add_get("/repos/{key}/{name}", self._blob)
        return app

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        content = self._blobs.get(request.match_info["key"])
        if content is None:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>", content_type="application/xml")
        if request.match_info["key"] in self._web_pages:
            return web.Response(text="<!doctype html><html><body>Sign in to continue</body></html>", content_type="text/html")
        start, end, status = 0, len(content) - 1, 200
        header = request.headers.get("Range", "")
        if header.startswith("bytes="):
            first, _, last = header[len("bytes="):].partition("-")
            start = int(first or 0)
            end = min(int(last), len(content) - 1) if last else len(content) - 1
            if start >= len(content):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(content)}"})
            status = 206
        body = content[start:end + 1]
        resp = web.StreamResponse(status=status, headers={"Content-Type": "application/octet-stream",
                                                          "Accept-Ranges": "bytes", "Content-Length": str(len(body))})
        if status == 206:
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        await resp.prepare(request)
        if self._drop_after and len(body) > self._drop_after[0]:
            cut = self._drop_after.pop(0)
            await resp.write(body[:cut])
            assert request.transport is not None
            request.transport.close()  # the connection breaks off mid-file
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp


async def start_huggingface_server(aiohttp_server: Any) -> HuggingFaceTestServer:
    """Both apps on loopback (two ports: two origins); the hub's URLs point at the CDN's."""
    server = HuggingFaceTestServer()
    cdn = await aiohttp_server(server.cdn_app)
    hub = await aiohttp_server(server.hub_app)
    server.cdn_origin = str(cdn.make_url("")).rstrip("/")
    server.hub_origin = str(hub.make_url("")).rstrip("/")
    return server
