"""The recoverable delete: a hidden trash inside each library root, undo, and hand-off to
the operating system's trash once a batch leaves the undo window.

Owns the trash layout and its manifests; it must not know about the index (the
lifecycle service refreshes it) nor validate request paths (callers do). Blocking code:
call it through ``asyncio.to_thread``.

Layout: ``<root>/.lm-trash/<batch_id>/batch.json`` (the manifest, written atomically
before files move, so undo survives a restart or a crash mid-batch) and
``<root>/.lm-trash/<batch_id>/files/<path relative to the root>.deleted``. Files move there
with a no-replace rename on the same filesystem (instant, whatever the size); our scanner
skips dot-folders, and the ``.deleted`` suffix keeps them out of ComfyUI's own model lists
(it walks hidden folders but filters by extension). A batch that spans roots has one such
folder per root.

Undo window: the newest ``keep_batches`` batches of a root that are younger than
``keep_seconds`` stay undoable. Older batches are handed to the OS trash through
send2trash, file by file, so the user can still recover them there:
- Linux / BSD: the freedesktop.org trash (``$XDG_DATA_HOME/Trash``, or
  ``<mount>/.Trash-<uid>`` for files on another volume; via GIO when send2trash finds it);
- macOS: the Finder trash (``NSFileManager.trashItemAtURL``);
- Windows: the Recycle Bin (``IFileOperation``).
Where send2trash is missing or refuses (no trash on that volume, permissions, a headless
box without a trash folder), the batch simply stays in the hidden trash (still undoable)
and is never deleted for good by us; it is marked so the hand-off is not retried.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import DiskFull, is_disk_full
from ..shared.atomic_file import write_json_atomic
from ..shared.file_transfer import TargetExists, move_group

_log = logging.getLogger(__name__)

TRASH_DIR = ".lm-trash"
MANIFEST = "batch.json"
FILES_DIR = "files"
TRASHED_SUFFIX = ".deleted"
BATCH_ID = re.compile(r"^[0-9a-f]{16}$")
DEFAULT_KEEP_BATCHES = 20
DEFAULT_KEEP_SECONDS = 24 * 3600

OsTrash = Callable[[str], None]


def default_os_trash() -> OsTrash | None:
    """send2trash's ``send2trash`` where the package is installed, else None."""
    try:
        from send2trash import send2trash
    except ImportError:  # optional at run time: the hidden trash still works
        return None
    return send2trash


@dataclass(slots=True, frozen=True, kw_only=True)
class TrashedModel:
    model_path: str
    model_type: str
    files: tuple[tuple[str, str], ...]  # (original path, path in the trash)


@dataclass(slots=True, frozen=True, kw_only=True)
class RestoreOutcome:
    model_path: str
    model_type: str
    restored: bool
    conflict: str = ""  # the original path that is taken now


