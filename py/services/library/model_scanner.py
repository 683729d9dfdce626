"""Walking library roots and turning files on disk into ``ModelEntry`` records.

Owns what counts as a model (extensions per type), which files and folders the walk may
enter (nothing whose real path leaves the library), the stat-only comparison that lets a
warm start reuse cached entries, and reading sidecars / safetensors headers; a walk may
also hand our own stale temp files to the leftover sweeper. All of it is blocking code:
callers run it in a worker thread, never on the event loop.
"""
from __future__ import annotations

import logging
import os
import re
import stat as stat_module
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..shared import fast_json
from ..shared.model_types import EXTRA_TYPES
from ..shared.sidecar_store import (
    PREVIEW_SUFFIXES,
    SIDECAR_SUFFIX,
    RealPathCheck,
    SidecarRead,
    find_preview_name,
    read_model_sidecar,
    stat_companion,
)
from .leftover_files import PART_STATE_SUFFIX, PART_SUFFIX, LeftoverSweeper, is_leftover_name
from .model_records import (
    FileStamp,
    HashStatus,
    MetadataStatus,
    ModelEntry,
    ModelType,
    civitai_summary,
    shared,
)
from .safetensors_header import HeaderError, autov3_from_metadata, guess_base_model, read_safetensors_header

_log = logging.getLogger(__name__)

# ComfyUI's folder_paths.supported_pt_extensions
PT_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})
EXTENSIONS: dict[tuple[ModelType, str], frozenset[str]] = {
    (ModelType.LORA, ""): frozenset({".safetensors"}),
    (ModelType.CHECKPOINT, "checkpoint"): PT_EXTENSIONS,
    (ModelType.CHECKPOINT, "diffusion_model"): PT_EXTENSIONS | {".gguf"},
    (ModelType.EMBEDDING, ""): PT_EXTENSIONS,
}
_SCANDIR_FD = os.scandir in os.supports_fd
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_STAMP_PACK = struct.Struct("<QqQ").pack  # FileStamp's bytes, for the warm comparison
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

HashLookup = Callable[[FileStamp], "tuple[str, str] | None"]
FIRST_BATCH = 100  # entries in a walk's first batch


@dataclass(slots=True, frozen=True, kw_only=True)
class LibraryRoot:
    """A folder the user keeps models of one type (and sub-type) in."""

    path: str  # absolute, forward slashes, as configured (a symlink stays a symlink)
    model_type: ModelType
    sub_type: str = ""

    @property
    def extensions(self) -> frozenset[str]:
        return EXTENSIONS.get((self.model_type, self.sub_type)) or self.model_type.spec.extensions


def library_roots(
    *, loras: Iterable[str] = (), checkpoints: Iterable[str] = (), diffusion_models: Iterable[str] = (),
    embeddings: Iterable[str] = (),
    extra: Mapping[ModelType, Iterable[tuple[str, str]]] | None = None,
) -> dict[ModelType, list[LibraryRoot]]:
    """The roots of every type from folder paths (``~`` expanded, made absolute, each once).

    Checkpoints and diffusion models are one type with two sub-types (their loaders differ).
    ``extra``: every other type's (path, sub-type) pairs; a type without any maps to ``[]``.
    """
    def roots(model_type: ModelType, paths: Iterable[str], sub_type: str = "") -> list[LibraryRoot]:
        out: list[LibraryRoot] = []
        seen: set[str] = set()
        for raw in paths:
            if not raw:
                continue
            path = os.path.abspath(os.path.expanduser(raw)).replace(os.sep, "/")
            if path not in seen:
                seen.add(path)
                out.append(LibraryRoot(path=path, model_type=model_type, sub_type=sub_type))
        return out

    def extra_roots(model_type: ModelType) -> list[LibraryRoot]:
        pairs = list((extra or {}).get(model_type, ()))
        subs = dict.fromkeys(sub for _, sub in pairs)
        return [r for sub in subs for r in roots(model_type, [path for path, s in pairs if s == sub], sub)]

    return {
        ModelType.LORA: roots(ModelType.LORA, loras),
        ModelType.CHECKPOINT: roots(ModelType.CHECKPOINT, checkpoints, "checkpoint")
        + roots(ModelType.CHECKPOINT, diffusion_models, "diffusion_model"),
        ModelType.EMBEDDING: roots(ModelType.EMBEDDING, embeddings),
        **{t: extra_roots(t) for t in EXTRA_TYPES},
    }


