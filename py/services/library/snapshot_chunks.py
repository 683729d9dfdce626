"""The index cache's stored forms of entries: snapshot chunks (marshalled columns, built
back in C) and journal rows, with the two queries that read them.

Owns the formats and nothing else, so the walk's child processes (``walk_child``, which
send their entries as chunks and read a warm start's cached models themselves) import it
without asyncio and the rest of ``index_cache``.
"""
from __future__ import annotations

import json
import marshal
from array import array
from collections.abc import Iterator
from functools import partial
from itertools import islice, repeat

from .model_records import CivitaiSummary, FileStamp, HashStatus, MetadataStatus, ModelEntry, ModelType, shared

_DECODE_SLICE = 250  # records built per C call when a chunk is decoded
_HASH_STATUS_LIST = list(HashStatus)
_METADATA_STATUS_LIST = list(MetadataStatus)
_HASH_STATUS_CODE = {s: i for i, s in enumerate(_HASH_STATUS_LIST)}
_METADATA_STATUS_CODE = {s: i for i, s in enumerate(_METADATA_STATUS_LIST)}
# flags byte: favorite, exclude, from_civitai
_BIT = [[bool(code & (1 << bit)) for code in range(8)] for bit in range(3)]
_CHUNK_TAG = "columns-1"
STAMP_SIZE = 24
# built in C, no Python call per entry: a tuple (or bytes) of exactly the record's fields
_new_entry = partial(tuple.__new__, ModelEntry)
_new_stamp = partial(bytes.__new__, FileStamp)
_summary_of = CivitaiSummary.of_values
_HASH_STATUS = {s.value: s for s in HashStatus}
_METADATA_STATUS = {s.value: s for s in MetadataStatus}
# a type's snapshot chunks (negative numbers: its sort orders) and its journal rows
SNAPSHOT_SQL = "SELECT chunk, data FROM snapshot WHERE model_type=? ORDER BY chunk"
JOURNAL_SQL = "SELECT path, data FROM journal WHERE model_type=?"


def stamp_slices(stamps: bytes, n: int) -> Iterator[bytes]:
    """The ``n`` packed stamps joined in ``stamps``, one bytes each, cut in C."""
    return map(stamps.__getitem__, map(slice, range(0, n * STAMP_SIZE, STAMP_SIZE),
                                       range(STAMP_SIZE, (n + 1) * STAMP_SIZE, STAMP_SIZE)))


def encode_chunk(entries: list[ModelEntry]) -> bytes:
    """Entries as one marshalled tuple of columns (a snapshot chunk).

    Strings a library repeats (roots, folders, base models, tags, ...) are stored once per
    chunk and named by number, so ``decode_chunk`` builds every record in C (``map`` and
    ``zip`` over the columns, ``tuple.__new__``) instead of a Python call per field.
    """
    ids: dict[str, int] = {}
    add = ids.setdefault

    def low(values) -> bytes:
        return array("I", [add(v, len(ids)) for v in values]).tobytes()

    columns = (
        low(e.root for e in entries), low(e.folder for e in entries), low(e.extension for e in entries),
        low(e.sub_type for e in entries), low(e.base_model for e in entries), low(e.preview_suffix for e in entries),
        low(e.creator for e in entries), low(e.usage_tips for e in entries),
    )
    tags = [tuple([add(t, len(ids)) for t in e.tags]) if e.tags else () for e in entries]
    return marshal.dumps((
        _CHUNK_TAG, len(entries), list(ids), [e.file_path for e in entries], columns,
        b"".join(e.stamp for e in entries), [e.model_name for e in entries], [e.sha256 for e in entries],
        [e.autov3 for e in entries], bytes([_HASH_STATUS_CODE[e.hash_status] for e in entries]),
        [e.preview_nsfw_level for e in entries], tags, [e.trigger_words for e in entries],
        bytes([e.favorite | e.exclude << 1 | e.from_civitai << 2 for e in entries]),
        [e.civitai.values_tuple for e in entries], bytes([_METADATA_STATUS_CODE[e.metadata_status] for e in entries]),
        [e.sidecar_mtime_ns for e in entries], [e.notes for e in entries],
    ))


