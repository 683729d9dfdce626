"""The compact index of issue 13 answers exactly what a brute-force filter and sort of its
entries answers, through single upserts, prepared batches and removals; its cache snapshot
and journal give back the same entries."""
from __future__ import annotations

import random

import pytest
from lm_plugin.py.services.library.index_cache import IndexCache
from lm_plugin.py.services.library.model_index import SORT_KEYS, ListQuery, ModelIndex, natural_key, texts_of
from lm_plugin.py.services.library.model_records import (
    FileStamp,
    HashStatus,
    MetadataStatus,
    ModelEntry,
    ModelType,
    civitai_summary,
)

ROOT = "/lib/loras"
FOLDERS = ["", "style", "style/ink", "char", "char/v2"]
TAGS = ["Anime", "style", "ink", "Portrait", "cat"]
BASES = ["SDXL 1.0", "SD 1.5", "Pony", ""]


def make_entry(rng: random.Random, n: int, *, path: str | None = None) -> ModelEntry:
    folder = rng.choice(FOLDERS)
    name = f"{rng.choice(['alpha', 'Beta', 'gamma', 'zeta'])}_{rng.randint(1, 30)}_{n}"
    path = path or f"{ROOT}/{folder}/{name}.safetensors".replace("//", "/")
    folder = path[len(ROOT) + 1 :].rpartition("/")[0]
    sha = f"{rng.randrange(16 ** 6):06x}" * 10 + "abcd" if rng.random() < 0.8 else ""
    if sha and rng.random() < 0.1:
        sha = "f" * 64  # duplicates share a hash
    return ModelEntry(
        ModelType.LORA, path, ROOT, folder, ".safetensors",
        FileStamp(rng.randint(100, 200), rng.randint(1, 50) * 10**9, n),
        model_name=rng.choice([name, f"Model {rng.randint(1, 99)}"]),
        sha256=sha, autov3=f"{n:012x}" if rng.random() < 0.3 else "",
        hash_status=HashStatus.DONE if sha else HashStatus.PENDING, base_model=rng.choice(BASES),
        preview_suffix=rng.choice(["", ".webp", ".preview.png"]),
        tags=tuple(rng.sample(TAGS, rng.randint(0, 3))), favorite=rng.random() < 0.2,
        exclude=rng.random() < 0.1, creator=rng.choice(["ann", "bob"]),
        civitai=civitai_summary({"id": n, "trainedWords": ["kw"]}) if rng.random() < 0.5 else civitai_summary({}),
        metadata_status=MetadataStatus.OK,
    )


def brute(entries: dict[str, ModelEntry], q: ListQuery) -> list[str]:
    """The listing contract, spelled out entry by entry."""
    out = []
    for e in entries.values():
        if e.exclude and not q.include_excluded:
            continue
        if q.favorites_only and not e.favorite:
            continue
        if q.base_models and e.base_model not in q.base_models:
            continue
        tags = {t.casefold() for t in e.tags}
        wanted = {t.casefold() for t in q.tags_include}
        if wanted and not (wanted <= tags if q.tag_logic_all else wanted & tags):
            continue
        if q.tags_exclude and {t.casefold() for t in q.tags_exclude} & tags:
            continue
        if q.folder is not None:
            f = q.folder.strip("/")
            if not (e.folder == f or (q.recursive and (f == "" or e.folder.startswith(f + "/")))):
                continue
        if q.hash and q.hash not in (e.sha256, e.autov2, e.autov3):
            continue
        if q.search:
            text = f"{e.file_name.casefold()}\x00{e.model_name.casefold()}\x00{' '.join(e.tags).casefold()}"
            if not all(tok in text for tok in q.search.casefold().split()):
                continue
        out.append(e)
    out.sort(key=SORT_KEYS[q.sort_key])
    paths = [e.file_path for e in out]
    return paths[::-1] if q.descending else paths


QUERIES = [
    ListQuery(), ListQuery(sort_key="date", descending=True), ListQuery(sort_key="size"),
    ListQuery(search="alpha"), ListQuery(search="model 1"), ListQuery(base_models=("Pony",)),
    ListQuery(base_models=("SDXL 1.0", "SD 1.5"), sort_key="date"), ListQuery(tags_include=("anime", "ink")),
    ListQuery(tags_include=("anime", "ink"), tag_logic_all=True), ListQuery(tags_exclude=("cat",)),
    ListQuery(folder="style"), ListQuery(folder="char", recursive=False), ListQuery(favorites_only=True),
    ListQuery(include_excluded=True, descending=True), ListQuery(hash="f" * 10), ListQuery(hash="f" * 64),
    # a search over everything (searched first, then ordered): each sort, excluded or not
    ListQuery(search="a", sort_key="date", descending=True), ListQuery(search="beta 1", sort_key="size"),
    ListQuery(search="zeta_2", include_excluded=True), ListQuery(search="nothing-like-it"),
]


