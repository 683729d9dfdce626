"""The one gate every request path passes: it must lie inside a registered library root.

Owns path normalisation and containment (lexical and after resolving symlinks, compared
component-wise); it must not touch files beyond ``lstat``/``realpath`` nor learn roots on
demand (roots, and the real folders symlinked roots point to, are fixed by ``set_roots``).

Paths are handled in the form the index uses: absolute, normalised, with forward slashes.
On POSIX a backslash is read as a separator (clients on Windows send them), so a file whose
name contains a backslash cannot be addressed; Windows drive (``C:\\x``) and UNC
(``\\\\server\\share``) forms are foreign there and always outside the library.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import LibraryError, NotFoundError, PathOutsideLibrary, ValidationError
from .model_types import ModelType

__all__ = ["MAX_PATH_LENGTH", "GuardedPath", "PathGuard"]

MAX_PATH_LENGTH = 4096
_MESSAGE_PATH_LIMIT = 200
_WINDOWS = os.name == "nt"
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(slots=True, frozen=True, kw_only=True)
class GuardedPath:
    """A path proven to lie inside a library root, in the forms callers need."""

    path: str  # absolute, normalised, forward slashes, under ``root`` as registered: the index key
    real: str  # the path with every symlink resolved (forward slashes)
    root: str  # the registered root it lies in (normalised, forward slashes)
    model_type: ModelType | None
    relative: str  # ``path`` relative to ``root`` ('' for the root itself)

    @property
    def is_root(self) -> bool:
        return self.relative == ""


@dataclass(slots=True, frozen=True)
class _Root:
    path: str  # normalised, forward slashes, as registered
    real: str  # realpath at registration, forward slashes
    model_type: ModelType
    key: tuple[str, ...]  # comparison components of ``path``
    real_key: tuple[str, ...]  # comparison components of ``real``


class PathGuard:
    """Checks paths against the registered roots of each model type.

    Safe to use from worker threads: ``set_roots`` swaps the whole root table at once.
    """

    def __init__(self, roots: Mapping[ModelType, Sequence[str]] | None = None) -> None:
        self._roots: tuple[_Root, ...] = ()
        if roots:
            self.set_roots(roots)

    def set_roots(self, roots: Mapping[ModelType, Sequence[str]]) -> None:
        """Register the library roots, resolving each one's real folder once, now.

        A root that is a symlink is allowed: its target is registered with it. Raises
        ``ValidationError`` for a root that is not an absolute-able path string.
        """
        table: list[_Root] = []
        seen: set[tuple[ModelType, tuple[str, ...]]] = set()
        for model_type, paths in roots.items():
            model_type = ModelType(model_type)
            if isinstance(paths, (str, bytes, os.PathLike)):
                raise ValidationError(f"roots of {model_type.value} must be a list of paths, got one path")
            for raw in paths:
                root = _normalise_root(raw)
                key = _key(root)
                if (model_type, key) in seen:
                    continue
                seen.add((model_type, key))
                real = _slashes(os.path.realpath(root))
                table.append(_Root(path=root, real=real, model_type=model_type, key=key, real_key=_key(real)))
        self._roots = tuple(table)

    def roots(self, model_type: ModelType | None = None) -> list[str]:
        """The registered roots (of one type, or all), in registration order, without repeats."""
        result: list[str] = []
        for root in self._roots:
            if (model_type is None or root.model_type == model_type) and root.path not in result:
                result.append(root.path)
        return result

    def real_folders(self) -> list[str]:
        """The real folders of every root, each once: what ``contains_real`` accepts."""
        return list(dict.fromkeys(root.real for root in self._roots))

    @classmethod
    def of_real_folders(cls, reals: Sequence[str]) -> "PathGuard":
        """A guard whose ``contains_real`` accepts what lies in ``reals``, taken as they are
        (a walk in a child process checks against the folders its parent fixed, not against
        a second ``realpath`` of the roots)."""
        guard = cls()
        guard._roots = tuple(
            _Root(path=real, real=real, model_type=ModelType.LORA, key=_key(real), real_key=_key(real)) for real in reals
        )
        return guard

    def check(
        self,
        raw: object,
        *,
        model_type: ModelType | None = None,
        must_exist: bool = False,
        allow_root: bool = True,
    ) -> GuardedPath:
        """Validate a path from a request and return it with its root.

        Raises ``ValidationError`` (not a non-empty string, NUL byte, longer than
        ``MAX_PATH_LENGTH``, not encodable for the filesystem, the root itself when
        ``allow_root`` is false), ``PathOutsideLibrary`` (relative, a foreign Windows form,
        outside every root of ``model_type`` lexically or once symlinks are resolved) or
        ``NotFoundError`` (``must_exist`` and nothing there). Never raises anything else.
        """
        try:
            return self._check(raw, model_type=model_type, must_exist=must_exist, allow_root=allow_root)
        except LibraryError:
            raise
        except (OSError, ValueError, RecursionError) as exc:  # realpath on hostile input
            raise ValidationError(f"path {_show(raw)} cannot be checked: {exc.__class__.__name__}") from exc

    def root_for(self, path: str) -> tuple[str, ModelType] | None:
        """The innermost registered root containing ``path`` lexically, or None.

        No symlink is resolved and nothing is raised: this classifies paths the scanner
        already produced, it does not validate request input (use ``check``).
        """
        if not isinstance(path, str) or not path or "\x00" in path:
            return None
        text = _slashes(path)
        if not _is_absolute(text):
            return None
        root = self._match(_key(_normpath(text)), None)
        return (root.path, root.model_type) if root else None

    def contains_real(self, real: str) -> bool:
        """True when the resolved path ``real`` lies inside the real folder of any root.

        For paths already resolved with ``os.path.realpath`` (the scanner's symlinked files
        and folders, companions read beside a model): it compares components against the
        real folders fixed at ``set_roots`` and touches no file. An unresolved path is not
        resolved here, so a symlinked root's own name does not count; anything that is not
        an absolute path string is outside. Never raises.
        """
        if not isinstance(real, str) or not real or "\x00" in real or len(real) > MAX_PATH_LENGTH:
            return False
        text = _slashes(real)
        if not _is_absolute(text):
            return False
        key = _key(_normpath(text))
        return any(_within(key, root.real_key) for root in self._roots)

    def is_inside(self, raw: object, model_type: ModelType | None = None) -> bool:
        """True when ``check(raw, model_type=...)`` would succeed (existence not required)."""
        try:
            self.check(raw, model_type=model_type)
        except LibraryError:
            return False
        return True

    # -- internals ---------------------------------------------------------------

    def _check(self, raw: object, *, model_type: ModelType | None, must_exist: bool, allow_root: bool) -> GuardedPath:
        if not isinstance(raw, str):
            raise ValidationError(f"path must be a string, got {type(raw).__name__}")
        if not raw:
            raise ValidationError("path must not be empty")
        if len(raw) > MAX_PATH_LENGTH:
            raise ValidationError(f"path {_show(raw)} is too long ({len(raw)} characters, at most {MAX_PATH_LENGTH})")
        if "\x00" in raw:
            raise ValidationError(f"path {_show(raw)} contains a NUL byte")
        try:
            os.fsencode(raw)
        except UnicodeError as exc:
            # Lone surrogates that do not stand for undecodable bytes name no file at all.
            raise ValidationError(f"path {_show(raw)} is not valid text for the filesystem") from exc

        text = _slashes(raw)
        if not _WINDOWS and (_DRIVE.match(text) or text.startswith("//")):
            raise PathOutsideLibrary(f"path {_show(raw)} is outside the library (a Windows drive or network path)")
        if not _is_absolute(text):
            raise PathOutsideLibrary(f"path {_show(raw)} is outside the library (relative paths are not accepted)")

        path = _normpath(text)
        root = self._match(_key(path), model_type)
        if root is None:
            raise PathOutsideLibrary(f"path {_show(raw)} is outside the library")

        # Resolve both the normalised path (what callers will open) and the path as sent
        # (what the kernel would do with `link/..`): either escaping the root is a refusal.
        real = _slashes(os.path.realpath(path))
        if not _within(_key(real), root.real_key):
            raise PathOutsideLibrary(f"path {_show(raw)} is outside the library (it resolves to a place outside)")
        if text != path:
            as_sent = _slashes(os.path.realpath(text))
            if not _within(_key(as_sent), root.real_key):
                raise PathOutsideLibrary(f"path {_show(raw)} is outside the library (it resolves to a place outside)")

        relative = "/".join(_split(path)[len(root.key) :]) if len(_key(path)) > len(root.key) else ""
        if not allow_root and (not relative or _key(real) == root.real_key):
            raise ValidationError(f"path {_show(raw)} is a library root, not a model or folder in it")
        if must_exist and not os.path.lexists(path):
            raise NotFoundError(f"nothing at path {_show(raw)}")
        if must_exist and not os.path.exists(path):
            raise NotFoundError(f"nothing at path {_show(raw)} (dangling symlink)")
        return GuardedPath(path=path, real=real, root=root.path, model_type=root.model_type, relative=relative)

    def _match(self, key: tuple[str, ...], model_type: ModelType | None) -> _Root | None:
        best: _Root | None = None
        for root in self._roots:
            if model_type is not None and root.model_type != model_type:
                continue
            if _within(key, root.key) and (best is None or len(root.key) > len(best.key)):
                best = root
        return best


def _normalise_root(raw: object) -> str:
    if not isinstance(raw, (str, os.PathLike)):
        raise ValidationError(f"a library root must be a path, got {type(raw).__name__}")
    text = os.fspath(raw)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ValidationError(f"library root {_show(text)} is not a valid path")
    return _slashes(os.path.normpath(os.path.abspath(text)))


def _slashes(path: str) -> str:
    return path.replace("\\", "/")


def _is_absolute(text: str) -> bool:
    if _WINDOWS:
        # 'C:/x' or '//server/share/x'; 'C:x' and '/x' are relative to a drive.
        return bool(_DRIVE.match(text) and text[2:3] == "/") or text.startswith("//")
    return text.startswith("/")


def _normpath(text: str) -> str:
    return _slashes(os.path.normpath(text)) if _WINDOWS else posixpath.normpath(text)


def _split(path: str) -> list[str]:
    # '/' -> [''], '/a/b' -> ['', 'a', 'b']; keeps the leading anchor as one component.
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    return parts


def _key(path: str) -> tuple[str, ...]:
    parts = _split(path)
    if _WINDOWS:  # case-insensitive filesystems: compare case-folded components
        return tuple(part.casefold() for part in parts)
    return tuple(parts)


def _within(key: tuple[str, ...], root_key: tuple[str, ...]) -> bool:
    return len(key) >= len(root_key) and key[: len(root_key)] == root_key


def _show(raw: object) -> str:
    text = raw if isinstance(raw, str) else repr(raw)
    if len(text) > _MESSAGE_PATH_LIMIT:
        text = text[:_MESSAGE_PATH_LIMIT] + "..."
    # Escape NULs and lone surrogates so the message is safe to log and to encode as JSON.
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return "'" + text + "'"
