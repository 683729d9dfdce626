"""Walking library roots and turning files on disk into ``ModelEntry`` records.

Owns what counts as a model (extensions per type), the stat-only comparison that lets
a warm start reuse cached entries, and reading sidecars / safetensors headers. All of it
is blocking code: callers run it in a worker thread, never on the event loop.
"""
from __future__ import annotations

import logging
import os
import re
import stat as stat_module
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .model_records import (
    FileStamp,
    HashStatus,
    MetadataStatus,
    ModelEntry,
    ModelType,
    civitai_summary,
)
from .safetensors_header import HeaderError, autov3_from_metadata, guess_base_model, read_safetensors_header
from .sidecar_store import SIDECAR_SUFFIX, find_preview_name, read_model_sidecar

_log = logging.getLogger(__name__)

# ComfyUI's folder_paths.supported_pt_extensions
PT_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})
EXTENSIONS: dict[tuple[ModelType, str], frozenset[str]] = {
    (ModelType.LORA, ""): frozenset({".safetensors"}),
    (ModelType.CHECKPOINT, "checkpoint"): PT_EXTENSIONS,
    (ModelType.CHECKPOINT, "diffusion_model"): PT_EXTENSIONS | {".gguf"},
    (ModelType.EMBEDDING, ""): PT_EXTENSIONS,
}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

HashLookup = Callable[[FileStamp], "tuple[str, str] | None"]


@dataclass(slots=True, frozen=True, kw_only=True)
class LibraryRoot:
    """A folder the user keeps models of one type (and sub-type) in."""

    path: str  # absolute, forward slashes, as configured (a symlink stays a symlink)
    model_type: ModelType
    sub_type: str = ""

    @property
    def extensions(self) -> frozenset[str]:
        return EXTENSIONS[(self.model_type, self.sub_type)]


def normalise_path(path: str) -> str:
    return os.path.abspath(path).replace(os.sep, "/")


def stamp_of(st: os.stat_result) -> FileStamp:
    return FileStamp(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


@dataclass(slots=True)
class ScanStats:
    reused: int = 0
    built: int = 0
    errors: int = 0
    seen: set[str] = field(default_factory=set)


def _as_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, (list, tuple)):
        return ()
    out: list[str] = []
    for item in value:
        if isinstance(item, str) and item.strip() and item.strip() not in out:
            out.append(item.strip())
    return tuple(out)


def _as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def entry_from_disk(
    *,
    root: LibraryRoot,
    path: str,
    stamp: FileStamp,
    folder_names: "set[str] | None",
    sidecar_mtime_ns: int,
    hash_lookup: HashLookup | None = None,
) -> ModelEntry:
    """Build the entry of one model file from its sidecar (or header) and previews."""
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    if folder_names is None:
        try:
            folder_names = set(os.listdir(directory))
        except OSError:
            folder_names = set()
    read = read_model_sidecar(path, folder_names)
    data = read.data
    status = MetadataStatus.CORRUPT_SIDECAR if read.corrupt else (MetadataStatus.OK if data else MetadataStatus.MISSING)

    base_model = str(data.get("base_model") or "")
    autov3 = ""
    if extension.lower() == ".safetensors" and (not data or not base_model):
        try:
            header = read_safetensors_header(path)
        except HeaderError:
            if status is not MetadataStatus.CORRUPT_SIDECAR:
                status = MetadataStatus.CORRUPT_HEADER
        except OSError:
            status = MetadataStatus.UNREADABLE
        else:
            base_model = base_model or guess_base_model(header.metadata)
            autov3 = autov3_from_metadata(header.metadata)

    sha256 = str(data.get("sha256") or "").lower()
    autov2 = ""
    if not _HEX64.match(sha256):
        sha256 = ""
        known = hash_lookup(stamp) if hash_lookup else None
        if known:
            sha256, autov2 = known
    if sha256 and not autov2:
        autov2 = sha256[:10]

    preview_name = find_preview_name(stem, folder_names)
    civitai = data.get("civitai") if isinstance(data.get("civitai"), dict) else {}
    creator = ""
    if isinstance(civitai.get("creator"), dict):
        creator = str(civitai["creator"].get("username") or "")
    usage_tips = data.get("usage_tips") or ""
    if not isinstance(usage_tips, str):
        import json

        usage_tips = json.dumps(usage_tips)
    root_path = root.path
    rel_dir = os.path.relpath(directory.replace("/", os.sep), root_path.replace("/", os.sep)).replace(os.sep, "/")
    if rel_dir == ".":
        rel_dir = ""
    return ModelEntry(
        model_type=root.model_type,
        file_path=path,
        root=root_path,
        folder=rel_dir,
        file_name=stem,
        extension=extension,
        stamp=stamp,
        sub_type=root.sub_type,
        model_name=str(data.get("model_name") or stem),
        sha256=sha256,
        autov2=autov2,
        autov3=autov3,
        hash_status=HashStatus.DONE if sha256 else HashStatus.PENDING,
        base_model=base_model,
        preview_path=f"{directory}/{preview_name}" if preview_name else "",
        preview_nsfw_level=_as_int(data.get("preview_nsfw_level")),
        tags=_as_str_list(data.get("tags")),
        trigger_words=_as_str_list(data.get("trigger_words")),
        favorite=bool(data.get("favorite")),
        notes=str(data.get("notes") or ""),
        exclude=bool(data.get("exclude")),
        from_civitai=bool(data.get("from_civitai")),
        civitai=civitai_summary(civitai),
        creator=creator,
        usage_tips=usage_tips,
        metadata_status=status,
        sidecar_mtime_ns=sidecar_mtime_ns,
    )


