"""Where the bytes per model go: tracemalloc over the steps of a start-up, in-process.

    .venv/bin/python bench/memory_profile.py --size 10000            # the current code
    .venv/bin/python bench/memory_profile.py --size 10000 --top 15   # plus the top allocation sites

Scans the bench library (``synthetic_library.py``, generated if missing) with the real
scanner, builds the index, stores and reloads the SQLite cache, and reports the bytes per
model that each step leaves alive (tracemalloc; the interpreter's own baseline excluded)
and the peak during each step. Bench code only.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import synthetic_library as synth  # noqa: E402


def load_plugin(plugin: Path = REPO):
    if "lm_plugin" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lm_plugin", plugin / "__init__.py", submodule_search_locations=[str(plugin)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["lm_plugin"] = module
        spec.loader.exec_module(module)
    return sys.modules["lm_plugin"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--top", type=int, default=0, help="show the top N allocation sites of the index")
    parser.add_argument("--plugin", type=Path, default=REPO,
                        help="another checkout of the package to measure (e.g. `git archive HEAD` unpacked)")
    args = parser.parse_args()
    root = synth.lora_root(synth.generate(args.size, seed=1))
    load_plugin(args.plugin)
    old_api = not hasattr(__import__("lm_plugin.py.services.library.model_index", fromlist=["x"]).ModelIndex, "build")
    from lm_plugin.py.services.library.index_cache import IndexCache
    from lm_plugin.py.services.library.model_index import ModelIndex
    from lm_plugin.py.services.library.model_records import ModelType
    from lm_plugin.py.services.library.model_scanner import LibraryRoot, ModelScanner, ScanStats

    lib_root = LibraryRoot(path=str(root), model_type=ModelType.LORA)
    scanner = ModelScanner()
    tracemalloc.start(8)
    base = tracemalloc.get_traced_memory()[0]
    rows: list[tuple[str, float, float, float]] = []

    def step(name: str, fn):
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        t0 = time.perf_counter()
        out = fn()
        took = time.perf_counter() - t0
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
        rows.append((name, (now - before) / n_models(), (peak - before) / n_models(), took))
        return out

    count = [args.size]
    n_models = lambda: max(1, count[0])  # noqa: E731
    entries = step("scan: entries (records only)", lambda: [e for b in scanner.iter_batches([lib_root], {}, None, ScanStats()) for e in b])
    count[0] = len(entries)
    snap_entries = tracemalloc.take_snapshot()

    def build():
        if old_api:  # the code before issue 13
            index = ModelIndex()
            index.add_many(entries)
            return index
        return ModelIndex.build(entries)

    index = step("index over the entries (structures)", build)
    snap_index = tracemalloc.take_snapshot()
    tmp = Path(tempfile.mkdtemp(prefix="memprof-"))

    async def cache_roundtrip():
        cache = IndexCache(path=tmp / "index.sqlite3")
        await cache.open()
        if old_api:
            await cache.replace_entries(ModelType.LORA, entries)
        else:
            await cache.store_snapshot(ModelType.LORA, entries, index.orders())
        loaded = await cache.load_entries(ModelType.LORA)
        await cache.close()
        return loaded

    loaded = step("cache: store + load back (warm start's records)", lambda: asyncio.run(cache_roundtrip()))
    del loaded
    for q in ({}, {"search": synth.SEARCH_MARKER}, {"sort_key": "date"}):
        from lm_plugin.py.services.library.model_index import ListQuery
        step(f"query {q or 'default'} (memoised result)", lambda q=q: index.query(ListQuery(**q)))
    total = tracemalloc.get_traced_memory()[0] - base
    print(f"== {count[0]:,} models; tracemalloc, bytes per model ==")
    print(f"{'step':<50} {'alive':>10} {'peak':>10} {'seconds':>8}")
    for name, alive, peak, took in rows:
        print(f"{name:<50} {alive:>10.0f} {peak:>10.0f} {took:>8.2f}")
    print(f"{'everything alive at the end':<50} {total / count[0]:>10.0f}")
    if args.top:
        print(f"-- top {args.top} sites the index itself added (by line) --")
        for stat in snap_index.compare_to(snap_entries, "lineno")[: args.top]:
            print(f"  {stat.size_diff / count[0]:8.0f} B/model  {stat.traceback[0]}")
        print(f"-- top {args.top} sites of the records (by line) --")
        for stat in snap_entries.statistics("lineno")[: args.top]:
            print(f"  {stat.size / count[0]:8.0f} B/model  {stat.traceback[0]}")


if __name__ == "__main__":
    main()