def check(index: ModelIndex, reference: dict[str, ModelEntry]) -> None:
    assert index.entries == reference
    for q in QUERIES:
        assert index.query(q) == brute(reference, q), q
        paths, total = index.page(q, 3, 5)
        assert (paths, total) == (brute(reference, q)[3:8], len(brute(reference, q))), q
    for e in list(reference.values())[:20]:
        assert e.file_path in index.paths_by_stem(e.file_name.upper())
        if e.autov3:
            assert e.file_path in index.paths_by_hash(e.autov3)
        if e.sha256:
            assert e.file_path in index.paths_by_hash(e.autov2)
            assert e.file_path in index.hash_index[e.sha256]
    dupes = sorted(sha for sha in {e.sha256 for e in reference.values() if e.sha256}
                   if sum(1 for e in reference.values() if e.sha256 == sha) > 1)
    assert index.duplicate_hashes() == dupes


def test_the_index_equals_a_brute_force_listing_through_every_kind_of_change():
    rng = random.Random(13)
    reference: dict[str, ModelEntry] = {}
    first = [make_entry(rng, n) for n in range(300)]
    reference.update((e.file_path, e) for e in first)
    index = ModelIndex.build(first)
    check(index, reference)
    n = 300
    for round_ in range(6):
        # single changes, by bisection
        for _ in range(15):
            n += 1
            victim = rng.choice(list(reference))
            if rng.random() < 0.3:
                index.remove(victim)
                del reference[victim]
            else:
                e = make_entry(rng, n, path=victim if rng.random() < 0.5 else None)
                index.upsert(e)
                reference[e.file_path] = e
        check(index, reference)
        # a batch, prepared off the loop, applied in two slices
        changed = [make_entry(rng, (n := n + 1), path=rng.choice(list(reference)) if rng.random() < 0.5 else None)
                   for _ in range(120)]
        changed = list({e.file_path: e for e in changed}.values())
        removed = [p for p in rng.sample(list(reference), 40) if p not in {e.file_path for e in changed}]
        prepared = index.prepare(changed, removed, dict(index.entries), index.version)
        index.apply_maps(changed[:50], prepared.texts[:50], removed)
        index.apply_maps(changed[50:], prepared.texts[50:], [])
        index.apply_orders(prepared)
        for p in removed:
            del reference[p]
        reference.update((e.file_path, e) for e in changed)
        check(index, reference)


def test_search_texts_made_after_the_build_take_every_change_made_meanwhile():
    """A start-up's index is served without search texts (issue 13: 20 MiB of the 100k warm
    peak, built while the walk's child process still held its memory); they are made off the
    loop later from ``pending_texts``, and what changed meanwhile is searched by its new text."""
    rng = random.Random(5)
    reference = {e.file_path: e for e in (make_entry(rng, n) for n in range(400))}
    index = ModelIndex.build(list(reference.values()), texts=False)
    assert not index.texts_ready
    pending = index.pending_texts()  # a worker thread makes their texts from here on
    victims = rng.sample(list(reference), 30)
    for i, victim in enumerate(victims):
        if i % 3 == 0:
            index.remove(victim)
            del reference[victim]
        else:
            e = make_entry(rng, 1000 + i, path=victim).evolve(model_name=f"fresh name {i}")
            index.upsert(e)
            reference[e.file_path] = e
    batch = [make_entry(rng, 2000 + i).evolve(model_name=f"fresh batch {i}") for i in range(100)]
    index.apply(index.prepare(batch, [], dict(index.entries), index.version))
    reference.update((e.file_path, e) for e in batch)

    index.install_texts(texts_of(pending))

    assert index.texts_ready
    fresh = ListQuery(search="fresh", include_excluded=True)
    assert sorted(index.query(fresh)) == sorted(p for p, e in reference.items() if "fresh" in e.model_name)
    assert not set(index.query(ListQuery(search="a", include_excluded=True))) - set(reference)
    check(index, reference)