class ModelScanner:
    """Walks roots and yields batches of entries, reusing cached ones whose stamp is unchanged."""

    def __init__(self, *, batch_size: int = 500) -> None:
        self.batch_size = batch_size

    def iter_batches(
        self,
        roots: list[LibraryRoot],
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
    ) -> Iterator[list[ModelEntry]]:
        """Every model below ``roots``, in batches; unchanged ones reused from ``previous``."""
        return self.iter_scoped(roots, [root.path for root in roots], previous, hash_lookup, stats)

    def iter_scoped(
        self,
        roots: list[LibraryRoot],
        folders: list[str],
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
    ) -> Iterator[list[ModelEntry]]:
        """Like ``iter_batches`` but only below ``folders`` (each paired with its root)."""
        batch: list[ModelEntry] = []
        visited: set[str] = set()
        for root, folder in zip(roots, folders):
            for entry in self._walk_root(root, previous, hash_lookup, stats, visited, start=folder):
                batch.append(entry)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _walk_root(
        self,
        root: LibraryRoot,
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
        visited: set[str],
        start: str | None = None,
    ) -> Iterator[ModelEntry]:
        stack = [start or root.path]
        extensions = root.extensions
        while stack:
            directory = stack.pop()
            try:
                real = os.path.realpath(directory)
            except OSError:
                continue
            if real in visited:  # a symlink loop, or a root nested in another root
                continue
            visited.add(real)
            try:
                with os.scandir(directory) as it:
                    dir_entries = list(it)
            except OSError as exc:
                _log.warning("cannot list %s: %s", directory, exc)
                stats.errors += 1
                continue
            names = {e.name for e in dir_entries}
            by_name = {e.name: e for e in dir_entries}
            subdirs: list[str] = []
            for item in dir_entries:
                name = item.name
                if name.startswith("."):
                    continue  # hidden folders (our trash among them) and dotfiles
                try:
                    is_dir = item.is_dir()
                except OSError:
                    continue
                if is_dir:
                    subdirs.append(f"{directory}/{name}")
                    continue
                ext = os.path.splitext(name)[1].lower()
                if ext not in extensions:
                    continue
                try:
                    st = item.stat()
                except OSError:
                    stats.errors += 1
                    continue
                if not stat_module.S_ISREG(st.st_mode):
                    continue
                path = f"{directory}/{name}"
                stats.seen.add(path)
                stamp = stamp_of(st)
                stem = os.path.splitext(name)[0]
                sidecar_entry = by_name.get(stem + SIDECAR_SUFFIX)
                sidecar_mtime = 0
                if sidecar_entry is not None:
                    try:
                        sidecar_mtime = sidecar_entry.stat().st_mtime_ns
                    except OSError:
                        sidecar_mtime = 0
                old = previous.get(path)
                if (
                    old is not None
                    and old.stamp == stamp
                    and old.sidecar_mtime_ns == sidecar_mtime
                    and old.sub_type == root.sub_type
                    and old.preview_path.rsplit("/", 1)[-1] == find_preview_name(stem, names)
                ):
                    stats.reused += 1
                    yield old
                    continue
                stats.built += 1
                yield entry_from_disk(
                    root=root,
                    path=path,
                    stamp=stamp,
                    folder_names=names,
                    sidecar_mtime_ns=sidecar_mtime,
                    hash_lookup=hash_lookup,
                )
            # depth-first, alphabetical: the first folders arrive first
            stack.extend(sorted(subdirs, reverse=True))

    def scan_paths(
        self, items: list[tuple[LibraryRoot, str]], hash_lookup: HashLookup | None = None
    ) -> list[tuple[str, ModelEntry | None]]:
        """Re-read several models, listing each folder once (a bulk refresh of 1,000
        files in one folder must not list that folder 1,000 times)."""
        listings: dict[str, set[str]] = {}
        out: list[tuple[str, ModelEntry | None]] = []
        for root, path in items:
            directory = os.path.dirname(path)
            names = listings.get(directory)
            if names is None:
                try:
                    names = set(os.listdir(directory))
                except OSError:
                    names = set()
                listings[directory] = names
            out.append((path, self.scan_one(root, path, hash_lookup, folder_names=names)))
        return out

    def scan_one(
        self,
        root: LibraryRoot,
        path: str,
        hash_lookup: HashLookup | None = None,
        *,
        folder_names: "set[str] | None" = None,
    ) -> ModelEntry | None:
        """Re-read one model from disk, or None when it is gone (used after mutations)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        sidecar = os.path.splitext(path)[0] + SIDECAR_SUFFIX
        try:
            sidecar_mtime = os.stat(sidecar).st_mtime_ns
        except OSError:
            sidecar_mtime = 0
        return entry_from_disk(
            root=root,
            path=path,
            stamp=stamp_of(st),
            folder_names=folder_names,
            sidecar_mtime_ns=sidecar_mtime,
            hash_lookup=hash_lookup,
        )
