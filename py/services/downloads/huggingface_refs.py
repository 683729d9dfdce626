"""Which HuggingFace file a download request names: a file URL (``/<repo>/resolve/<rev>/<path>``
or ``/blob/``, any revision, ``?download=true`` and the like ignored) or a repo id + file path
(+ revision). Pure parsing and validation; which host may be asked is the client's decision.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ...errors import ValidationError

__all__ = ["HuggingFaceFileRef", "huggingface_file", "parse_huggingface_url"]

DEFAULT_REVISION = "main"
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
_NON_MODEL_PREFIXES = ("datasets", "spaces")
REQUEST_FIELDS = ("hf_url", "hf_repo", "hf_path", "hf_revision")


@dataclass(slots=True, frozen=True, kw_only=True)
class HuggingFaceFileRef:
    """One file of a model repository at a revision (a branch, tag or commit)."""

    repo: str  # "owner/name" (or a legacy "name")
    path: str  # the file's path inside the repository ('/' separated)
    revision: str = DEFAULT_REVISION
    host: str = ""  # the host a pasted URL named ('' for repo id + path): must be the hub's
    source_url: str = ""  # the URL as the user gave it ('' for repo id + path)

    def resolve_path(self, revision: str | None = None) -> str:
        """``/<repo>/resolve/<revision>/<path>``, quoted (a revision like ``refs/pr/1`` is one segment)."""
        rev = quote(revision or self.revision, safe="")
        return f"/{self.repo}/resolve/{rev}/{quote(self.path, safe='/')}"

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _check_repo(repo: str) -> str:
    parts = repo.strip().strip("/").split("/")
    if parts and parts[0] in _NON_MODEL_PREFIXES:
        raise ValidationError(f"'{repo[:200]}' is a HuggingFace {parts[0][:-1]}, not a model repository")
    if not 1 <= len(parts) <= 2 or not all(_REPO_PART.match(p) and ".." not in p for p in parts):
        raise ValidationError(f"'{repo[:200]}' is not a HuggingFace repository id (owner/name)")
    return "/".join(parts)


def _check_path(path: str) -> str:
    clean = path.replace("\\", "/").strip()
    parts = clean.split("/")
    if (not clean or clean.startswith("/") or len(clean) > 1000 or "\x00" in clean
            or any(p in ("", ".", "..") for p in parts)):
        raise ValidationError(f"'{path[:200]}' is not a file path inside a HuggingFace repository")
    return clean


def _check_revision(revision: str) -> str:
    value = revision.strip() or DEFAULT_REVISION
    if not _REVISION.match(value) or ".." in value or value.startswith("/") or value.endswith("/"):
        raise ValidationError(f"'{revision[:200]}' is not a HuggingFace revision (a branch, tag or commit)")
    return value


def parse_huggingface_url(url: str) -> HuggingFaceFileRef:
    """The file a ``https://huggingface.co/<repo>/resolve|blob/<rev>/<path>`` URL names.

    Raises ``ValidationError`` for anything else (a repo page, a dataset, a folder, ``..``).
    """
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("'hf_url' must be an https URL of a file on HuggingFace")
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    marker = next((i for i, s in enumerate(segments) if s in ("resolve", "blob") and i in (1, 2, 3)), None)
    if marker is None or len(segments) < marker + 3:
        raise ValidationError(
            "'hf_url' must link to one file: https://huggingface.co/<owner>/<repo>/resolve/<revision>/<path> "
            "(or /blob/)"
        )
    return HuggingFaceFileRef(
        repo=_check_repo("/".join(segments[:marker])),
        revision=_check_revision(segments[marker + 1]),
        path=_check_path("/".join(segments[marker + 2:])),
        host=parts.hostname.lower(),
        source_url=text,
    )


def huggingface_file(payload: Mapping[str, Any]) -> HuggingFaceFileRef | None:
    """The HuggingFace file of a download request body or query (None when it names none)."""
    url, repo, path, revision = (payload.get(k) for k in REQUEST_FIELDS)
    for name, value in zip(REQUEST_FIELDS, (url, repo, path, revision)):
        if value is not None and (not isinstance(value, str) or len(value) > 2000 or "\x00" in value):
            raise ValidationError(f"'{name}' must be a string of at most 2000 characters")
    if url:
        if repo or path:
            raise ValidationError("give 'hf_url' or 'hf_repo' + 'hf_path', not both")
        ref = parse_huggingface_url(url)
        if revision:
            raise ValidationError("'hf_revision' goes with 'hf_repo' + 'hf_path'; the URL names its revision")
        return ref
    if repo or path:
        if not (repo and path):
            raise ValidationError("a HuggingFace file needs both 'hf_repo' and 'hf_path'")
        return HuggingFaceFileRef(repo=_check_repo(repo), path=_check_path(path),
                                  revision=_check_revision(revision or ""))
    if revision:
        raise ValidationError("'hf_revision' needs 'hf_repo' and 'hf_path'")
    return None