def test_a_search_before_the_texts_are_made_makes_them_on_the_spot():
    rng = random.Random(6)
    reference = {e.file_path: e for e in (make_entry(rng, n) for n in range(300))}
    index = ModelIndex.build(list(reference.values()), texts=False)
    check(index, reference)
    assert index.texts_ready


def test_a_big_batch_is_placed_in_the_kept_orders_as_a_full_sort_would_place_it():
    """A reconcile of thousands of changes merges them into the orders it keeps (issue 13:
    a sort of every path made a key per model, the reconcile's memory peak)."""
    rng = random.Random(21)
    reference = {e.file_path: e for e in (make_entry(rng, n) for n in range(2000))}
    index = ModelIndex.build(list(reference.values()))
    changed = [make_entry(rng, 5000 + i, path=p) for i, p in enumerate(rng.sample(list(reference), 150))]
    changed += [make_entry(rng, 9000 + i) for i in range(60)]  # new models
    removed = [p for p in rng.sample(list(reference), 40) if p not in {e.file_path for e in changed}]

    index.apply(index.prepare(changed, removed, dict(index.entries), index.version))

    for p in removed:
        del reference[p]
    reference.update((e.file_path, e) for e in changed)
    check(index, reference)
    assert index.orders() == ModelIndex.build(list(reference.values())).orders()


def test_a_prepared_batch_is_refused_once_the_index_changed():
    rng = random.Random(1)
    index = ModelIndex.build([make_entry(rng, n) for n in range(100)])
    prepared = index.prepare([make_entry(rng, n) for n in range(100, 200)], [], dict(index.entries), index.version)
    index.upsert(make_entry(rng, 999))
    try:
        index.apply(prepared)
    except RuntimeError:
        pass
    else:
        raise AssertionError("a stale batch was applied")


def test_natural_order_puts_10_after_9():
    assert sorted(["lora10", "Lora9", "lora1"], key=natural_key) == ["lora1", "Lora9", "lora10"]


async def test_the_snapshot_and_its_journal_give_back_every_entry(tmp_path):
    rng = random.Random(5)
    entries = [make_entry(rng, n) for n in range(500)]
    index = ModelIndex.build(entries)
    cache = IndexCache(path=tmp_path / "index.sqlite3")
    await cache.open()
    try:
        await cache.store_snapshot(ModelType.LORA, list(index.entries.values()), index.orders())
        loaded, orders = await cache.load_snapshot(ModelType.LORA)
        assert {e.file_path: e for e in loaded} == index.entries
        assert orders == index.orders()  # a warm start sorts nothing
        changed = [make_entry(rng, 1000 + i, path=e.file_path) for i, e in enumerate(entries[:30])]
        await cache.upsert_entries(changed)
        await cache.delete_entries([e.file_path for e in entries[30:40]], ModelType.LORA)
        expected = dict(index.entries)
        expected.update((e.file_path, e) for e in changed)
        for e in entries[30:40]:
            del expected[e.file_path]
        loaded, orders = await cache.load_snapshot(ModelType.LORA)
        assert {e.file_path: e for e in loaded} == expected
        rebuilt = ModelIndex.build(loaded, orders)  # the touched paths are placed again
        reference = ModelIndex.build(list(expected.values()))
        assert rebuilt.orders() == reference.orders()
    finally:
        await cache.close()


async def test_deferred_deletes_and_upserts_reach_the_cache_in_the_order_they_were_made(tmp_path):
    """A rename or move answers without waiting for SQLite (issue 13): its delete is deferred
    like its upsert; the last word on a path wins, and a reader sees both."""
    rng = random.Random(7)
    entries = [make_entry(rng, n) for n in range(50)]
    cache = IndexCache(path=tmp_path / "index.sqlite3")
    await cache.open()
    try:
        await cache.store_snapshot(ModelType.LORA, entries)
        cache.defer_delete([e.file_path for e in entries[:5]], ModelType.LORA)
        back = make_entry(rng, 500, path=entries[0].file_path)
        cache.defer_upsert(back)  # deleted, then written again: it stays
        cache.defer_upsert(entries[6].evolve(model_name="then gone"))
        cache.defer_delete([entries[6].file_path], ModelType.LORA)  # written, then deleted: it goes
        loaded = await cache.load_entries(ModelType.LORA)
    finally:
        await cache.close()
    expected = {e.file_path: e for e in entries[5:] if e is not entries[6]}
    expected[back.file_path] = back
    assert loaded == expected


