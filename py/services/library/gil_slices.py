"""Passes over a whole library cut into slices, so a worker thread never holds the GIL long.

``map``, ``dict(zip(...))``, ``set`` and ``sorted`` over 100,000 items run in C without one
bytecode boundary, where the interpreter could switch threads: at that size one call holds
the GIL for 50-300 ms, and the event loop (ComfyUI's too) waits that long. Cut into slices
of ``SLICE`` items, each call holds it for a few milliseconds and the loop runs in between.
Plain functions on sequences; no I/O.
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

# items per C-level call: a few milliseconds of GIL on a slow machine
SLICE = 4096


def map_list(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``list(map(fn, items))``, a slice at a time."""
    out: list[T] = []
    for start in range(0, len(items), SLICE):
        out += map(fn, items[start : start + SLICE])
    return out


def dict_of(keys: Sequence[K], values: Sequence[T]) -> dict[K, T]:
    """``dict(zip(keys, values))``, a slice at a time (a later key wins, as there)."""
    out: dict[K, T] = {}
    for start in range(0, len(keys), SLICE):
        out.update(zip(keys[start : start + SLICE], values[start : start + SLICE]))
    return out


def dict_of_pairs(pairs: Sequence[tuple[K, T]]) -> dict[K, T]:
    """``dict(pairs)``, a slice at a time."""
    out: dict[K, T] = {}
    for start in range(0, len(pairs), SLICE):
        out.update(pairs[start : start + SLICE])
    return out


def set_of(items: Sequence[K]) -> set[K]:
    out: set[K] = set()
    for start in range(0, len(items), SLICE):
        out.update(items[start : start + SLICE])
    return out


def all_of(predicate: Callable[[Any], object], items: Sequence[Any]) -> bool:
    """``all(map(predicate, items))``, a slice at a time."""
    return all(all(map(predicate, items[start : start + SLICE])) for start in range(0, len(items), SLICE))


def sorted_by(items: Sequence[T], keys: Sequence[Any]) -> list[T]:
    """``items`` in ascending order of ``keys`` (same length; ties keep their order).

    Slices are sorted in C, then merged by ``heapq.merge``, which is Python code: the GIL
    can switch between any two items of the merge.
    """
    n = len(items)
    key = keys.__getitem__
    if n <= SLICE:
        return [items[i] for i in sorted(range(n), key=key)]
    runs = [sorted(range(start, min(n, start + SLICE)), key=key) for start in range(0, n, SLICE)]
    # merge() takes equal keys from earlier runs first: the sort stays stable
    return [items[i] for i in heapq.merge(*runs, key=key)]


def sorted_strings(values: Iterable[str]) -> list[str]:
    """``sorted(values)`` for strings, a slice at a time."""
    items = list(values)
    return sorted_by(items, items)
