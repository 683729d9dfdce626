"""Typed records for models in the library: the in-memory entry and its JSON form.

Owns the shape of one indexed model and its conversion to the listing item; it must
not touch the disk (the scanner builds entries, the sidecar store reads and writes files).

A library holds up to ~100,000 of these records, and ComfyUI shares the machine's memory
with the models it runs, so the records are tuples (``typing.NamedTuple``: a frozen
dataclass of 25 fields costs the same bytes but is built ~30 times slower, which a warm
start of 100,000 entries pays in full), store nothing that can be derived from another
field (file name, AutoV2, preview path), and share the strings a library repeats (folders,
base models, tags, creators) through ``shared``.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any, NamedTuple

from ..shared.model_types import ModelType

__all__ = [
    "EMPTY_CIVITAI", "CivitaiSummary", "FileStamp", "HashStatus", "MetadataStatus", "ModelEntry", "ModelType",
    "civitai_summary", "shared",
]


class HashStatus(str, Enum):
    PENDING = "pending"
    HASHING = "hashing"
    DONE = "done"
    FAILED = "failed"


class MetadataStatus(str, Enum):
    """How the sidecar (or header) of a model was read; anything but OK is a flag."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT_SIDECAR = "corrupt_sidecar"
    CORRUPT_HEADER = "corrupt_header"
    UNREADABLE = "unreadable"


# One object per distinct value of the strings a library repeats. Bounded: past the cap a
# value is simply not shared (costs memory, never correctness); a plain dict rather than
# ``sys.intern``, whose strings may be immortal on newer Pythons.
_SHARED: dict[str, str] = {}
_SHARED_CAP = 200_000


def shared(value: str) -> str:
    """The one copy of ``value`` the library keeps (for folders, tags, base models, ...)."""
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_CAP:
        _SHARED[value] = value
    return value


_STAMP = struct.Struct("<QqQ")  # size, mtime_ns (may be negative), inode
_U64 = (1 << 64) - 1
_I64_MAX = (1 << 63) - 1


class FileStamp(bytes):
    """What a stat-only walk compares: a file is unchanged while size, mtime_ns and inode agree.

    The three numbers packed into 24 bytes: one object of 57 bytes per model, where a tuple
    of three Python ints took 176 (about 10 MB at 100,000 models). Compared and hashed as
    bytes, which is the same as comparing the three numbers.
    """

    __slots__ = ()

    def __new__(cls, size: int, mtime_ns: int, inode: int) -> "FileStamp":
        try:
            return bytes.__new__(cls, _STAMP.pack(size, mtime_ns, inode))
        except struct.error:  # past 64 bits (a 128-bit file id, a date after 2262): folded in
            return bytes.__new__(cls, _STAMP.pack(size & _U64, max(min(mtime_ns, _I64_MAX), -_I64_MAX), inode & _U64))

    @property
    def size(self) -> int:
        return _STAMP.unpack(self)[0]

    @property
    def mtime_ns(self) -> int:
        return _STAMP.unpack(self)[1]

    @property
    def inode(self) -> int:
        return _STAMP.unpack(self)[2]

    @property
    def mtime(self) -> float:
        return _STAMP.unpack(self)[1] / 1e9

    def __reduce__(self):
        return (FileStamp, _STAMP.unpack(self))

    def __repr__(self) -> str:
        size, mtime_ns, inode = _STAMP.unpack(self)
        return f"FileStamp(size={size}, mtime_ns={mtime_ns}, inode={inode})"


_CIVITAI_KEYS = ("id", "modelId", "name", "trainedWords", "model_name", "type")
_TRAINED_WORDS = 3