async def test_journal_edits_that_keep_a_models_place_keep_the_stored_orders(tmp_path):
    """A hash or tag edit (same name and stamp) leaves the orders whole: no sort, no new snapshot."""
    rng = random.Random(6)
    entries = [make_entry(rng, n) for n in range(300)]
    index = ModelIndex.build(entries)
    cache = IndexCache(path=tmp_path / "index.sqlite3")
    await cache.open()
    try:
        await cache.store_snapshot(ModelType.LORA, entries, index.orders())
        edited = [e.evolve(sha256="e" * 64, hash_status=HashStatus.DONE, tags=("new",)) for e in entries[:50]]
        renamed = [entries[60].evolve(model_name="zzz renamed")]
        await cache.upsert_entries(edited + renamed)
        loaded, orders = await cache.load_snapshot(ModelType.LORA)
        assert all(len(o) == len(entries) - 1 for o in orders.values())  # only the renamed one is placed again
        expected = {**index.entries, **{e.file_path: e for e in edited + renamed}}
        rebuilt = ModelIndex.build(loaded, orders)
        assert rebuilt.orders() == ModelIndex.build(list(expected.values())).orders()
        assert rebuilt.by_tag["new"] == {e.file_path for e in edited}
    finally:
        await cache.close()


def test_a_bulk_build_equals_entries_inserted_one_by_one():
    rng = random.Random(8)
    entries = [make_entry(rng, n) for n in range(400)]
    bulk = ModelIndex.build(entries)
    single = ModelIndex()
    for entry in entries:
        single.upsert(entry)
    for name in ("entries", "_texts", "_by_sha", "_by_autov3", "_by_stem", "tag_counts", "base_model_counts",
                 "folder_counts", "by_tag", "by_base_model", "by_folder", "favorites", "excluded", "_shas"):
        assert getattr(bulk, name) == getattr(single, name), name
    assert bulk.orders() == single.orders()


@pytest.mark.parametrize("probe", [0, 16, 1024])
def test_relative_paths_through_names_and_folders_equal_a_pass_over_every_path(probe, monkeypatch):
    from lm_plugin.py.services.library import model_queries
    from lm_plugin.py.services.library.model_index import NO_USAGE
    from lm_plugin.py.services.library.model_queries import ModelQueries

    monkeypatch.setattr(model_queries, "RELATIVE_PROBE", probe)  # 0 and 16: the key look-ups answer

    rng = random.Random(13)
    entries = [make_entry(rng, n) for n in range(600)]
    index = ModelIndex.build(entries)

    class Service:  # what ModelQueries reads of a TypeLibrary
        usage = NO_USAGE
        roots = []

    service = Service()
    service.index = index
    queries = ModelQueries(service=service)

    def brute(needle: str, limit: int) -> list[str]:
        out = []
        for path in index.order("name"):
            rel = path[len(ROOT) + 1 :]
            if path not in index.excluded and needle.casefold() in rel.casefold():
                out.append(rel)
        return out[:limit]

    for needle in ("alpha", "ALPHA_1", "ink", "style/ink", "tensors", ".safe", "_3", "9", "char/v2/b", "none-such", ""):
        for limit in (1, 15, 500):
            assert queries.relative_paths(needle, limit) == brute(needle, limit), (needle, limit)