class ModelTrash:
    """Moves model file groups into the hidden trash of their root, and back."""

    def __init__(
        self,
        *,
        os_trash: OsTrash | None = None,
        keep_batches: int = DEFAULT_KEEP_BATCHES,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._os_trash = os_trash
        self._keep_batches = keep_batches
        self._keep_seconds = keep_seconds
        self._clock = clock

    @staticmethod
    def new_batch_id() -> str:
        return secrets.token_hex(8)

    @staticmethod
    def is_batch_id(value: object) -> bool:
        return isinstance(value, str) and bool(BATCH_ID.match(value))

    # putting ------------------------------------------------------------------
    def put(self, *, batch_id: str, root: str, model_type: str, model_path: str, files: list[str]) -> TrashedModel:
        """Move ``files`` (a model and its companions, all under ``root``) into the batch.

        Raises the ``OSError`` that stopped the move, with every file back in place and
        the manifest without this model.
        """
        model, error = self.put_many(batch_id=batch_id, root=root, model_type=model_type, models=[(model_path, files)])[0]
        if error is not None:
            raise error
        return model

    def put_many(
        self, *, batch_id: str, root: str, model_type: str, models: list[tuple[str, list[str]]]
    ) -> list[tuple[TrashedModel, OSError | None]]:
        """Move each model's file group (all under ``root``) into the batch, reporting per model.

        The manifest names every model before anything moves (so a crash mid-batch stays
        undoable) and is rewritten once at the end without the models that failed; a
        failed model has all its files back in place.
        """
        batch_dir = self._batch_dir(root, batch_id)
        planned = [
            TrashedModel(
                model_path=model_path,
                model_type=model_type,
                files=tuple((p, f"{batch_dir}/{FILES_DIR}/{_relative(p, root)}{TRASHED_SUFFIX}") for p in files),
            )
            for model_path, files in models
        ]
        manifest = self._read(batch_dir) or {"batch_id": batch_id, "root": root, "created_at": self._clock(), "models": []}
        already = len(manifest["models"])
        manifest["models"].extend(_model_json(m) for m in planned)
        fresh = not os.path.isdir(batch_dir)
        try:
            os.makedirs(batch_dir, exist_ok=True)
            write_json_atomic(f"{batch_dir}/{MANIFEST}", manifest)
        except OSError as exc:
            # nothing moved: leave no empty batch behind (a full disk fails right here)
            if fresh:
                _remove_empty(batch_dir)
                _remove_empty(os.path.dirname(batch_dir))
            if is_disk_full(exc) and not isinstance(exc, DiskFull):
                raise DiskFull(root, error_number=exc.errno) from exc
            raise
        results: list[tuple[TrashedModel, OSError | None]] = []
        for model in planned:
            try:
                for _, trashed in model.files:
                    os.makedirs(os.path.dirname(trashed), exist_ok=True)
                move_group(list(model.files))
            except OSError as exc:
                results.append((model, exc))
            else:
                results.append((model, None))
        if any(error is not None for _, error in results):
            kept = [_model_json(m) for m, error in results if error is None]
            manifest["models"] = manifest["models"][:already] + kept
            self._write_or_remove(batch_dir, manifest)
        return results

    # undo ---------------------------------------------------------------------------
    def batch_models(self, batch_id: str, roots: list[str]) -> list[TrashedModel]:
        """Every model of a batch still in the hidden trash (of any of ``roots``)."""
        models: list[TrashedModel] = []
        for root in roots:
            manifest = self._read(self._batch_dir(root, batch_id))
            if manifest:
                models.extend(_model_from_json(m) for m in manifest.get("models", []) if isinstance(m, dict))
        return models

    def restore(self, batch_id: str, roots: list[str]) -> list[RestoreOutcome]:
        """Move a batch's files back; a model whose original path is taken stays trashed.

        Never overwrites: a file that appeared at an original path meanwhile is a
        conflict for that model. The batch folder is removed once it is empty.
        """
        outcomes: list[RestoreOutcome] = []
        for root in roots:
            batch_dir = self._batch_dir(root, batch_id)
            manifest = self._read(batch_dir)
            if not manifest:
                continue
            kept: list[dict[str, Any]] = []
            for raw in manifest.get("models", []):
                if not isinstance(raw, dict):
                    continue
                model = _model_from_json(raw)
                outcome = self._restore_model(model, root, batch_dir)
                outcomes.append(outcome)
                if not outcome.restored:
                    kept.append(raw)
            manifest["models"] = kept
            self._write_or_remove(batch_dir, manifest)
        return outcomes

    def _restore_model(self, model: TrashedModel, root: str, batch_dir: str) -> RestoreOutcome:
        pairs = []
        for original, trashed in model.files:
            if not (_inside(original, root) and _inside(trashed, batch_dir)):
                _log.warning("trash manifest of %s names a path outside its root; skipped", batch_dir)
                return RestoreOutcome(model_path=model.model_path, model_type=model.model_type, restored=False, conflict=original)
            if os.path.lexists(trashed):
                pairs.append((trashed, original))
        for _, original in pairs:
            if os.path.lexists(original):
                return RestoreOutcome(model_path=model.model_path, model_type=model.model_type, restored=False, conflict=original)
        try:
            for _, original in pairs:
                os.makedirs(os.path.dirname(original), exist_ok=True)
            move_group(pairs)
        except TargetExists as exc:
            return RestoreOutcome(
                model_path=model.model_path, model_type=model.model_type, restored=False, conflict=str(exc.filename)
            )
        return RestoreOutcome(model_path=model.model_path, model_type=model.model_type, restored=True)

    # expiry -------------------------------------------------------------------------
    def expire(self, roots: list[str]) -> list[str]:
        """Hand batches outside the undo window to the OS trash; returns their ids.

        Without an OS trash nothing happens: batches stay in the hidden trash.
        """
        if self._os_trash is None:
            return []
        expired: list[str] = []
        now = self._clock()
        for root in roots:
            trash = f"{root}/{TRASH_DIR}"
            try:
                names = [n for n in os.listdir(trash) if BATCH_ID.match(n)]
            except OSError:
                continue
            batches = []
            for name in names:
                manifest = self._read(f"{trash}/{name}")
                if manifest is None or manifest.get("handoff_failed"):
                    continue
                created = manifest.get("created_at")
                batches.append((created if isinstance(created, (int, float)) else 0.0, name, manifest))
            batches.sort(reverse=True)
            for position, (created, name, manifest) in enumerate(batches):
                if position < self._keep_batches and now - created < self._keep_seconds:
                    continue
                if self._hand_off(f"{trash}/{name}", manifest):
                    expired.append(name)
        return expired

    def _hand_off(self, batch_dir: str, manifest: dict[str, Any]) -> bool:
        assert self._os_trash is not None
        files_root = f"{batch_dir}/{FILES_DIR}"
        try:
            for directory, _, names in os.walk(files_root):
                for name in names:
                    path = os.path.join(directory, name)
                    if name.endswith(TRASHED_SUFFIX):  # the OS trash shows (and restores) the real name
                        original = path[: -len(TRASHED_SUFFIX)]
                        os.rename(path, original)
                        path = original
                    self._os_trash(path)
        except Exception as exc:  # send2trash raises OSError and its own TrashPermissionError
            _log.warning("could not hand %s to the OS trash (%s); it stays in the hidden trash", batch_dir, exc)
            manifest["handoff_failed"] = True
            with suppress(OSError):
                write_json_atomic(f"{batch_dir}/{MANIFEST}", manifest)
            return False
        shutil.rmtree(batch_dir, ignore_errors=True)
        _remove_empty(os.path.dirname(batch_dir))
        return True

    # manifests ------------------------------------------------------------------------
    @staticmethod
    def _batch_dir(root: str, batch_id: str) -> str:
        if not BATCH_ID.match(batch_id):
            raise ValueError(f"not a batch id: {batch_id!r}")
        return f"{root.rstrip('/')}/{TRASH_DIR}/{batch_id}"

    @staticmethod
    def _read(batch_dir: str) -> dict[str, Any] | None:
        try:
            with open(f"{batch_dir}/{MANIFEST}", "rb") as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            return None
        return data

    @staticmethod
    def _write_or_remove(batch_dir: str, manifest: dict[str, Any]) -> None:
        if manifest["models"]:
            write_json_atomic(f"{batch_dir}/{MANIFEST}", manifest)
            return
        with suppress(OSError):
            os.unlink(f"{batch_dir}/{MANIFEST}")
        for directory, _, _ in sorted(os.walk(batch_dir), key=lambda item: -len(item[0])):
            with suppress(OSError):
                os.rmdir(directory)
        _remove_empty(os.path.dirname(batch_dir))


def _relative(path: str, root: str) -> str:
    prefix = root.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path!r} is not under {root!r}")
    return path[len(prefix):]


def _inside(path: str, folder: str) -> bool:
    if not isinstance(path, str) or "\x00" in path:
        return False
    norm = os.path.normpath(path).replace(os.sep, "/")
    return norm.startswith(folder.rstrip("/") + "/")


def _remove_empty(directory: str) -> None:
    with suppress(OSError):
        os.rmdir(directory)


def _model_json(model: TrashedModel) -> dict[str, Any]:
    return {
        "model_path": model.model_path,
        "model_type": model.model_type,
        "files": [{"original": o, "trashed": t} for o, t in model.files],
    }


def _model_from_json(data: dict[str, Any]) -> TrashedModel:
    files = tuple(
        (str(f.get("original", "")), str(f.get("trashed", "")))
        for f in data.get("files", [])
        if isinstance(f, dict)
    )
    return TrashedModel(
        model_path=str(data.get("model_path", "")), model_type=str(data.get("model_type", "")), files=files
    )
