"""Benchmark of the model library: the real standalone server, measured from outside over HTTP.

    .venv/bin/python bench/run_bench.py                    # 10k, 50k and 100k, page and download (the README table)
    .venv/bin/python bench/run_bench.py --sizes 10000 --no-page --no-download   # one size, server only
    .venv/bin/python bench/run_bench.py --quick            # 10k, fewer requests, 256 MiB hash file, no extras

Per size it generates (or reuses, see ``synthetic_library.py``) one library (80 % of the
LoRAs with sidecars, 70 % with previews, nested folders, plus checkpoints and embeddings) and
runs the server (``bench/loop_monitor.py`` = standalone.py plus an in-process loop-lag
monitor) in a subprocess for each scenario:

1. cold start on a fresh cache dir: spawn -> first health-check answer (process start-up),
   -> first page of >= 20 items, -> ``/api/lm/status`` ready with total == N; then the hash
   backlog of the models without a known hash, list latency (every variant), query routes,
   4-client throughput, mutations until the lists show them, a reconcile of 5,000 changed
   sidecars, a bulk edit of 1,000 models; peak RSS throughout.
2. warm start on the same cache dir: -> listing served (ready, total == N) and -> the
   stat-only reconcile finished (``last_scan`` reported); start-ups repeated (median shown).
3. warm start plus one extra LoRA root into which a 1 GiB model (dropped from the page cache
   first) is moved: the event loop and list latency while it is hashed, and how much the
   kernel's page cache grew meanwhile.
4. ``hash_file`` against ``hashlib.sha256`` on the same 1 GiB file (page cache), best of 3.

Results are printed as a table per size with the targets of issue 13 and written to
``bench/out/results-<size>.json``; then ``bench/page_bench.py`` (the page in Chromium at the
largest size) and ``bench/download_bench.py`` run as their own processes, and one table of
every figure at every size, with the CPU other processes used during each run, is printed
and written to ``bench/out/summary.txt``. The 1 GiB file is deleted at the end. On the
2-core development machine one size of 100,000 takes about 7 minutes, page and download
about 6 more.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
import synthetic_library as synth  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB


# ----------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


class RssSampler(threading.Thread):
    """Samples the RSS of a process plus the unique memory (USS) of its children (the walks
    it starts in child processes) every 50 ms: the memory the server costs the machine. A
    child's other pages (the interpreter's code, shared libraries, ~10 MiB) are the
    server's own pages, already counted in its RSS."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.peak_children = 0  # the most its children held at once
        self.cpu_s = 0.0  # the server's user+system CPU seconds, its children's included (last sample)
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self.proc.memory_info().rss
                t = self.proc.cpu_times()
                cpu = t.user + t.system + t.children_user + t.children_system
                children = 0
                for child in self.proc.children(recursive=True):
                    try:
                        children += child.memory_full_info().uss
                        c = child.cpu_times()
                        cpu += c.user + c.system
                    except psutil.Error:
                        pass  # ended meanwhile: its CPU is in children_user once reaped
                self.cpu_s = cpu
            except psutil.Error:
                return
            self.peak = max(self.peak, rss + children)
            self.peak_children = max(self.peak_children, children)
            self.samples.append((time.monotonic(), rss + children))
            self._halt.wait(0.05)

    def peak_between(self, t0: float, t1: float) -> int:
        return max((r for t, r in self.samples if t0 <= t <= t1), default=0)

    def stop(self) -> None:
        self._halt.set()


@dataclass
class Server:
    """One standalone server process (through loop_monitor.py), measured from outside."""

    loras: list[Path]
    cache_dir: Path
    run_dir: Path
    watch: bool = True
    extra_roots: dict[str, list[Path]] = field(default_factory=dict)  # checkpoints / embeddings roots
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    t_spawn: float = 0.0
    rss: RssSampler | None = None
    pending: list = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def loop_log(self) -> Path:
        return self.run_dir / f"loop-{self.port}.json"

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._cpu0 = (psutil.cpu_times(), psutil.Process().cpu_times(), time.monotonic())
        cmd = [
            sys.executable, str(HERE / "loop_monitor.py"),
            "--port", str(self.port),
            "--settings", str(self.run_dir / "settings.json"),
            "--cache-dir", str(self.cache_dir),
            "--log-level", "WARNING",
        ]
        for root in self.loras:
            cmd += ["--loras", str(root)]
        for flag in ("checkpoints", "embeddings"):
            for root in self.extra_roots.get(flag, []):
                cmd += [f"--{flag}", str(root)]
        if not self.watch:
            cmd.append("--no-watch")
        env = dict(os.environ, LM_BENCH_LOOP_LOG=str(self.loop_log), PYTHONUNBUFFERED="1")
        env.setdefault("LM_BENCH_STALL_STACKS_MS", "20")  # stack snapshots while the loop is > 20 ms late
        self.log = open(self.run_dir / f"server-{self.port}.log", "wb")
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.rss = RssSampler(self.proc.pid)
        self.rss.start()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.rss:
            self.rss.stop()
            self.rss.join(1)
        self.log.close()
        self._resolve_windows()
        sys0, own0, t0 = self._cpu0
        sys1, own1 = psutil.cpu_times(), psutil.Process().cpu_times()
        busy = lambda c: c.user + c.system + c.nice + getattr(c, "irq", 0) + getattr(c, "softirq", 0)  # noqa: E731
        wall = time.monotonic() - t0
        foreign = busy(sys1) - busy(sys0) - (own1.user + own1.system - own0.user - own0.system) - (self.rss.cpu_s if self.rss else 0)
        # CPU used by OTHER processes on this machine while the server ran (noise on the figures)
        self.foreign_cpu_percent = round(max(0.0, foreign) / (wall * (os.cpu_count() or 1)) * 100, 1)

    def loop_samples(self) -> tuple[list[float], list[float]]:
        try:
            data = json.loads(self.loop_log.read_text())
        except (OSError, ValueError):
            return [], []
        return data["t"], data["lag"]

    def loop_window(self, t0: float, t1: float) -> dict[str, Any]:
        """Loop-lag figures of a time window: a dict filled in when the server has stopped
        (the monitor writes its samples at exit, so it costs the server nothing meanwhile)."""
        out: dict[str, Any] = {}
        self.pending.append((out, t0, t1))
        return out

    def _resolve_windows(self) -> None:
        for out, t0, t1 in self.pending:
            out.update(self._loop_stats(t0, t1))
        self.pending.clear()

    def _loop_stats(self, t0: float, t1: float) -> dict[str, Any]:
        ts, lags = self.loop_samples()
        window = [lag for t, lag in zip(ts, lags) if t0 <= t <= t1]
        out: dict[str, Any] = {"samples": len(window), "max_ms": ms(max(window, default=0.0)), "p99_ms": ms(pct(window, 99)) if window else None}
        try:
            data = json.loads(self.loop_log.read_text())
        except (OSError, ValueError):
            data = {}
        stalls = [st for st in data.get("stalls", []) if t0 <= st["t"] <= t1]
        gcs = [g for g in data.get("gc", []) if t0 <= g[0] <= t1]
        if gcs:
            out["gc_pauses_over_2ms"] = len(gcs)
            out["gc_max_ms"] = ms(max(g[2] for g in gcs))
            out["gc_total_ms"] = ms(sum(g[2] for g in gcs))
            out["gc_gen2_ms"] = [ms(g[2]) for g in gcs if g[1] == 2][:20]
        if stalls:
            loop = collections.Counter(" <- ".join(st["loop"][:4]) for st in stalls)
            others = collections.Counter(f"{name}: " + " <- ".join(stack[:3]) for st in stalls for name, stack in st["others"].items()
                                         if not name.startswith("bench-"))
            out["stall_snapshots"] = len(stalls)
            out["loop_stacks_while_late"] = [{"x5ms": c, "stack": k} for k, c in loop.most_common(5)]
            out["busy_threads_while_late"] = [{"n": c, "stack": k} for k, c in others.most_common(5)]
        return out


