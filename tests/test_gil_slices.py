"""Whole-library passes cut into slices (issue 13: no worker thread holds the GIL long)
give exactly what the one-call builtins give, across slice boundaries and with ties."""
from __future__ import annotations

import random

import pytest
from lm_plugin.py.services.library import gil_slices
from lm_plugin.py.services.library.gil_slices import (
    all_of,
    dict_of,
    dict_of_pairs,
    map_list,
    set_of,
    sorted_by,
    sorted_strings,
)


@pytest.fixture(autouse=True)
def small_slices(monkeypatch):
    monkeypatch.setattr(gil_slices, "SLICE", 7)  # many slices, ragged last one


@pytest.mark.parametrize("n", [0, 1, 7, 8, 50, 301])
def test_every_pass_equals_its_builtin(n):
    rng = random.Random(n)
    keys = [f"k{rng.randrange(n // 2 + 1)}" for _ in range(n)]  # repeated keys: the later wins
    values = list(range(n))
    assert map_list(str.upper, keys) == [k.upper() for k in keys]
    assert dict_of(keys, values) == dict(zip(keys, values))
    assert dict_of_pairs(list(zip(keys, values))) == dict(zip(keys, values))
    assert set_of(keys) == set(keys)
    assert all_of(str.islower, keys) is all(map(str.islower, keys))
    assert all_of(lambda k: k != keys[-1], keys) is (not keys)


@pytest.mark.parametrize("n", [0, 5, 7, 60, 500])
def test_the_sliced_sort_is_the_stable_sort(n):
    rng = random.Random(n)
    items = [f"item{i}" for i in range(n)]
    keys = [rng.choice("abcde") for _ in range(n)]  # many ties: their input order must stay
    assert sorted_by(items, keys) == [items[i] for i in sorted(range(n), key=keys.__getitem__)]
    words = [rng.choice(["b", "a", "c", "ab", ""]) + str(rng.randrange(9)) for _ in range(n)]
    assert sorted_strings(iter(words)) == sorted(words)