def normalise_path(path: str) -> str:
    return os.path.abspath(path).replace(os.sep, "/")


def stamp_of(st: os.stat_result) -> FileStamp:
    return FileStamp(st.st_size, st.st_mtime_ns, st.st_ino)


# O_NONBLOCK: a FIFO named like a sidecar must not hang a scanner thread in open()
_SIDECAR_FLAGS = (
    os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
)


def _read_plain_sidecar(path: str, seen: os.stat_result) -> SidecarRead | None:
    """The sidecar at ``path`` when it is still the plain file the walk just saw (regular,
    one name, same inode), decoded by ``fast_json``; None when anything differs, and the
    caller reads it the careful way (``read_model_sidecar``, which logs refusals).

    The walk reads tens of thousands of these: this is the same check as the sidecar
    store's (open without following a link, then fstat what was opened), with the fast
    decoder, for the one case a library is made of.
    """
    try:
        fd = os.open(path, _SIDECAR_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_ino != seen.st_ino:
            return None
        # one read of the size fstat gave, plus a byte: exactly that size means the end was
        # reached, so no second read to learn it; more (it grew) or less (a short read, as a
        # network mount may give) and the rest is read to the end
        raw = os.read(fd, st.st_size + 1)
        if len(raw) != st.st_size:
            chunks = [raw]
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            raw = b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        data = fast_json.loads(raw)
    except ValueError:
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    if not isinstance(data, dict):
        return SidecarRead(data={}, corrupt=True, source="metadata.json")
    return SidecarRead(data=data, source="metadata.json")


@dataclass(slots=True)
class ScanStats:
    reused: int = 0
    built: int = 0
    errors: int = 0
    leftovers_removed: int = 0
    # the paths of every model the walk met (None: not kept; a caller that pops what the
    # walk yields from its copy of the index learns the same from what is left)
    seen: set[str] | None = field(default_factory=set)


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
    contains_real: RealPathCheck | None = None,
    preview_name: str | None = None,
    sidecar_stat: os.stat_result | None = None,
) -> ModelEntry:
    """Build the entry of one model file from its sidecar (or header) and previews.

    Companions are read only where ``sidecar_store`` allows (``contains_real`` decides
    symlinked ones). ``preview_name`` is the preview already chosen by the caller ('' for
    none); without it the first preview present is taken, unchecked. ``sidecar_stat`` is the
    walk's stat of a sidecar it found to be a plain file (the fast read; see
    ``_read_plain_sidecar``).
    """
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    if folder_names is None:
        try:
            folder_names = set(os.listdir(directory))
        except OSError:
            folder_names = set()
    read = _read_plain_sidecar(stem_path(path, extension) + SIDECAR_SUFFIX, sidecar_stat) if sidecar_stat else None
    if read is None or not (read.data or read.corrupt):
        read = read_model_sidecar(path, folder_names, contains_real=contains_real)
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
    if not _HEX64.match(sha256):
        sha256 = ""
        known = hash_lookup(stamp) if hash_lookup else None
        if known:
            sha256 = known[0]

    if preview_name is None:
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
    if directory == root_path:
        rel_dir = ""
    elif directory.startswith(root_path) and directory[len(root_path) : len(root_path) + 1] == "/":
        rel_dir = directory[len(root_path) + 1 :]
    else:
        rel_dir = os.path.relpath(directory.replace("/", os.sep), root_path.replace("/", os.sep)).replace(os.sep, "/")
        if rel_dir == ".":
            rel_dir = ""
    model_name = str(data.get("model_name") or stem)
    return ModelEntry(
        root.model_type,
        path,
        root_path,
        shared(rel_dir),
        shared(extension),
        stamp,
        root.sub_type,
        model_name,
        sha256,
        autov3,
        HashStatus.DONE if sha256 else HashStatus.PENDING,
        shared(base_model),
        shared(preview_name[len(stem):]) if preview_name else "",
        _as_int(data.get("preview_nsfw_level")),
        tuple(map(shared, _as_str_list(data.get("tags")))),
        _as_str_list(data.get("trigger_words")),
        bool(data.get("favorite")),
        str(data.get("notes") or ""),
        bool(data.get("exclude")),
        bool(data.get("from_civitai")),
        civitai_summary(civitai, model_name),
        shared(creator),
        shared(usage_tips),
        status,
        sidecar_mtime_ns,
    )