class Probe:
    """GET a trivial URL every ``period`` seconds; records (send time, latency)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, period: float = 0.010) -> None:
        self.session, self.url, self.period = session, url, period
        self.samples: list[tuple[float, float]] = []
        self.first_ok: float | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        nxt = time.monotonic()
        while True:
            t0 = time.monotonic()
            try:
                async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=30)) as r:
                    await r.read()
                    ok = r.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                ok = False
            t1 = time.monotonic()
            if ok:
                if self.first_ok is None:
                    self.first_ok = t1
                self.samples.append((t0, t1 - t0))
            nxt = max(nxt + self.period, t1)
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        lat = [lat for t, lat in self.samples if t0 <= t <= t1]
        return {"samples": len(lat), "max_ms": ms(max(lat, default=0.0)), "p99_ms": ms(pct(lat, 99)) if lat else None}


async def get_json(session: aiohttp.ClientSession, url: str, **params) -> tuple[int, Any]:
    async with session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=30)) as r:
        body = await r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, None


async def poll(fn, *, period: float, timeout: float) -> tuple[float | None, Any]:
    """Call async ``fn`` until it returns a truthy value; (monotonic time, value) or (None, None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = await fn()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            value = None
        if value:
            return time.monotonic(), value
        await asyncio.sleep(period)
    return None, None


def lora_status(body: Any) -> dict[str, Any]:
    return (body or {}).get("types", {}).get("lora", {}) if isinstance(body, dict) else {}


# ---------------------------------------------------------------------- measurements
async def measure_start(server: Server, session: aiohttp.ClientSession, expected: int, *, warm: bool, timeout: float) -> dict[str, Any]:
    """Spawn-relative times: health, first page >= 20, ready with total == N, reconcile done."""
    probe = Probe(session, f"{server.base}/api/lm/health-check")
    server.start()
    probe.start()
    list_url = f"{server.base}/api/lm/loras/list"
    status_url = f"{server.base}/api/lm/status"

    async def first_page():
        status, body = await get_json(session, list_url, page=1, page_size=20)
        return status == 200 and body and len(body.get("items", [])) >= 20

    async def ready():
        status, body = await get_json(session, status_url)
        lora = lora_status(body)
        return lora if lora.get("ready") and lora.get("total") == expected else None

    async def reconciled():
        status, body = await get_json(session, status_url)
        lora = lora_status(body)
        return lora if lora.get("ready") and lora.get("last_scan") else None

    page_task = asyncio.create_task(poll(first_page, period=0.02, timeout=timeout))
    ready_task = asyncio.create_task(poll(ready, period=0.05, timeout=timeout))
    t_page, _ = await page_task
    t_ready, lora = await ready_task
    t_rec, lora_rec = (None, None)
    if warm:
        t_rec, lora_rec = await poll(reconciled, period=0.02, timeout=timeout)
    t_end = time.monotonic()
    await probe.stop()
    t0 = server.t_spawn
    health = probe.first_ok
    out: dict[str, Any] = {
        "process_startup_s": None if health is None else round(health - t0, 3),
        "first_page_s": None if t_page is None else round(t_page - t0, 3),
        "ready_s": None if t_ready is None else round(t_ready - t0, 3),
        "last_scan": (lora_rec or lora or {}).get("last_scan"),
    }
    if warm:
        out["reconciled_s"] = None if t_rec is None else round(t_rec - t0, 3)
    if health is not None:
        for key in ("first_page_s", "ready_s", "reconciled_s"):
            if out.get(key) is not None:
                out[key.replace("_s", "_after_startup_s")] = round(out[key] - (health - t0), 3)
    busy_end = t_rec or t_ready or t_end
    if health is not None:
        out["stall_probe"] = probe.window(health, busy_end)
        out["stall_loop"] = server.loop_window(health, busy_end)
    return out


SORTS = ("name:asc", "date:desc", "size:desc", "name:desc", "date:asc", "size:asc")
VARIANTS = {
    "default": lambda i: {},
    "search": lambda i: {"search": synth.SEARCH_MARKER},
    "fuzzy search": lambda i: {"search": "zphyr", "fuzzy_search": "true"},
    "sort (6 alternating)": lambda i: {"sort_by": SORTS[i % len(SORTS)]},
    "base model": lambda i: {"base_model": "SDXL 1.0"},
    "tags any": lambda i: {"tag_include": ["anime", "style"], "tag_logic": "any"},
    "tags all": lambda i: {"tag_include": ["anime", "style"], "tag_logic": "all"},
    "folder": lambda i: {"folder": "Pony/style"},
    "favourites": lambda i: {"favorites_only": "true"},
}


async def list_latency(server: Server, session: aiohttp.ClientSession, requests: int) -> dict[str, Any]:
    url = f"{server.base}/api/lm/loras/list"
    out: dict[str, Any] = {}
    for name, params_of in VARIANTS.items():
        first = [(k, x) for k, v in {"page_size": 20, **params_of(0)}.items() for x in (v if isinstance(v, list) else [v])]
        async with session.get(url, params=first) as r:
            body = json.loads(await r.read())
        total_pages = max(1, (body or {}).get("total_pages", 1))
        total = (body or {}).get("total")
        lat: list[float] = []
        for i in range(requests):
            params = {"page": 1 + (i % min(total_pages, 10)), "page_size": 20, **params_of(i)}
            params = [(k, x) for k, v in params.items() for x in (v if isinstance(v, list) else [v])]
            t0 = time.perf_counter()
            async with session.get(url, params=params) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status}")
            lat.append(time.perf_counter() - t0)
        out[name] = {"total": total, "p50_ms": ms(pct(lat, 50)), "p95_ms": ms(pct(lat, 95)), "max_ms": ms(max(lat))}
    return out


async def throughput(server: Server, clients: int, seconds: float) -> dict[str, Any]:
    url = f"{server.base}/api/lm/loras/list"
    counts = [0] * clients
    errors = [0]
    stop_at = time.monotonic() + seconds

    async def worker(k: int) -> None:
        rng = random.Random(k)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
            while time.monotonic() < stop_at:
                async with s.get(url, params={"page": rng.randint(1, 50), "page_size": 20}) as r:
                    await r.read()
                    if r.status == 200:
                        counts[k] += 1
                    else:
                        errors[0] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    elapsed = time.monotonic() - t0
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": sum(counts), "errors": errors[0],
            "rps": round(sum(counts) / elapsed, 1)}


async def wait_hashing(server: Server, session: aiohttp.ClientSession, *, want_done: int, timeout: float) -> dict[str, Any]:
    """Poll hashing progress until ``done + failed >= want_done`` and the queue is idle."""
    url = f"{server.base}/api/lm/status"
    t0 = time.monotonic()
    started_at = None
    snap: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        _, body = await get_json(session, url)
        snap = (body or {}).get("hashing", {})
        if started_at is None and (snap.get("current") or snap.get("done")):
            started_at = time.monotonic()
        if snap.get("done", 0) + snap.get("failed", 0) >= want_done and not snap.get("queued") and not snap.get("current"):
            return {"finished": True, "t_start": started_at or t0, "t_end": time.monotonic(), "snapshot": snap}
        await asyncio.sleep(0.05)
    return {"finished": False, "t_start": started_at or t0, "t_end": time.monotonic(), "snapshot": snap}