def decode_chunk(model_type: ModelType, data: bytes) -> list[ModelEntry]:
    """Inverse of ``encode_chunk``; raises ``ValueError`` (or ``TypeError``, ``IndexError``,
    ``EOFError``) for data it cannot read."""
    (tag, n, table, paths, columns, stamps, names, shas, autov3s, hash_codes, nsfw, tags, triggers, flags,
     civitai, status_codes, sidecar_mtimes, notes) = marshal.loads(data)
    if tag != _CHUNK_TAG or len(columns) != 8 or len(stamps) != n * STAMP_SIZE:
        raise ValueError("not a snapshot chunk of this version")
    if any(len(col) != n for col in (paths, names, shas, autov3s, hash_codes, nsfw, tags, triggers, flags, civitai,
                                     status_codes, sidecar_mtimes, notes)):
        raise ValueError("columns of different lengths")
    table = [shared(s) for s in table]
    get = table.__getitem__
    low = [map(get, _numbers(raw, n)) for raw in columns]
    root, folder, extension, sub_type, base_model, preview_suffix, creator, usage_tips = low
    stamp_of = map(_new_stamp, stamp_slices(stamps, n))
    tag_tuples = [tuple(map(get, t)) if t else () for t in tags]
    rows = zip(
        repeat(model_type, n), paths, root, folder, extension, stamp_of, sub_type, names, shas, autov3s,
        map(_HASH_STATUS_LIST.__getitem__, hash_codes), base_model, preview_suffix, nsfw, tag_tuples, triggers,
        map(_BIT[0].__getitem__, flags), notes, map(_BIT[1].__getitem__, flags), map(_BIT[2].__getitem__, flags),
        map(_summary_of, civitai), creator, usage_tips, map(_METADATA_STATUS_LIST.__getitem__, status_codes),
        sidecar_mtimes,
    )
    # a few hundred records per C call: 2,000 in one held the GIL for up to 70 ms
    entries: list[ModelEntry] = []
    for _ in range(0, n, _DECODE_SLICE):
        entries += map(_new_entry, islice(rows, _DECODE_SLICE))
    if entries and len(entries[0]) != len(ModelEntry._fields):
        raise ValueError("not a snapshot chunk of this version")
    return entries


def view_columns(data: bytes) -> tuple[list[str], bytes, list[int], list[str], list[str]]:
    """The columns of a chunk a walk compares (paths, stamps, sidecar mtimes, sub-types,
    preview suffixes), without building its records; raises as ``decode_chunk``."""
    (tag, n, table, paths, columns, stamps, *_, sidecar_mtimes, _notes) = marshal.loads(data)
    if tag != _CHUNK_TAG or len(columns) != 8 or len(stamps) != n * STAMP_SIZE or len(paths) != n:
        raise ValueError("not a snapshot chunk of this version")
    if len(sidecar_mtimes) != n:
        raise ValueError("columns of different lengths")
    get = table.__getitem__
    sub_types, suffixes = (list(map(get, _numbers(columns[i], n))) for i in (3, 5))
    return paths, stamps, sidecar_mtimes, sub_types, suffixes


def _numbers(raw: bytes, n: int) -> array:
    """A column of ``n`` string-table numbers (``encode_chunk``'s ``low``)."""
    values = array("I")
    values.frombytes(raw)
    if len(values) != n:
        raise ValueError("columns of different lengths")
    return values


def entry_to_row(entry: ModelEntry) -> tuple:
    """The stored form of an entry: plain values only (its type is the snapshot's)."""
    stamp = entry.stamp
    return (
        entry.file_path, entry.root, entry.folder, entry.extension, stamp.size, stamp.mtime_ns, stamp.inode,
        entry.sub_type, entry.model_name, entry.sha256, entry.autov3, entry.hash_status.value, entry.base_model,
        entry.preview_suffix, entry.preview_nsfw_level, entry.tags, entry.trigger_words, entry.favorite,
        entry.notes, entry.exclude, entry.from_civitai, entry.civitai.values_tuple, entry.creator,
        entry.usage_tips, entry.metadata_status.value, entry.sidecar_mtime_ns,
    )


def entry_from_row(model_type: ModelType, row: tuple) -> ModelEntry:
    """Inverse of ``entry_to_row``; repeated strings become the library's shared copies.
    Raises ``ValueError`` / ``KeyError`` / ``TypeError`` for a row it cannot read."""
    (path, root, folder, extension, size, mtime_ns, inode, sub_type, model_name, sha256, autov3, hash_status,
     base_model, preview_suffix, nsfw, tags, trigger_words, favorite, notes, exclude, from_civitai, civitai,
     creator, usage_tips, metadata_status, sidecar_mtime_ns) = row
    return ModelEntry(
        model_type, path, shared(root), shared(folder), shared(extension), FileStamp(size, mtime_ns, inode),
        shared(sub_type), model_name, sha256, autov3, _HASH_STATUS[hash_status], shared(base_model),
        shared(preview_suffix), nsfw, tuple(map(shared, tags)) if tags else (), tuple(trigger_words),
        favorite, notes, exclude, from_civitai, CivitaiSummary.of_values(tuple(civitai)), shared(creator),
        shared(usage_tips), _METADATA_STATUS[metadata_status], sidecar_mtime_ns,
    )


def row_key(path: str) -> str:
    """The primary key of a path: itself, or an escaped form when it is not valid UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(path)
    return path


def path_of_key(key: str) -> str:
    """The path a journal key names (``row_key`` escapes paths that are not UTF-8)."""
    if key.startswith('"'):
        try:
            value = json.loads(key)
        except ValueError:
            return key
        return value if isinstance(value, str) else key
    return key