def stem_path(path: str, extension: str) -> str:
    return path[: len(path) - len(extension)]


class ModelScanner:
    """Walks roots and yields batches of entries, reusing cached ones whose stamp is unchanged.

    With ``contains_real`` (``PathGuard.contains_real``) nothing whose real path lies
    outside every library root is listed or read: symlinked model files and folders that
    lead out are skipped, and so are symlinked companions that do; hard-linked companions
    are never read. Without it (a scanner for loose folders) symlinks are followed as they
    are, companions only when they are plain files. Costs nothing on ordinary files: the
    listing says which names are symlinks, and only those are resolved.
    """

    def __init__(
        self,
        *,
        batch_size: int = 500,
        contains_real: RealPathCheck | None = None,
        sweeper: LeftoverSweeper | None = None,
        claims: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.batch_size = batch_size
        self._contains_real = contains_real
        self._sweeper = sweeper or LeftoverSweeper()
        # (file name, path) -> whether this walk takes the model: walks in several child
        # processes share a library out by name (``walk_child.claims_of``); None takes all
        self._claims = claims
        # Previews refused (hard-linked, or leading out of the library), by path, with the
        # inode the listing showed then: a warm walk skips them without a stat per file, and
        # looks again at a file replaced since. One that merely lost its other names stays
        # refused until the process restarts.
        self._refused_previews: dict[str, int] = {}
        self._reported: set[str] = set()  # models and folders already logged as skipped

    def remembered(self) -> tuple[dict[str, int], list[str]]:
        """What this scanner learnt that its next walk skips: refused previews (path ->
        inode) and the models and folders already logged as skipped."""
        return dict(self._refused_previews), list(self._reported)

    def remember(self, refused: Mapping[str, int], reported: Iterable[str]) -> None:
        """Adopt what another scanner learnt (a walk in a child process)."""
        self._refused_previews.update(refused)
        self._reported.update(reported)

    def iter_batches(
        self,
        roots: list[LibraryRoot],
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
        *,
        sweep: bool = False,
    ) -> Iterator[list[ModelEntry]]:
        """Every model below ``roots``, in batches; unchanged ones reused from ``previous``.

        With ``sweep``, our own stale temp files met on the way are removed (counted in
        ``stats.leftovers_removed``).
        """
        return self.iter_scoped(roots, [root.path for root in roots], previous, hash_lookup, stats, sweep=sweep)

    def iter_scoped(
        self,
        roots: list[LibraryRoot],
        folders: list[str],
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
        *,
        sweep: bool = False,
    ) -> Iterator[list[ModelEntry]]:
        """Like ``iter_batches`` but only below ``folders`` (each paired with its root)."""
        batch: list[ModelEntry] = []
        visited: set[str] = set()
        size = min(self.batch_size, FIRST_BATCH)  # the first batch is small: a cold start lists it at once
        for root, folder in zip(roots, folders):
            for entry in self._walk_root(root, previous, hash_lookup, stats, visited, start=folder, sweep=sweep):
                batch.append(entry)
                if len(batch) >= size:
                    yield batch
                    batch = []
                    size = self.batch_size
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
        sweep: bool = False,
    ) -> Iterator[ModelEntry]:
        # (folder, its real path when known): a folder listed as a plain directory (not a
        # symlink) inside a folder whose real path is known has the real path of its parent
        # plus its name, so only the start and symlinked folders are resolved (realpath costs
        # an lstat per path component)
        stack: list[tuple[str, str | None]] = [(start or root.path, None)]
        inside = self._contains_real
        while stack:
            directory, real = stack.pop()
            if real is None:
                try:
                    real = os.path.realpath(directory)
                except OSError:
                    continue
            if real in visited:  # a symlink loop, or a root nested in another root
                continue
            visited.add(real)
            if inside is not None and not inside(real):
                self._report_skip(directory, "a folder whose real path %s is outside every library root", real)
                continue
            # listed through a descriptor where the platform allows: each stat below is then
            # relative to the open folder, not a walk of the whole path again in the kernel
            fd = -1
            try:
                if _SCANDIR_FD:
                    fd = os.open(directory, _DIR_FLAGS)
                with os.scandir(fd if fd >= 0 else directory) as it:
                    by_name = {e.name: e for e in it}
            except OSError as exc:
                if fd >= 0:
                    os.close(fd)
                _log.warning("cannot list %s: %s", directory, exc)
                stats.errors += 1
                continue
            try:
                yield from self._walk_folder(
                    root, directory, real, by_name, previous, hash_lookup, stats, stack, sweep
                )
            finally:
                if fd >= 0:
                    os.close(fd)

    def _walk_folder(
        self,
        root: LibraryRoot,
        directory: str,
        real: str,
        by_name: dict[str, os.DirEntry],
        previous: Mapping[str, ModelEntry],
        hash_lookup: HashLookup | None,
        stats: ScanStats,
        stack: list[tuple[str, str | None]],
        sweep: bool,
    ) -> Iterator[ModelEntry]:
        """The models of one listed folder (``by_name``: its entries, whose ``path`` may be
        only their name); its subfolders go onto ``stack``."""
        extensions = root.extensions
        inside = self._contains_real
        sub_type = root.sub_type
        seen = stats.seen
        pack = _STAMP_PACK
        sidecar_suffix = SIDECAR_SUFFIX
        names = by_name.keys()
        folder_set: set[str] | None = None  # the names as a set, for building entries
        subdirs: list[tuple[str, str | None]] = []
        leftovers: list[os.DirEntry] = []
        refused = self._refused_previews
        claims = self._claims
        for name, item in by_name.items():
            if name[0] == ".":
                if sweep and is_leftover_name(name):
                    leftovers.append(item)
                continue  # hidden folders (our trash among them) and dotfiles
            try:
                is_dir = item.is_dir()
            except OSError:
                continue
            if is_dir:
                # a symlinked folder is checked by its real path when it is popped
                subdirs.append((f"{directory}/{name}", None if item.is_symlink() else f"{real}/{name}"))
                continue
            # os.path.splitext without its generic machinery (names starting with '.'
            # were skipped above); this runs for every file, companions included
            dot = name.rfind(".")
            ext = name[dot:].lower() if dot > 0 else ""
            if ext not in extensions:
                # spelled out, not is_leftover_name(): this runs for every companion file
                if sweep and (ext == PART_SUFFIX or (ext == ".json" and name.endswith(PART_STATE_SUFFIX))):
                    leftovers.append(item)
                continue
            path = f"{directory}/{name}"
            if claims is not None and not claims(name, path):
                continue
            if inside is not None and item.is_symlink() and not self._link_inside(path):
                continue
            try:
                st = item.stat()
            except OSError:
                stats.errors += 1
                continue
            if not stat_module.S_ISREG(st.st_mode):
                continue
            if seen is not None:
                seen.add(path)
            stem = name[:dot]
            sidecar_entry = by_name.get(stem + sidecar_suffix)
            sidecar_st = (
                self._sidecar_stat(sidecar_entry, f"{directory}/{stem}{sidecar_suffix}")
                if sidecar_entry is not None else None
            )
            sidecar_mtime = sidecar_st.st_mtime_ns if sidecar_st is not None else 0
            old = previous.get(path)
            if old is not None and old.sidecar_mtime_ns == sidecar_mtime and old.sub_type == sub_type:
                try:
                    same = old.stamp == pack(st.st_size, st.st_mtime_ns, st.st_ino)
                except struct.error:
                    same = old.stamp == FileStamp(st.st_size, st.st_mtime_ns, st.st_ino)
                if same:
                    # the preview the listing shows now (the common case inline: no
                    # refusal known, no symlink; else the careful way)
                    preview = find_preview_name(stem, names)
                    if preview and (refused or by_name[preview].is_symlink()):
                        preview = self._preview_name(directory, stem, names, by_name)
                    if old.preview_suffix == preview[len(stem):]:
                        stats.reused += 1
                        yield old
                        continue
            stats.built += 1
            if folder_set is None:
                folder_set = set(names)
            yield entry_from_disk(
                root=root,
                path=path,
                stamp=FileStamp(st.st_size, st.st_mtime_ns, st.st_ino),
                folder_names=folder_set,
                sidecar_mtime_ns=sidecar_mtime,
                hash_lookup=hash_lookup,
                contains_real=inside,
                preview_name=self._preview_name(directory, stem, names, by_name, verify=True),
                # the fast read is for plain files only; a symlinked one goes the careful way
                sidecar_stat=sidecar_st if sidecar_st is not None and not sidecar_entry.is_symlink() else None,
            )
        if leftovers:
            stats.leftovers_removed += self._sweeper.sweep(directory, leftovers, names)
        # depth-first, alphabetical: the first folders arrive first
        stack.extend(sorted(subdirs, reverse=True))

    def _link_inside(self, path: str) -> bool:
        """True when the symlink ``path`` resolves inside the library (logs a refusal once)."""
        assert self._contains_real is not None
        try:
            real = os.path.realpath(path)
        except OSError:
            return False
        if self._contains_real(real):
            return True
        self._report_skip(path, "a symlink to %s, outside every library root", real)
        return False

    def _report_skip(self, path: str, reason: str, *args: object) -> None:
        if path not in self._reported:
            self._reported.add(path)
            _log.warning("not listing %s: " + reason, path, *args)

    def _sidecar_stat(self, item: os.DirEntry, path: str) -> os.stat_result | None:
        """The stat of a model's sidecar (its mtime is what the walk compares), or None when
        there is none or it may not be read.

        A refused sidecar counts as absent, so an entry built without it is reused by the
        next walk (no rebuild, no new warning per scan), while one cached from a readable
        sidecar is rebuilt once the sidecar becomes a hard link or a symlink leading out.
        """
        try:
            st = item.stat()  # already needed for the mtime; st_nlink comes with it
        except OSError:
            return None
        if st.st_nlink > 1 or not stat_module.S_ISREG(st.st_mode):
            return None
        if item.is_symlink() and (self._contains_real is None or not self._contains_real(os.path.realpath(path))):
            return None
        return st

    def _preview_name(
        self,
        directory: str,
        stem: str,
        names: "set[str] | frozenset[str]",
        by_name: "Mapping[str, os.DirEntry] | None" = None,
        *,
        verify: bool = False,
    ) -> str:
        """The first preview of ``stem`` present in ``names`` that may be served, or ''.

        ``verify`` (an entry is being built) inspects the candidate, one stat more, and
        remembers a refusal; otherwise (the warm comparison) only what the listing already
        knows is used: remembered refusals, and symlinks, which are resolved.
        """
        if not verify:
            # the warm walk's common case, as cheap as before: no refusal known, no symlink
            first = find_preview_name(stem, names)
            if not first:
                return ""
            item = by_name.get(first) if by_name is not None else None
            if not self._refused_previews and item is not None and not item.is_symlink():
                return first
        for suffix in PREVIEW_SUFFIXES:
            name = stem + suffix
            if name not in names:
                continue
            path = f"{directory}/{name}"
            item = by_name.get(name) if by_name is not None else None
            refused_inode = self._refused_previews.get(path)
            if refused_inode is not None:
                if refused_inode == _inode(path, item):
                    continue
                self._refused_previews.pop(path, None)  # replaced since: look again
            if verify:
                try:
                    allowed = stat_companion(path, contains_real=self._contains_real, entry=item) is not None
                except OSError:
                    continue  # gone, or cannot be looked at: not a preview to offer
                if not allowed:
                    self._refused_previews[path] = _inode(path, item)
                    continue
            elif item is not None and item.is_symlink():
                if self._contains_real is None or not self._contains_real(os.path.realpath(path)):
                    continue
            return name
        return ""

    def scan_paths(
        self, items: list[tuple[LibraryRoot, str]], hash_lookup: HashLookup | None = None
    ) -> list[tuple[str, ModelEntry | None]]:
        """Re-read several models, listing each folder once (a bulk refresh of 1,000
        files in one folder must not list that folder 1,000 times)."""
        listings: dict[str, set[str]] = {}
        folder_inside: dict[str, bool] = {}
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
                folder_inside[directory] = self._folder_inside(directory)
            if not folder_inside[directory]:
                out.append((path, None))
                continue
            out.append((path, self._scan_file(root, path, hash_lookup, names)))
        return out

    def scan_one(
        self,
        root: LibraryRoot,
        path: str,
        hash_lookup: HashLookup | None = None,
        *,
        folder_names: "set[str] | None" = None,
    ) -> ModelEntry | None:
        """Re-read one model from disk, or None when it is gone or leads out of the library
        (used after mutations)."""
        if not self._folder_inside(os.path.dirname(path)):
            return None
        return self._scan_file(root, path, hash_lookup, folder_names)

    def _folder_inside(self, directory: str) -> bool:
        if self._contains_real is None:
            return True
        try:
            return self._contains_real(os.path.realpath(directory))
        except OSError:
            return False

    def _scan_file(
        self, root: LibraryRoot, path: str, hash_lookup: HashLookup | None, folder_names: "set[str] | None"
    ) -> ModelEntry | None:
        try:
            st = os.lstat(path)
            if stat_module.S_ISLNK(st.st_mode):
                if self._contains_real is not None and not self._link_inside(path):
                    return None
                st = os.stat(path)
        except OSError:
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        directory, name = os.path.split(path)
        stem = os.path.splitext(name)[0]
        if folder_names is None:
            try:
                folder_names = set(os.listdir(directory))
            except OSError:
                folder_names = set()
        sidecar_mtime = 0
        if stem + SIDECAR_SUFFIX in folder_names:
            sidecar = f"{directory}/{stem}{SIDECAR_SUFFIX}"
            try:
                sidecar_st = stat_companion(sidecar, contains_real=self._contains_real)
            except OSError:
                sidecar_st = None
            sidecar_mtime = sidecar_st.st_mtime_ns if sidecar_st is not None else 0
        else:
            sidecar_st = None
        return entry_from_disk(
            root=root,
            path=path,
            stamp=stamp_of(st),
            folder_names=folder_names,
            sidecar_mtime_ns=sidecar_mtime,
            hash_lookup=hash_lookup,
            contains_real=self._contains_real,
            preview_name=self._preview_name(directory, stem, folder_names, verify=True),
            # a symlinked sidecar fails the fast read's O_NOFOLLOW and is read the careful way
            sidecar_stat=sidecar_st,
        )


def _inode(path: str, item: "os.DirEntry | None") -> int:
    """The inode of the name ``path`` itself (not followed); -1 when it cannot be had."""
    try:
        return item.inode() if item is not None else os.lstat(path).st_ino
    except OSError:
        return -1