def make_big_file(path: Path, size: int) -> None:
    """A valid safetensors file of ``size`` bytes (one U8 tensor), no sidecar."""
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # 8-byte length + header (padded with spaces to 256 bytes) + tensor == size
    tensor_len = size - 8 - 256
    header = json.dumps({"__metadata__": {"ss_base_model_version": "sdxl_base_v1-0"},
                         "w": {"dtype": "U8", "shape": [tensor_len], "data_offsets": [0, tensor_len]}}).encode()
    header += b" " * (256 - len(header))
    block = os.urandom(MiB)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        remaining = tensor_len
        while remaining:
            n = min(remaining, len(block))
            fh.write(block[:n])
            remaining -= n
    assert path.stat().st_size == size


def hasher_vs_hashlib(path: Path, repeats: int = 3) -> dict[str, Any]:
    """``hash_file`` (imported as the tests do) against plain hashlib, page cache warm, best of N
    interleaved rounds."""
    if "lm_plugin" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lm_plugin", REPO / "__init__.py", submodule_search_locations=[str(REPO)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["lm_plugin"] = module
        spec.loader.exec_module(module)
    from lm_plugin.py.services.library.model_hasher import hash_file  # type: ignore[import-not-found]

    size = path.stat().st_size
    with open(path, "rb") as fh:  # read once: every run below reads from the page cache
        while fh.read(16 * MiB):
            pass

    def run_hash_file() -> str:
        return hash_file(path).sha256

    def run_file_digest() -> str:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()

    def run_readinto_8m() -> str:
        h = hashlib.sha256()
        buf = bytearray(8 * MiB)
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(view):
                h.update(view[:n])
        return h.hexdigest()

    results: dict[str, Any] = {}
    digests = set()
    fns = (("hash_file", run_hash_file), ("hashlib_file_digest", run_file_digest), ("hashlib_readinto_8MiB", run_readinto_8m))
    best = {name: float("inf") for name, _ in fns}
    for _ in range(repeats):  # interleaved rounds: a burst of load on the machine hits all three alike
        for name, fn in fns:
            t0 = time.perf_counter()
            digests.add(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    for name, _ in fns:
        results[name] = {"best_s": round(best[name], 3), "MiB_per_s": round(size / MiB / best[name], 1)}
    results["same_digest"] = len(digests) == 1
    fastest_hashlib = max(results["hashlib_file_digest"]["MiB_per_s"], results["hashlib_readinto_8MiB"]["MiB_per_s"])
    results["ratio"] = round(results["hash_file"]["MiB_per_s"] / fastest_hashlib, 3)
    return results


async def hash_big_file(srv: Server, session: aiohttp.ClientSession, big_file: Path, drop: Path, *, no_watch: bool) -> dict[str, Any]:
    """Move the big model into a library root, let it be found and measure the loop while it is hashed."""
    await asyncio.sleep(1.0)  # let the warm start settle (watcher start, hash queue unpaused)
    probe = Probe(session, f"{srv.base}/api/lm/health-check")
    probe.start()
    list_lat: list[tuple[float, float]] = []
    status_url = f"{srv.base}/api/lm/status"

    async def lister() -> None:
        url = f"{srv.base}/api/lm/loras/list"
        i = 0
        while True:
            t0 = time.monotonic()
            async with session.get(url, params={"page": 1 + i % 10, "page_size": 20, **VARIANTS["sort (6 alternating)"](i)}) as r:
                await r.read()
            list_lat.append((t0, time.monotonic() - t0))
            i += 1
            await asyncio.sleep(0.02)

    lister_task = asyncio.create_task(lister())
    await asyncio.sleep(0.3)
    drop_from_page_cache(big_file)  # the server must read it from the disk, as a new download would be
    cached_before = page_cache_mib()
    cached_max = cached_before
    target = drop / big_file.name
    t_move = time.monotonic()
    os.replace(big_file, target)
    # with the watcher on, it notices the file and queues the hash (scoped reconcile); without
    # it, a forced scan does (the route awaits a full reconcile, so it runs as a task)
    scan_task = None
    if no_watch:
        async def force_scan() -> None:
            async with session.post(f"{srv.base}/api/lm/loras/scan") as r:
                await r.read()
        scan_task = asyncio.create_task(force_scan())
    t_start = t_end = None
    deadline = time.monotonic() + 120
    snap: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = await get_json(session, status_url)
        snap = (body or {}).get("hashing", {})
        cached_max = max(cached_max, page_cache_mib())
        now = time.monotonic()
        if t_start is None and snap.get("current"):
            t_start = now
        if snap.get("done", 0) + snap.get("failed", 0) >= 1 and not snap.get("current") and not snap.get("queued"):
            t_end = now
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    lister_task.cancel()
    await asyncio.gather(lister_task, return_exceptions=True)
    await probe.stop()
    finished = t_end is not None
    t_end = t_end or time.monotonic()
    t_start = t_start or t_move  # finished before the first status poll saw it running
    if scan_task is not None:
        await scan_task
    during = [lat for t, lat in list_lat if t_start - 0.05 <= t <= t_end]
    size = target.stat().st_size
    return {
        "finished": finished,
        "seconds_from_move": round(t_end - t_move, 3),
        "seconds_hashing": round(t_end - t_start, 3),
        "server_MiB_per_s": round(size / MiB / (t_end - t_start), 1) if t_end > t_start else None,
        "stall_probe": probe.window(t_start - 0.05, t_end),
        "stall_loop": srv.loop_window(t_start - 0.05, t_end),
        "stall_loop_move_to_end": srv.loop_window(t_move, t_end),
        "list_during_hash": {"requests": len(during), "p50_ms": ms(pct(during, 50)), "p95_ms": ms(pct(during, 95)),
                             "max_ms": ms(max(during, default=0.0))},
        "snapshot": snap,
        # the kernel's page cache (``Cached`` in /proc/meminfo, the whole machine's): how much
        # hashing the file added at most, and what it left (other processes move it too)
        "page_cache_MiB": {"before": round(cached_before, 1), "max_growth": round(cached_max - cached_before, 1),
                           "after_delta": round(page_cache_mib() - cached_before, 1), "file": round(size / MiB, 1)},
    }



TIME_KEYS = ("process_startup_s", "first_page_s", "ready_s", "reconciled_s",
             "first_page_after_startup_s", "ready_after_startup_s", "reconciled_after_startup_s")


def summarise_repeats(d: dict[str, Any]) -> None:
    """Median / min / max of every start-up time over the first run and its repeats."""
    runs = [d] + d.get("repeats", [])
    d["median"], d["range"] = {}, {}
    for key in TIME_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            d["median"][key] = round(statistics.median(values), 3)
            d["range"][key] = [min(values), max(values), len(values)]
    stalls = [r.get("stall_loop", {}).get("max_ms") for r in runs]
    stalls = [x for x in stalls if x is not None]
    if stalls:
        d["stall_loop_max_over_runs_ms"] = max(stalls)
        d["stall_loop_max_per_run_ms"] = stalls


# ------------------------------------------------------------- issue 13 measurements
def library_facts(root: Path) -> dict[str, Any]:
    """What the server will index: models per type, those without a sidecar (the hash
    backlog), a few sample models and sidecars to query and edit."""
    facts: dict[str, Any] = {"types": {}, "pending_hashes": 0, "samples": [], "sidecars": [], "named": []}
    for kind, sub in (("lora", synth.lora_root(root)), ("checkpoint", synth.checkpoint_root(root)),
                      ("embedding", synth.embedding_root(root))):
        count = 0
        for directory, dirs, files in os.walk(sub):
            dirs.sort()
            names = set(files)
            for name in sorted(files):
                if not name.endswith(".safetensors"):
                    continue
                count += 1
                stem = name[: -len(".safetensors")]
                sidecar = f"{stem}.metadata.json"
                if sidecar not in names:
                    facts["pending_hashes"] += 1
                elif kind == "lora":
                    facts["sidecars"].append(os.path.join(directory, sidecar))
                if kind != "lora" and len(facts["named"]) < 400 and count % 7 == 0:
                    facts["named"].append(f"{kind}s/info/{stem}")  # info/{name} is a checkpoint and embedding route
                if kind == "lora" and len(facts["samples"]) < 200 and count % 37 == 0:
                    rel = os.path.relpath(os.path.join(directory, name), sub).replace(os.sep, "/")
                    facts["samples"].append({"path": os.path.join(directory, name).replace(os.sep, "/"), "rel": rel, "stem": stem})
        facts["types"][kind] = count
    return facts


async def query_latency(server: Server, session: aiohttp.ClientSession, facts: dict[str, Any], requests: int) -> dict[str, Any]:
    """p50/p95 of every read-only query route (``requests`` sequential calls each)."""
    base = f"{server.base}/api/lm/loras"
    root = str(synth.lora_root(Path(facts["root"]))).replace(os.sep, "/")
    samples = facts["samples"] or [{"path": "", "rel": "", "stem": ""}]
    named = facts["named"] or ["checkpoints/info/none"]
    routes = {
        "top-tags": lambda i: ("top-tags", {"limit": 20}),
        "base-models": lambda i: ("base-models", {}),
        "folders": lambda i: ("folders", {}),
        "folder-tree": lambda i: ("folder-tree", {"model_root": root}),
        "find-duplicates": lambda i: ("find-duplicates", {}),
        "relative-paths": lambda i: ("relative-paths", {"search": ("forest", "knight", "v1", "zzz-none")[i % 4], "limit": 15}),
        "get-trigger-words": lambda i: ("get-trigger-words", {"file_path": samples[i % len(samples)]["path"]}),
        "usage-tips-by-path": lambda i: ("usage-tips-by-path", {"relative_path": samples[i % len(samples)]["rel"]}),
        "info/{name}": lambda i: (f"../{named[i % len(named)]}", {}),
        "metadata": lambda i: ("metadata", {"file_path": samples[i % len(samples)]["path"]}),
    }
    out: dict[str, Any] = {}
    for name, make in routes.items():
        lat: list[float] = []
        statuses: collections.Counter = collections.Counter()
        for i in range(requests):
            route, params = make(i)
            t0 = time.perf_counter()
            url = f"{server.base}/api/lm/{route[3:]}" if route.startswith("../") else f"{base}/{route}"
            async with session.get(url, params=params) as r:
                await r.read()
                statuses[r.status] += 1
            lat.append(time.perf_counter() - t0)
        out[name] = {"p50_ms": ms(pct(lat, 50)), "p95_ms": ms(pct(lat, 95)), "max_ms": ms(max(lat)), "statuses": dict(statuses)}
    return out


async def post_json(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=120)) as r:
        raw = await r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, None