class CivitaiSummary(Mapping[str, Any]):
    """The small CivitAI part of a listing item, read like the dict it replaces.

    Immutable; one tuple of six values instead of a dict (a fifth of the bytes). The full
    CivitAI document stays in the sidecar.
    """

    __slots__ = ("_values",)

    def __init__(self, values: tuple = ()) -> None:
        self._values = tuple(values)

    @classmethod
    def of_values(cls, values: tuple) -> "CivitaiSummary":
        """From ``values`` as ``values()`` returns them (the cache's form), unchecked."""
        if not values:
            return EMPTY_CIVITAI
        summary = object.__new__(cls)
        summary._values = values
        return summary

    @property
    def values_tuple(self) -> tuple:
        return self._values

    def __getitem__(self, key: str) -> Any:
        if not self._values:
            raise KeyError(key)
        try:
            i = _CIVITAI_KEYS.index(key)
        except ValueError:
            raise KeyError(key) from None
        value = self._values[i]
        # a fresh list, as the dict gave: callers may extend it
        return list(value) if i == _TRAINED_WORDS else value

    def __iter__(self) -> Iterator[str]:
        return iter(_CIVITAI_KEYS if self._values else ())

    def __len__(self) -> int:
        return len(_CIVITAI_KEYS) if self._values else 0

    def as_dict(self) -> dict[str, Any]:
        """``dict(self)`` without the Mapping protocol's per-key look-ups."""
        values = self._values
        if not values:
            return {}
        out = dict(zip(_CIVITAI_KEYS, values))
        out["trainedWords"] = list(values[_TRAINED_WORDS])
        return out

    @property
    def trained_words(self) -> tuple[str, ...]:
        return self._values[_TRAINED_WORDS] if self._values else ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CivitaiSummary):
            return self._values == other._values
        return Mapping.__eq__(self, other)

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"CivitaiSummary({dict(self)!r})"


EMPTY_CIVITAI = CivitaiSummary()


class ModelEntry(NamedTuple):
    """One model file as the library knows it (the fields a listing or filter needs).

    Derived fields are properties: ``file_name`` and ``extension`` come from ``file_path``,
    ``preview_path`` from it and ``preview_suffix``, ``autov2`` from ``sha256``. The full
    sidecar stays on disk; ``civitai`` holds only ``civitai_summary`` of it.
    """

    model_type: ModelType
    file_path: str  # absolute, forward slashes
    root: str  # the library root it lies in (absolute, forward slashes)
    folder: str  # relative folder inside the root ('' at top level)
    extension: str  # '.safetensors'
    stamp: FileStamp
    sub_type: str = ""  # 'checkpoint' / 'diffusion_model' for checkpoints; '' otherwise
    model_name: str = ""
    sha256: str = ""
    autov3: str = ""
    hash_status: HashStatus = HashStatus.PENDING
    base_model: str = ""
    preview_suffix: str = ""  # the preview is '<stem><suffix>' beside the model; '' = none
    preview_nsfw_level: int = 0
    tags: tuple[str, ...] = ()
    trigger_words: tuple[str, ...] = ()
    favorite: bool = False
    notes: str = ""
    exclude: bool = False
    from_civitai: bool = False
    civitai: CivitaiSummary = EMPTY_CIVITAI
    creator: str = ""
    usage_tips: str = ""
    metadata_status: MetadataStatus = MetadataStatus.MISSING
    sidecar_mtime_ns: int = 0  # 0 = no sidecar file

    @property
    def file_name(self) -> str:
        """The stem, without folder or extension."""
        path = self.file_path
        return path[path.rfind("/") + 1 : len(path) - len(self.extension)]

    @property
    def autov2(self) -> str:
        """CivitAI's AutoV2: the first 10 hex digits of the SHA256 ('' while unknown)."""
        return self.sha256[:10]

    @property
    def preview_path(self) -> str:
        """Absolute path of the preview file, '' when none."""
        if not self.preview_suffix:
            return ""
        return self.file_path[: len(self.file_path) - len(self.extension)] + self.preview_suffix

    @property
    def display_name(self) -> str:
        return self.model_name or self.file_name

    @property
    def relative_path(self) -> str:
        """Path relative to the root, with extension (what ComfyUI's loaders take)."""
        path = self.file_path
        name = path[path.rfind("/") + 1 :]
        return f"{self.folder}/{name}" if self.folder else name

    @property
    def modified(self) -> float:
        return self.stamp.mtime

    def evolve(self, **changes: Any) -> "ModelEntry":
        return self._replace(**changes)


def civitai_summary(civitai: dict[str, Any], model_name: str = "") -> CivitaiSummary:
    """The small CivitAI part of a listing item (full data stays in the sidecar).

    ``model_name`` is the entry's own; the summary's copy of an equal name is that object.
    """
    if not civitai:
        return EMPTY_CIVITAI
    model = civitai.get("model") if isinstance(civitai.get("model"), dict) else {}
    words = civitai.get("trainedWords") or ()
    name = model.get("name")
    if isinstance(name, str) and name == model_name:
        name = model_name
    kind = model.get("type")
    return CivitaiSummary.of_values((
        civitai.get("id"),
        civitai.get("modelId"),
        civitai.get("name"),
        tuple(words),
        name,
        shared(kind) if isinstance(kind, str) else kind,
    ))