def test_usage_orders_and_the_unused_filter_equal_a_brute_force_listing():
    from dataclasses import dataclass

    @dataclass
    class Record:
        count: int
        last_used: float

    class History:
        version = 1

        def __init__(self):
            self.records = {}

        def all(self):
            return self.records

    rng = random.Random(11)
    entries = [make_entry(rng, n) for n in range(300)]
    index = ModelIndex.build(entries)
    usage = History()
    hashes = sorted({e.sha256 for e in entries if e.sha256})
    for sha in hashes[::3]:
        usage.records[sha] = Record(rng.randint(1, 4), 1_700_000_000 + rng.randint(0, 10**6))
    shown = [e for e in entries if not e.exclude]

    def name_key(e):
        return SORT_KEYS["name"](e)

    def count(e):
        r = usage.records.get(e.sha256)
        return r.count if r else 0

    def last(e):
        r = usage.records.get(e.sha256)
        return r.last_used if r else 0

    by_usage = [e.file_path for e in sorted(shown, key=lambda e: (-count(e), name_key(e)))]
    by_last = [e.file_path for e in sorted(shown, key=lambda e: (-last(e), name_key(e)))]
    assert index.query(ListQuery(sort_key="usage", descending=True), usage) == by_usage
    assert index.query(ListQuery(sort_key="usage"), usage) == by_usage[::-1]
    assert index.query(ListQuery(sort_key="last_used", descending=True), usage) == by_last
    # a new use is seen at once: the order is kept per usage version
    top = by_usage[-1]
    usage.records[index.entries[top].sha256 or "x"] = Record(99, 1_800_000_000)
    usage.version += 1
    if index.entries[top].sha256:
        assert index.query(ListQuery(sort_key="usage", descending=True), usage)[0] in index.paths_by_hash(index.entries[top].sha256)
    import time as _time

    cutoff = _time.time() - 30 * 86_400
    usage.records = {sha: Record(1, _time.time() - rng.choice([1, 40]) * 86_400) for sha in hashes[::2]}
    usage.version += 1
    unused = [p for p in index.query(ListQuery()) if last(index.entries[p]) < cutoff]
    assert index.query(ListQuery(unused_days=30), usage) == unused
    # without a usage source the usage sorts are by name and nothing counts as used
    assert index.query(ListQuery(sort_key="usage", descending=True)) == index.query(ListQuery())
    assert index.query(ListQuery(unused_days=1)) == index.query(ListQuery())


async def test_a_stored_order_that_is_not_a_permutation_is_not_used(tmp_path):
    """A warm start takes the cache's orders without a check per path, so the loader only
    hands over orders whose row positions are each row once; a damaged one is sorted again."""
    import sqlite3
    from array import array

    rng = random.Random(9)
    entries = [make_entry(rng, n) for n in range(200)]
    index = ModelIndex.build(entries)
    cache = IndexCache(path=tmp_path / "index.sqlite3")
    await cache.open()
    try:
        await cache.store_snapshot(ModelType.LORA, list(index.entries.values()), index.orders())
    finally:
        await cache.close()
    with sqlite3.connect(tmp_path / "index.sqlite3") as conn:
        (raw,) = conn.execute("SELECT data FROM snapshot WHERE model_type='lora' AND chunk=-1").fetchone()
        rows = array("I")
        rows.frombytes(raw)
        rows[1] = rows[0]  # one row twice, another missing
        conn.execute("UPDATE snapshot SET data=? WHERE model_type='lora' AND chunk=-1", (rows.tobytes(),))
    cache = IndexCache(path=tmp_path / "index.sqlite3")
    await cache.open()
    try:
        loaded, orders = await cache.load_snapshot(ModelType.LORA)
    finally:
        await cache.close()
    assert len(orders) == len(SORT_KEYS) - 1  # the damaged one is left out
    rebuilt = ModelIndex.build(loaded, orders, trusted=True)
    assert rebuilt.orders() == index.orders()


def test_search_through_text_blocks_equals_a_pass_over_every_text():
    """Search finds its first word in joined blocks of texts (issue 13): a word never matches
    across two texts of a block, nor across a line break inside one name; edits re-join."""
    rng = random.Random(11)
    entries = [make_entry(rng, n) for n in range(600)]
    entries[0] = entries[0].evolve(model_name="ends with ab")
    entries[1] = entries[1].evolve(model_name="cd starts\nline two")
    index = ModelIndex.build(entries)
    words = ["alpha", "beta_1", "ab", "cd", "abcd", "line", "two", "linetwo", "zeta_2", "_1", "model 1", "e"]

    def expected(word: str) -> list[str]:
        tokens = word.casefold().split()
        texts = {e.file_path: f"{e.file_name}\x00{e.model_name}\x00{' '.join(e.tags)}".casefold() for e in index.entries.values()}
        return sorted(p for p, text in texts.items() if all(t in text for t in tokens))

    for word in words:
        assert sorted(index._search_everything(ListQuery(search=word))) == expected(word), word
    for entry in entries[:50]:  # edits: the touched blocks are joined again
        index.upsert(entry.evolve(model_name=f"renamed abcd {entry.model_name}"))
    for path in [e.file_path for e in entries[50:80]]:
        index.remove(path)
    for word in words:
        assert sorted(index._search_everything(ListQuery(search=word))) == expected(word), word