async def mutation_latency(server: Server, session: aiohttp.ClientSession, facts: dict[str, Any]) -> dict[str, Any]:
    """Time from sending a tag edit / rename / move until the lists that show it do (the
    mutation's answer, then the filtered list that proves it); each is undone after."""
    base = f"{server.base}/api/lm/loras"
    samples = facts["samples"][:30]
    out: dict[str, list[float]] = {"tag edit": [], "rename": [], "move": []}
    errors: list[str] = []

    async def listed(**params) -> set[str]:
        flat = [(k, x) for k, v in params.items() for x in (v if isinstance(v, list) else [v])]
        async with session.get(f"{base}/list", params=flat + [("page_size", "100")]) as r:
            body = json.loads(await r.read())
        return {i["file_path"] for i in body.get("items", [])}

    for n, sample in enumerate(samples[:10]):
        path = sample["path"]
        tag = f"benchtag{n}"
        t0 = time.perf_counter()
        status, _ = await post_json(session, f"{base}/add-tags", {"file_path": path, "tags": [tag]})
        ok = status == 200 and path in await listed(tag_include=[tag]) and path in await listed(search=sample["stem"])
        out["tag edit"].append(time.perf_counter() - t0)
        if not ok:
            errors.append(f"tag edit {status}")
        await post_json(session, f"{base}/remove-tags", {"file_path": path, "tags": [tag]})
    for n, sample in enumerate(samples[10:20]):
        path, stem = sample["path"], sample["stem"]
        new_stem = f"{stem}_renamed{n}"
        t0 = time.perf_counter()
        status, body = await post_json(session, f"{base}/rename", {"file_path": path, "new_file_name": new_stem})
        new_path = (body or {}).get("new_file_path", "")
        ok = status == 200 and new_path in await listed(search=new_stem) and path not in await listed(search=stem)
        out["rename"].append(time.perf_counter() - t0)
        if not ok:
            errors.append(f"rename {status}")
        if status == 200:
            await post_json(session, f"{base}/rename", {"file_path": new_path, "new_file_name": stem})
    for sample in samples[20:30]:
        path = sample["path"]
        here = os.path.dirname(path)
        there = os.path.join(os.path.dirname(here) if sample["rel"].count("/") > 1 else here + "/..", "").rstrip("/")
        there = os.path.normpath(there).replace(os.sep, "/")
        root = str(synth.lora_root(Path(facts["root"]))).replace(os.sep, "/")
        folder = os.path.relpath(there, root).replace(os.sep, "/")
        t0 = time.perf_counter()
        status, body = await post_json(session, f"{base}/move_model", {"file_path": path, "target_path": there})
        new_path = (body or {}).get("new_file_path", "")
        ok = status == 200 and new_path in await listed(folder=folder if folder != "." else "", recursive="false", search=sample["stem"])
        out["move"].append(time.perf_counter() - t0)
        if not ok:
            errors.append(f"move {status}")
        if status == 200:
            await post_json(session, f"{base}/move_model", {"file_path": new_path, "target_path": here})
    res: dict[str, Any] = {name: {"p50_ms": ms(pct(v, 50)), "max_ms": ms(max(v, default=0.0)), "n": len(v)} for name, v in out.items()}
    res["errors"] = errors
    return res


async def reconcile_changes(server: Server, session: aiohttp.ClientSession, facts: dict[str, Any], count: int) -> dict[str, Any]:
    """Touch ``count`` sidecars (a newer mtime: each is read again) and time the reconcile
    that folds them in (a forced scan; the watcher's own run is coalesced with it)."""
    sidecars = facts["sidecars"][:count]
    t0 = time.monotonic()
    now = time.time()
    for path in sidecars:
        os.utime(path, (now, now))
    t1 = time.monotonic()
    status, body = await post_json(session, f"{server.base}/api/lm/loras/scan", {})
    t2 = time.monotonic()
    return {"changed": len(sidecars), "touch_s": round(t1 - t0, 3), "scan_s": round(t2 - t1, 3), "status": status,
            "built": (body or {}).get("built"), "stall_loop": server.loop_window(t0, t2)}


async def bulk_edit(server: Server, session: aiohttp.ClientSession, facts: dict[str, Any], count: int) -> dict[str, Any]:
    """Add a tag to ``count`` models (8 requests in flight, as a bulk edit in the page sends
    them) and take it off again; the loop is watched throughout."""
    base = f"{server.base}/api/lm/loras"
    paths = [os.path.splitext(p)[0].removesuffix(".metadata") + ".safetensors" for p in facts["sidecars"][-count:]]
    paths = [p.replace(os.sep, "/") for p in paths]
    sem = asyncio.Semaphore(8)
    errors = collections.Counter()

    async def one(path: str, route: str) -> None:
        async with sem:
            status, _ = await post_json(session, f"{base}/{route}", {"file_path": path, "tags": ["bench-bulk"]})
            if status != 200:
                errors[status] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(p, "add-tags") for p in paths))
    t1 = time.monotonic()
    status, body = await get_json(session, f"{base}/list", tag_include="bench-bulk", page_size=1)
    listed = (body or {}).get("total")
    await asyncio.gather(*(one(p, "remove-tags") for p in paths))
    t2 = time.monotonic()
    return {"models": len(paths), "add_s": round(t1 - t0, 2), "listed_after": listed, "errors": dict(errors),
            "stall_loop": server.loop_window(t0, t2)}


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to forget the cached pages of ``path`` (clean pages go; best effort)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_into_page_cache(root: Path, threads: int = 8) -> dict[str, Any]:
    """Read every file below ``root`` once, so a cold start (no cache of ours) meets the
    library's files in the OS page cache, as on a machine that has used them before.

    Without this the cold figures measure the disk: this machine's virtual disk serves
    about 2,500-3,500 small random reads a second (one thread or sixteen), so 100,000
    models with sidecars would need about a minute whatever the scanner does.
    """
    from concurrent.futures import ThreadPoolExecutor

    paths = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]

    def read(path: str) -> int:
        with open(path, "rb", buffering=0) as fh:
            size = 0
            while chunk := fh.read(1 << 20):
                size += len(chunk)
            return size

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(read, paths, chunksize=256))
    return {"files": len(paths), "MiB": round(total / MiB, 1), "seconds": round(time.monotonic() - t0, 1)}


def page_cache_mib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("Cached:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -------------------------------------------------------------------------- scenarios
async def bench_size(n: int, args: argparse.Namespace, big_file: Path | None) -> dict[str, Any]:
    t_bench = time.monotonic()
    res: dict[str, Any] = {"size": n, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                           "code": code_revision(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    log(f"[{n}] library ...")
    t0 = time.monotonic()
    lib = synth.generate(n, seed=args.seed)
    facts = await asyncio.to_thread(library_facts, lib)
    facts["root"] = str(lib)
    expected = facts["types"]["lora"]
    res["library"] = {"root": str(lib), "folders": synth.describe(lib)["folders"], "types": facts["types"],
                      "pending_hashes": facts["pending_hashes"], "prepare_s": round(time.monotonic() - t0, 1)}
    roots = dict(loras=[synth.lora_root(lib)], checkpoints=[synth.checkpoint_root(lib)], embeddings=[synth.embedding_root(lib)])
    work = Path(tempfile.mkdtemp(prefix=f"bench-{n}-", dir=OUT))
    timeout = 60 + n / 200
    args = argparse.Namespace(**vars(args))
    if args.repeat is None:
        args.repeat = 1 if args.quick or n > 10000 else 3
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
            # 1. cold start, then the hash backlog, then reads and writes on the settled server
            log(f"[{n}] reading the library into the page cache ...")
            res["library"]["page_cache_fill"] = await asyncio.to_thread(read_into_page_cache, lib)
            log(f"[{n}] cold start ...")
            cache = work / "cache"
            srv = Server(roots["loras"], cache, work / "run-cold", watch=not args.no_watch, extra_roots=roots)
            try:
                res["cold"] = await measure_start(srv, session, expected, warm=False, timeout=timeout)
                res["cold"]["peak_rss_at_ready_MiB"] = round(srv.rss.peak / MiB, 1)
                res["cold"]["peak_rss_children_MiB"] = round(srv.rss.peak_children / MiB, 1)
                log(f"[{n}] hash backlog of {facts['pending_hashes']} files ...")
                probe = Probe(session, f"{srv.base}/api/lm/health-check")
                probe.start()
                h = await wait_hashing(srv, session, want_done=facts["pending_hashes"],
                                       timeout=args.hash_backlog_timeout or max(60.0, facts["pending_hashes"] / 100))
                await probe.stop()
                snap = h["snapshot"]
                elapsed = h["t_end"] - h["t_start"]
                res["hash_backlog"] = {
                    "finished": h["finished"], "seconds": round(elapsed, 2), "done": snap.get("done"),
                    "files_per_s": round((snap.get("done") or 0) / elapsed, 1) if elapsed > 0 else None,
                    "stall_probe": probe.window(h["t_start"], h["t_end"]),
                    "stall_loop": srv.loop_window(h["t_start"], h["t_end"]),
                }
                log(f"[{n}] list latency ({args.requests} requests x {len(VARIANTS)}) ...")
                res["latency"] = await list_latency(srv, session, args.requests)
                log(f"[{n}] query routes ({args.requests // 2} requests each) ...")
                res["queries"] = await query_latency(srv, session, facts, max(20, args.requests // 2))
                log(f"[{n}] throughput (4 clients, {args.seconds}s) ...")
                res["throughput"] = await throughput(srv, 4, args.seconds)
                log(f"[{n}] mutations ...")
                res["mutations"] = await mutation_latency(srv, session, facts)
                log(f"[{n}] reconcile of {args.changes} changed sidecars ...")
                res["reconcile"] = await reconcile_changes(srv, session, facts, args.changes)
                log(f"[{n}] bulk edit of {args.bulk} models ...")
                res["bulk_edit"] = await bulk_edit(srv, session, facts, args.bulk)
                res["cold"]["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
            finally:
                srv.stop()
                res["cold"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
            # 2. warm start on the same cache
            log(f"[{n}] warm start ...")
            srv = Server(roots["loras"], cache, work / "run-warm", watch=not args.no_watch, extra_roots=roots)
            try:
                res["warm"] = await measure_start(srv, session, expected, warm=True, timeout=timeout)
                await asyncio.sleep(1.0)
                res["warm"]["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
                res["warm"]["peak_rss_children_MiB"] = round(srv.rss.peak_children / MiB, 1)
            finally:
                srv.stop()
                res["warm"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
            # repeats of the two start-ups (the machine is shared: one run can be noisy);
            # the table shows the median, the JSON every run
            for r in range(1, args.repeat):
                log(f"[{n}] start-up repeat {r + 1}/{args.repeat} ...")
                for key, cache_dir, warm in (("cold", work / f"cache-{r}", False), ("warm", cache, True)):
                    srv = Server(roots["loras"], cache_dir, work / f"run-{key}-{r}", watch=not args.no_watch, extra_roots=roots)
                    try:
                        extra = await measure_start(srv, session, expected, warm=warm, timeout=timeout)
                        extra["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
                    finally:
                        srv.stop()
                    extra["foreign_cpu_percent"] = srv.foreign_cpu_percent
                    res[key].setdefault("repeats", []).append(extra)
            for key in ("cold", "warm"):
                summarise_repeats(res[key])
            # 3. hashing a 1 GiB model while serving (an extra, empty LoRA root)
            if big_file is not None:
                log(f"[{n}] hashing a {big_file.stat().st_size // MiB} MiB file while serving ...")
                drop = work / "big-root"
                drop.mkdir()
                srv = Server(roots["loras"] + [drop], cache, work / "run-hash", watch=not args.no_watch, extra_roots=roots)
                try:
                    await measure_start(srv, session, expected, warm=True, timeout=timeout)
                    res["hash_1gib"] = await hash_big_file(srv, session, big_file, drop, no_watch=args.no_watch)
                finally:
                    srv.stop()
                    if "hash_1gib" in res:
                        res["hash_1gib"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
                    target = drop / big_file.name
                    if target.exists():
                        os.replace(target, big_file)
    finally:
        if not args.keep_runs:
            shutil.rmtree(work, ignore_errors=True)
    res["bench_seconds"] = round(time.monotonic() - t_bench, 1)
    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return res


def code_revision() -> dict[str, Any]:
    """The commit measured, and whether py/ had uncommitted changes (the figures belong to it)."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "py", "standalone.py").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "py_dirty_files": dirty}


# ------------------------------------------------------------------------------ report
# issue 13's targets per size: (10k, 50k, 100k); sizes in between take the next larger
TARGETS = {
    "warm_s": (0.5, 1.0, 2.0),
    "cold_s": (1.2, 5.0, 10.0),
    "first_page_s": (0.5, 0.5, 1.0),
    "list_p95_ms": (3, 6, 10),
    "query_p95_ms": (5, 10, 20),
    "rss_MiB": (100, 180, 300),
    "stall_ms": (30, 50, 50),
    "mutation_ms": (20, 30, 50),
}


def target(name: str, n: int) -> float:
    small, mid, big = TARGETS[name]
    return small if n <= 10000 else mid if n <= 50000 else big


def rows_for(res: dict[str, Any], hasher: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    n = res["size"]
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, value: Any, unit: str = "", goal: str = "", ok: bool | None = None) -> None:
        shown = "n/a" if value is None else f"{value}{unit}"
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        rows.append((label, shown, goal, verdict))

    def le(value: Any, limit: float) -> bool | None:
        return None if value is None else value <= limit

    cold, warm = res.get("cold", {}), res.get("warm", {})

    def tv(d: dict[str, Any], key: str) -> Any:
        """The median over repeats when there were repeats, else the single figure."""
        return d.get("median", {}).get(key, d.get(key))

    def tshow(d: dict[str, Any], key: str) -> Any:
        value = tv(d, key)
        rng = d.get("range", {}).get(key)
        if value is None or not rng or rng[2] < 2:
            return value
        return f"{value} s (median of {rng[2]}: {rng[0]}-{rng[1]})"

    def addt(label: str, d: dict[str, Any], key: str, name: str | None = None) -> None:
        value, shown = tv(d, key), tshow(d, key)
        unit = "" if isinstance(shown, str) else " s"
        if name is None:
            add(label, shown, unit)
        else:
            limit = target(name, n)
            add(label, shown, unit, f"<= {limit:g} s", le(value, limit))

    addt("process start-up (spawn -> first health-check answer)", cold, "process_startup_s")
    addt("warm start to full listing incl. stat-only reconcile (after start-up)", warm, "reconciled_after_startup_s", "warm_s")
    addt("  warm: listing served (after start-up)", warm, "ready_after_startup_s")
    addt("  warm: reconcile finished (from spawn)", warm, "reconciled_s")
    addt("cold start to full listing, with sidecars (after start-up)", cold, "ready_after_startup_s", "cold_s")
    addt("  cold: full listing (from spawn)", cold, "ready_s")
    addt("first page listed during a cold start (after start-up)", cold, "first_page_after_startup_s", "first_page_s")
    addt("  first page (from spawn)", cold, "first_page_s")
    lat_limit = target("list_p95_ms", n)
    for name, v in res.get("latency", {}).items():
        add(f"list p50 / p95 [{name}] (total {v['total']})", f"{v['p50_ms']} / {v['p95_ms']}", " ms", f"p95 <= {lat_limit} ms", le(v["p95_ms"], lat_limit))
    q_limit = target("query_p95_ms", n)
    for name, v in res.get("queries", {}).items():
        codes = ",".join(str(c) for c in sorted(v["statuses"]))
        add(f"query p50 / p95 [{name}] (HTTP {codes})", f"{v['p50_ms']} / {v['p95_ms']}", " ms", f"p95 <= {q_limit} ms", le(v["p95_ms"], q_limit))
    tp = res.get("throughput", {})
    add("throughput, 4 clients, default list", tp.get("rps"), " req/s")
    peak = max((d.get("peak_rss_MiB") or 0) for d in [cold, warm] + cold.get("repeats", []) + warm.get("repeats", []))
    rss_limit = target("rss_MiB", n)
    add("peak RSS of the server + USS of its walk processes (max over every run)", peak, " MiB", f"<= {rss_limit} MiB", le(peak, rss_limit))
    add("  cold at ready / cold after everything / warm", f"{cold.get('peak_rss_at_ready_MiB')} / {cold.get('peak_rss_MiB')} / {warm.get('peak_rss_MiB')}", " MiB")
    add("  of which walk processes at most, their own pages (USS; cold / warm)", f"{cold.get('peak_rss_children_MiB')} / {warm.get('peak_rss_children_MiB')}", " MiB")
    stall_limit = target("stall_ms", n)
    phases = (("cold start", cold.get("stall_loop", {}), cold.get("stall_loop_max_over_runs_ms")),
              ("warm start + reconcile", warm.get("stall_loop", {}), warm.get("stall_loop_max_over_runs_ms")),
              (f"reconcile of {res.get('reconcile', {}).get('changed')} changes", res.get("reconcile", {}).get("stall_loop", {}), None),
              (f"hash backlog ({res.get('hash_backlog', {}).get('done')} files)", res.get("hash_backlog", {}).get("stall_loop", {}), None),
              (f"bulk edit of {res.get('bulk_edit', {}).get('models')} models", res.get("bulk_edit", {}).get("stall_loop", {}), None))
    for label, lp, worst in phases:
        worst = worst if worst is not None else lp.get("max_ms")
        add(f"longest event-loop stall: {label} (max / p99)", f"{lp.get('max_ms')} / {lp.get('p99_ms')}", " ms",
            f"max <= {stall_limit} ms", le(worst, stall_limit))
        if lp.get("gc_total_ms"):
            add("  GC pauses > 2 ms: count / longest / total", f"{lp.get('gc_pauses_over_2ms')} / {lp.get('gc_max_ms')} / {lp.get('gc_total_ms')}", " ms")
    mut_limit = target("mutation_ms", n)
    for name, v in res.get("mutations", {}).items():
        if name == "errors":
            continue
        add(f"mutation until the lists show it [{name}] (p50 / max, n={v['n']})", f"{v['p50_ms']} / {v['max_ms']}", " ms",
            f"max <= {mut_limit} ms", le(v["max_ms"], mut_limit))
    if res.get("mutations", {}).get("errors"):
        add("  mutation check errors", ", ".join(res["mutations"]["errors"][:5]))
    rc = res.get("reconcile")
    if rc:
        add(f"reconcile of {rc['changed']} changed sidecars (forced scan; built {rc['built']})", rc["scan_s"], " s")
    be = res.get("bulk_edit")
    if be:
        add(f"bulk edit: {be['models']} add-tags, 8 in flight (listed after: {be['listed_after']}, errors {be['errors']})", be["add_s"], " s")
    hb = res.get("hash_backlog")
    if hb:
        add(f"hash backlog ({'done' if hb['finished'] else 'NOT done'}: {hb['done']} files)", hb["seconds"], f" s ({hb['files_per_s']} files/s)")
    hg = res.get("hash_1gib")
    if hg:
        lp = hg["stall_loop"]
        add(f"hashing the {res.get('big_file_MiB')} MiB file in the server", hg["seconds_hashing"], f" s ({hg['server_MiB_per_s']} MiB/s)")
        add("  stall while hashing it: loop max / p99", f"{lp.get('max_ms')} / {lp.get('p99_ms')}", " ms", f"max <= {stall_limit} ms", le(lp.get("max_ms"), stall_limit))
        pc = hg.get("page_cache_MiB")
        if pc:
            add(f"  page cache: most added while hashing / left after (file {pc['file']} MiB, not cached before)",
                f"{pc['max_growth']} / {pc['after_delta']}", " MiB", "growth <= 25 % of the file",
                pc["max_growth"] <= 0.25 * pc["file"])
        ld = hg["list_during_hash"]
        add(f"  list p50 / p95 while hashing (n={ld['requests']})", f"{ld['p50_ms']} / {ld['p95_ms']}", " ms")
    if hasher:
        add("hash_file", hasher["hash_file"]["MiB_per_s"], " MiB/s")
        add("hashlib.file_digest / readinto 8 MiB", f"{hasher['hashlib_file_digest']['MiB_per_s']} / {hasher['hashlib_readinto_8MiB']['MiB_per_s']}", " MiB/s")
        add("hasher / fastest hashlib", round(hasher["ratio"] * 100, 1), " %", ">= 90 %", hasher["ratio"] >= 0.9)
    return rows


def print_table(res: dict[str, Any], hasher: dict[str, Any] | None) -> str:
    rows = rows_for(res, hasher)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    code = res.get("code", {})
    dirty = f", {len(code.get('py_dirty_files', []))} uncommitted files in py/" if code.get("py_dirty_files") else ""
    lines = [f"== {res['size']:,} LoRAs ({res['library']['folders']} folders; bench {res.get('bench_seconds')} s; "
             f"code {code.get('commit')}{dirty}; {res.get('started')}) ==",
             f"{'metric':<{w0}}  {'value':>{w1}}  {'target':<{w2}}  result"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c:<{w2}}  {d}" for a, b, c, d in rows]
    foreign = {k: res.get(k, {}).get("foreign_cpu_percent") for k in ("cold", "warm", "hash_1gib")}
    if os.environ.get("LM_BENCH_GC_THRESHOLD"):
        lines.append(f"EXPERIMENT (not the product): server ran with gc.set_threshold({os.environ['LM_BENCH_GC_THRESHOLD']})")
    lines.append(f"machine: {res['machine']['cpus']} CPUs; load avg at start {res.get('loadavg_start')}, at end {res.get('loadavg_end')}; "
                 f"CPU used by OTHER processes during the runs (% of all CPUs): {foreign}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def summary_rows(res: dict[str, Any]) -> dict[str, tuple[str, bool | None]]:
    """The issue 13 figures of one size: label -> (value shown, pass?)."""
    n = res["size"]
    cold, warm = res.get("cold", {}), res.get("warm", {})

    def tv(d: dict[str, Any], key: str) -> Any:
        return d.get("median", {}).get(key, d.get(key))

    def row(value: Any, limit: float, unit: str) -> tuple[str, bool | None]:
        if value is None:
            return "n/a", False
        return f"{value:g}{unit}" if isinstance(value, (int, float)) else f"{value}{unit}", value <= limit

    out: dict[str, tuple[str, bool | None]] = {}
    out["warm start to full listing, incl. stat-only reconcile"] = row(tv(warm, "reconciled_after_startup_s"), target("warm_s", n), " s")
    out["cold start to full listing, with sidecars (files in page cache)"] = row(tv(cold, "ready_after_startup_s"), target("cold_s", n), " s")
    out["first page listed during a cold start"] = row(tv(cold, "first_page_after_startup_s"), target("first_page_s", n), " s")
    lat = res.get("latency", {})
    worst = max(lat.items(), key=lambda kv: kv[1]["p95_ms"], default=None)
    out["list p95, worst variant"] = (row(worst[1]["p95_ms"], target("list_p95_ms", n), f" ms ({worst[0]})") if worst else ("n/a", False))
    queries = res.get("queries", {})
    worst = max(queries.items(), key=lambda kv: kv[1]["p95_ms"], default=None)
    out["query routes p95, worst route"] = (row(worst[1]["p95_ms"], target("query_p95_ms", n), f" ms ({worst[0]})") if worst else ("n/a", False))
    peak = max((d.get("peak_rss_MiB") or 0) for d in [cold, warm] + cold.get("repeats", []) + warm.get("repeats", []))
    out["peak RSS of the server, with its walk processes"] = row(peak or None, target("rss_MiB", n), " MiB")
    phases = {"cold": cold.get("stall_loop_max_over_runs_ms", cold.get("stall_loop", {}).get("max_ms")),
              "warm": warm.get("stall_loop_max_over_runs_ms", warm.get("stall_loop", {}).get("max_ms")),
              "reconcile": res.get("reconcile", {}).get("stall_loop", {}).get("max_ms"),
              "hash backlog": res.get("hash_backlog", {}).get("stall_loop", {}).get("max_ms"),
              "bulk edit": res.get("bulk_edit", {}).get("stall_loop", {}).get("max_ms")}
    known = {k: v for k, v in phases.items() if v is not None}
    if known:
        phase, value = max(known.items(), key=lambda kv: kv[1])
        out["longest event-loop stall, any phase"] = row(value, target("stall_ms", n), f" ms ({phase})")
    else:
        out["longest event-loop stall, any phase"] = ("n/a", False)
    muts = {k: v for k, v in res.get("mutations", {}).items() if k != "errors"}
    worst = max(muts.items(), key=lambda kv: kv[1]["max_ms"], default=None)
    out["mutation until every list shows it, worst"] = (row(worst[1]["max_ms"], target("mutation_ms", n), f" ms ({worst[0]})") if worst else ("n/a", False))
    foreign = [res.get(k, {}).get("foreign_cpu_percent") for k in ("cold", "warm", "hash_1gib")]
    out["CPU used by other processes (cold / warm / hashing runs)"] = (" / ".join("n/a" if f is None else f"{f:g} %" for f in foreign), None)
    return out


def print_summary(results: list[dict[str, Any]], hasher: dict[str, Any] | None, extras: dict[str, Any]) -> str:
    """One table: every issue 13 figure at every size, then the size-independent ones."""
    per_size = [(res["size"], summary_rows(res)) for res in results]
    labels = list(per_size[0][1]) if per_size else []
    cells = {label: [f"{rows[label][0]} {'' if rows[label][1] is None else ('PASS' if rows[label][1] else 'FAIL')}".strip()
                     for _, rows in per_size] for label in labels}
    w0 = max([len(label) for label in labels] + [40])
    widths = [max([len(f"{n:,} LoRAs")] + [len(cells[label][i]) for label in labels]) for i, (n, _) in enumerate(per_size)]
    code = results[0].get("code", {}) if results else {}
    dirty = f", {len(code.get('py_dirty_files', []))} uncommitted files in py/" if code.get("py_dirty_files") else ""
    lines = [f"== issue 13: every figure at every size (code {code.get('commit')}{dirty}; "
             f"{results[0].get('started') if results else ''}; {os.cpu_count()} CPUs) ==",
             f"{'figure':<{w0}}  " + "  ".join(f"{f'{n:,} LoRAs':>{w}}" for (n, _), w in zip(per_size, widths))]
    for label in labels:
        lines.append(f"{label:<{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells[label], widths)))

    def single(label: str, value: str, ok: bool | None = None) -> None:
        lines.append(f"{label:<{w0}}  {value}{'' if ok is None else (' PASS' if ok else ' FAIL')}")

    if hasher:
        single("hasher vs fastest hashlib (same file, page cache; >= 90 %)", f"{hasher['ratio'] * 100:.1f} %", hasher["ratio"] >= 0.9)
    big = next((r["hash_1gib"] for r in reversed(results) if r.get("hash_1gib")), None)
    if big:
        pc = big.get("page_cache_MiB") or {}
        if pc:
            single(f"page cache added while hashing a {pc['file']:g} MiB file (<= 25 %)",
                   f"{pc['max_growth']:g} MiB most, {pc['after_delta']:g} MiB left", pc["max_growth"] <= 0.25 * pc["file"])
        snap = big.get("snapshot") or {}
        single("hashing while serving (one file at a time, sequential reads)", f"{big.get('server_MiB_per_s')} MiB/s, loop max "
               f"{big.get('stall_loop', {}).get('max_ms')} ms (done {snap.get('done')}, failed {snap.get('failed')})")
    page = extras.get("page")
    if page:
        pg = page["page"]
        s, f = pg["steady"], pg["fling"]
        cards = max(s["maxCards"], f["maxCards"], pg["cards_at_end"])
        single(f"page at {page['size']:,}: first cards after navigation (<= 1500 ms)", f"{pg['first_cards_ms']:g} ms", pg["first_cards_ms"] <= 1500)
        single(f"page at {page['size']:,}: frame p95 scrolling / fling to the end (<= 20 ms)", f"{s['p95']:.1f} / {f['p95']:.1f} ms",
               max(s["p95"], f["p95"]) <= 20)
        single(f"page at {page['size']:,}: most cards in the DOM / elements at the end", f"{cards} / {pg['dom_nodes_at_end']} "
               f"(CPU of other processes {page.get('foreign_cpu_percent')} %)")
    elif extras.get("page_error"):
        single("page bench", f"not measured: {extras['page_error']}")
    dl = extras.get("download")
    if dl:
        single("download with hashing vs a plain aiohttp copy (>= 90 %)", f"{dl['transfer_vs_plain'] * 100:.1f} % "
               f"({dl['transfer_MiB_per_s']:g} vs {dl['plain_MiB_per_s']:g} MiB/s; vs a copy + fsync "
               f"{dl['transfer_vs_plain_fsync'] * 100:.1f} %; CPU of other processes {dl.get('foreign_cpu_percent')} %)",
               dl["transfer_vs_plain"] >= 0.9)
        link = extras.get("download_link")
        if link:
            single(f"the same on a {link['link_MiB_per_s']:g} MiB/s link (hashing never the limit)",
                   f"{link['transfer_vs_plain'] * 100:.1f} % ({link['transfer_MiB_per_s']:g} vs {link['plain_MiB_per_s']:g} MiB/s)")
    elif extras.get("download_error"):
        single("download bench", f"not measured: {extras['download_error']}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def run_extras(args: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    """The page in Chromium at the largest size and the download bench, as their own scripts."""
    extras: dict[str, Any] = {}
    if args.page and sizes:
        n = max(sizes)
        log(f"[page] {n:,} LoRAs in Chromium ...")
        try:
            subprocess.run([sys.executable, str(HERE / "page_bench.py"), "--size", str(n)], check=True, timeout=1800)
            extras["page"] = json.loads((OUT / f"page-{n}.json").read_text())
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            extras["page_error"] = str(exc)[:200]
    if args.download:
        log("[download] downloader vs a plain copy ...")
        path = OUT / "download.json"
        try:
            subprocess.run([sys.executable, str(HERE / "download_bench.py"), "--size-mib", str(args.download_mib),
                            "--rounds", "3", "--json", str(path)], check=True, timeout=1800)
            extras["download"] = json.loads(path.read_text())
            # and on a fast real link (300 MiB/s, 2.5 Gbit/s): is hashing ever what limits it?
            path = OUT / "download-link.json"
            subprocess.run([sys.executable, str(HERE / "download_bench.py"), "--size-mib", str(args.download_mib),
                            "--rounds", "3", "--link-mib-per-s", "300", "--json", str(path)], check=True, timeout=1800)
            extras["download_link"] = json.loads(path.read_text())
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            extras["download_error"] = str(exc)[:200]
    return extras


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_quiet(max_wait: float, threshold: float = 20.0) -> float:
    """Wait (up to ``max_wait`` s) until the machine's CPUs are less than ``threshold`` % busy
    over one second; returns the last reading (other sessions' test suites skew the figures)."""
    deadline = time.monotonic() + max_wait
    busy = psutil.cpu_percent(interval=1.0)
    while busy >= threshold and time.monotonic() < deadline:
        log(f"  machine busy ({busy:.0f}% CPU), waiting ...")
        busy = psutil.cpu_percent(interval=2.0)
    return busy


async def amain(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    big_size = args.big_mib * MiB
    big_dir = Path(tempfile.mkdtemp(prefix="bigfile-", dir=OUT))
    big_file = big_dir / "big_model.safetensors" if big_size else None
    hasher = None
    try:
        if big_file is not None:
            log(f"writing a {args.big_mib} MiB model file ...")
            make_big_file(big_file, big_size)
            if args.wait_quiet:
                await asyncio.to_thread(wait_quiet, args.wait_quiet)
            log("hash_file vs hashlib (best of 3) ...")
            hasher = await asyncio.to_thread(hasher_vs_hashlib, big_file)
        results: list[dict[str, Any]] = []
        for i, n in enumerate(sizes):
            busy = await asyncio.to_thread(wait_quiet, args.wait_quiet) if args.wait_quiet else None
            res = await bench_size(n, args, big_file)
            results.append(res)
            res["cpu_busy_before_percent"] = busy
            res["hasher"] = hasher
            res["what_if_gc_threshold"] = args.what_if_gc_threshold or None
            res["big_file_MiB"] = args.big_mib
            res["table"] = print_table(res, hasher)
            name = f"results-{n}-whatif-gc.json" if args.what_if_gc_threshold else f"results-{n}.json"
            (OUT / name).write_text(json.dumps(res, indent=2))
            log(f"wrote {OUT / name}")
        extras = await asyncio.to_thread(run_extras, args, sizes)
        summary = print_summary(results, hasher, extras)
        (OUT / "summary.txt").write_text(summary + "\n")
        log(f"wrote {OUT / 'summary.txt'}")
    finally:
        shutil.rmtree(big_dir, ignore_errors=True)  # never leave the big file behind


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the model library server (issue 2 targets).")
    parser.add_argument("--sizes", default="10000,50000,100000",
                        help="comma-separated library sizes (default 10000,50000,100000: issue 13's table)")
    parser.add_argument("--quick", action="store_true", help="10k only, 50 requests per variant, 2 s throughput, 256 MiB hash file")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per list variant")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput duration")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the file hashed while serving (0: skip)")
    parser.add_argument("--hash-backlog-timeout", type=float, default=None, help="max seconds to wait for the small-file hash backlog")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=5000, help="sidecars changed for the reconcile figure")
    parser.add_argument("--bulk", type=int, default=1000, help="models in the bulk edit")
    parser.add_argument("--repeat", type=int, default=None,
                        help="start-up runs per scenario, median reported (default 3 up to 10k, 1 above; --quick 1)")
    parser.add_argument("--no-watch", action="store_true", help="run the server with --no-watch")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="before each size, wait up to S seconds for the machine to be < 20%% busy")
    parser.add_argument("--what-if-gc-threshold", default="", metavar="A,B,C",
                        help="EXPERIMENT: the server runs gc.set_threshold(A, B, C) at start (not the product's behaviour)")
    parser.add_argument("--keep-runs", action="store_true", help="keep cache dirs and server logs under bench/out")
    parser.add_argument("--no-page", dest="page", action="store_false",
                        help="skip the page in Chromium (bench/page_bench.py at the largest size)")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="skip the download bench (bench/download_bench.py)")
    parser.add_argument("--download-mib", type=int, default=768, help="file size of the download bench")
    args = parser.parse_args(argv)
    if args.quick:
        if args.sizes == "10000,50000,100000":
            args.sizes = "10000"
        args.requests = min(args.requests, 50)
        args.seconds = min(args.seconds, 2.0)
        args.big_mib = min(args.big_mib, 256)
        args.page = args.download = False
    if args.what_if_gc_threshold:
        os.environ["LM_BENCH_GC_THRESHOLD"] = args.what_if_gc_threshold
        log(f"EXPERIMENT: server runs with gc.set_threshold({args.what_if_gc_threshold}); figures are a what-if")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
