"""Benchmark of the model library: the real standalone server, measured from outside over HTTP.

    .venv/bin/python bench/run_bench.py                    # 10k and 50k (the README figures)
    .venv/bin/python bench/run_bench.py --sizes 10000      # one size
    .venv/bin/python bench/run_bench.py --quick            # 10k, fewer requests, 256 MiB hash file

Per size it generates (or reuses, see ``synthetic_library.py``) two libraries, with and
without sidecars, and runs the server (``bench/loop_monitor.py`` = standalone.py plus an
in-process loop-lag monitor) in a subprocess for each scenario:

1. cold start, sidecars, fresh cache dir: spawn -> first health-check answer (process
   start-up), -> first page of >= 20 items, -> ``/api/lm/status`` ready with total == N;
   then list latency (200 sequential requests per variant), 4-client throughput, peak RSS.
2. warm start on the same cache dir: -> listing served (ready, total == N) and -> the
   stat-only reconcile finished (``last_scan`` reported).
3. cold start without any sidecar: as 1, then the background hashing of the N files.
4. warm start plus one extra LoRA root holding a 1 GiB model without sidecar: the event
   loop while it is hashed (health-check every 10 ms from outside, loop lag inside,
   list latency during the hash).
5. ``hash_file`` against ``hashlib.sha256`` on the same 1 GiB file (page cache), best of 3.

Results are printed as a table with the targets of issue 2 and written to
``bench/out/results-<size>.json``. The 1 GiB file is deleted at the end.
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
    """Samples the RSS of a process (and its children) every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.cpu_s = 0.0  # the server's user+system CPU seconds (last sample)
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self.proc.memory_info().rss
                t = self.proc.cpu_times()
                self.cpu_s = t.user + t.system
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            self.samples.append((time.monotonic(), rss))
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


VARIANTS = {
    "default": lambda i: {},
    "search": lambda i: {"search": synth.SEARCH_MARKER},
    "sort": lambda i: {"sort_by": ("name:asc", "date:desc", "size:desc")[i % 3]},
    "base_model": lambda i: {"base_model": "SDXL 1.0"},
    "folder": lambda i: {"folder": "Pony/style"},
}


async def list_latency(server: Server, session: aiohttp.ClientSession, requests: int) -> dict[str, Any]:
    url = f"{server.base}/api/lm/loras/list"
    out: dict[str, Any] = {}
    for name, params_of in VARIANTS.items():
        status, body = await get_json(session, url, page_size=20, **params_of(0))
        total_pages = max(1, (body or {}).get("total_pages", 1))
        total = (body or {}).get("total")
        lat: list[float] = []
        for i in range(requests):
            params = {"page": 1 + (i % min(total_pages, 10)), "page_size": 20, **params_of(i)}
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
            async with session.get(url, params={"page": 1 + i % 10, "page_size": 20, **VARIANTS["sort"](i)}) as r:
                await r.read()
            list_lat.append((t0, time.monotonic() - t0))
            i += 1
            await asyncio.sleep(0.02)

    lister_task = asyncio.create_task(lister())
    await asyncio.sleep(0.3)
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



# -------------------------------------------------------------------------- scenarios
async def bench_size(n: int, args: argparse.Namespace, big_file: Path | None) -> dict[str, Any]:
    t_bench = time.monotonic()
    res: dict[str, Any] = {"size": n, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                           "code": code_revision(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    log(f"[{n}] libraries ...")
    t0 = time.monotonic()
    lib_sc = synth.generate(n, sidecars=True, previews=True, seed=args.seed)
    lib_nosc = synth.generate(n, sidecars=False, previews=True, seed=args.seed)
    res["library"] = {"with_sidecars": str(lib_sc), "without_sidecars": str(lib_nosc),
                      "folders": synth.describe(lib_sc)["folders"], "prepare_s": round(time.monotonic() - t0, 1)}
    work = Path(tempfile.mkdtemp(prefix=f"bench-{n}-", dir=OUT))
    timeout = 60 + n / 200
    args = argparse.Namespace(**vars(args))
    if args.repeat is None:
        args.repeat = 1 if args.quick or n > 10000 else 3
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as session:
            # 1. cold start with sidecars, then latency, throughput
            log(f"[{n}] cold start, sidecars ...")
            cache_sc = work / "cache-sc"
            srv = Server([lib_sc], cache_sc, work / "run-cold-sc", watch=not args.no_watch)
            try:
                res["cold_sidecars"] = await measure_start(srv, session, n, warm=False, timeout=timeout)
                t_ready = time.monotonic()
                log(f"[{n}] list latency ({args.requests} requests x {len(VARIANTS)}) ...")
                res["latency"] = await list_latency(srv, session, args.requests)
                log(f"[{n}] throughput (4 clients, {args.seconds}s) ...")
                res["throughput"] = await throughput(srv, 4, args.seconds)
                res["cold_sidecars"]["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
                res["cold_sidecars"]["rss_after_ready_MiB"] = round(srv.rss.peak_between(t_ready, time.monotonic()) / MiB, 1)
            finally:
                srv.stop()
                res["cold_sidecars"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
            # 2. warm start on the same cache
            log(f"[{n}] warm start ...")
            srv = Server([lib_sc], cache_sc, work / "run-warm", watch=not args.no_watch)
            try:
                res["warm"] = await measure_start(srv, session, n, warm=True, timeout=timeout)
                res["warm"]["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
            finally:
                srv.stop()
                res["warm"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
            # 3. cold start without any sidecar, then the hash backlog
            log(f"[{n}] cold start, no sidecars ...")
            srv = Server([lib_nosc], work / "cache-nosc", work / "run-cold-nosc", watch=not args.no_watch)
            try:
                res["cold_no_sidecars"] = await measure_start(srv, session, n, warm=False, timeout=timeout)
                log(f"[{n}] hashing {n} small files (up to {args.hash_backlog_timeout}s) ...")
                probe = Probe(session, f"{srv.base}/api/lm/health-check")
                probe.start()
                h = await wait_hashing(srv, session, want_done=n, timeout=args.hash_backlog_timeout)
                await probe.stop()
                snap = h["snapshot"]
                elapsed = h["t_end"] - h["t_start"]
                res["hash_backlog"] = {
                    "finished": h["finished"], "seconds": round(elapsed, 2), "done": snap.get("done"),
                    "files_per_s": round((snap.get("done") or 0) / elapsed, 1) if elapsed > 0 else None,
                    "stall_probe": probe.window(h["t_start"], h["t_end"]),
                    "stall_loop": srv.loop_window(h["t_start"], h["t_end"]),
                }
                res["cold_no_sidecars"]["peak_rss_MiB"] = round(srv.rss.peak / MiB, 1)
            finally:
                srv.stop()
                res["cold_no_sidecars"]["foreign_cpu_percent"] = srv.foreign_cpu_percent
            # repeats of the three start-ups (the machine is shared: one run can be noisy);
            # the table shows the median, the JSON every run
            for r in range(1, args.repeat):
                log(f"[{n}] start-up repeat {r + 1}/{args.repeat} ...")
                for key, lib, cache, warm in (("cold_sidecars", lib_sc, work / f"cache-sc-{r}", False),
                                              ("warm", lib_sc, cache_sc, True),
                                              ("cold_no_sidecars", lib_nosc, work / f"cache-nosc-{r}", False)):
                    srv = Server([lib], cache, work / f"run-{key}-{r}", watch=not args.no_watch)
                    try:
                        extra = await measure_start(srv, session, n, warm=warm, timeout=timeout)
                    finally:
                        srv.stop()
                    extra["foreign_cpu_percent"] = srv.foreign_cpu_percent
                    res[key].setdefault("repeats", []).append(extra)
            for key in ("cold_sidecars", "warm", "cold_no_sidecars"):
                summarise_repeats(res[key])
            # 4. hashing a 1 GiB model while serving: the warm server gets an extra (empty)
            #    LoRA root; once it has settled the big file is renamed into that root and a
            #    scan is forced, so the window holds the hash and not the start-up.
            if big_file is not None:
                log(f"[{n}] hashing a {big_file.stat().st_size // MiB} MiB file while serving ...")
                drop = work / "big-root"
                drop.mkdir()
                srv = Server([lib_sc, drop], cache_sc, work / "run-hash", watch=not args.no_watch)
                try:
                    await measure_start(srv, session, n, warm=True, timeout=timeout)
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
def rows_for(res: dict[str, Any], hasher: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    n = res["size"]
    small = n <= 10000
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, value: Any, unit: str = "", target: str = "", ok: bool | None = None) -> None:
        shown = "n/a" if value is None else f"{value}{unit}"
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        rows.append((label, shown, target, verdict))

    def le(value: Any, limit: float) -> bool | None:
        return None if value is None else value <= limit

    cs, cn, w = res.get("cold_sidecars", {}), res.get("cold_no_sidecars", {}), res.get("warm", {})

    def tv(d: dict[str, Any], key: str) -> Any:
        """The median over repeats when there were repeats, else the single figure."""
        return d.get("median", {}).get(key, d.get(key))

    def tshow(d: dict[str, Any], key: str) -> Any:
        value = tv(d, key)
        rng = d.get("range", {}).get(key)
        if value is None or not rng or rng[2] < 2:
            return value
        return f"{value} s (median of {rng[2]}: {rng[0]}-{rng[1]})"

    def addt(label: str, d: dict[str, Any], key: str, target: str = "", limit: float | None = None) -> None:
        value = tv(d, key)
        shown = tshow(d, key)
        unit = "" if isinstance(shown, str) else " s"
        add(label, shown, unit, target, le(value, limit) if limit is not None else None)
    addt("process start-up (spawn -> health-check)", cs, "process_startup_s")
    addt("cold, sidecars: ready, total == N", cs, "ready_s", "<= 1.5 s" if small else "", 1.5 if small else None)
    addt("  (same, after process start-up)", cs, "ready_after_startup_s")
    addt("cold, sidecars: first page >= 20 items", cs, "first_page_s")
    addt("cold, no sidecars: ready, total == N", cn, "ready_s", "<= 4 s" if small else "", 4 if small else None)
    addt("  (same, after process start-up)", cn, "ready_after_startup_s")
    addt("cold, no sidecars: first page >= 20 items", cn, "first_page_s", "<= 1 s" if small else "", 1 if small else None)
    addt("warm: listing served (ready, total == N)", w, "ready_s")
    limit = 1.0 if small else 3.0
    addt("warm: stat-only reconcile finished", w, "reconciled_s", f"<= {limit:g} s", limit)
    addt("  (same, after process start-up)", w, "reconciled_after_startup_s")
    lat_limit = 10 if small else 30
    for name, v in res.get("latency", {}).items():
        add(f"list p50 / p95 [{name}] (total {v['total']})", f"{v['p50_ms']} / {v['p95_ms']}", " ms", f"p95 <= {lat_limit} ms", le(v["p95_ms"], lat_limit))
    tp = res.get("throughput", {})
    add("throughput, 4 clients, default list", tp.get("rps"), " req/s", ">= 300 req/s" if small else "", (tp.get("rps", 0) >= 300) if small and tp else None)
    peak = max((res.get(k, {}).get("peak_rss_MiB") or 0) for k in ("cold_sidecars", "cold_no_sidecars", "warm"))
    add("peak RSS (max over cold/warm runs)", peak, " MiB", "<= 150 MiB" if small else "", le(peak, 150) if small else None)
    add("  cold sidecars / no sidecars / warm", f"{cs.get('peak_rss_MiB')} / {cn.get('peak_rss_MiB')} / {w.get('peak_rss_MiB')}", " MiB")
    for key, label in (("cold_sidecars", "cold scan, sidecars"), ("cold_no_sidecars", "cold scan, no sidecars"), ("warm", "warm start + reconcile")):
        d = res.get(key, {})
        lp, pp = d.get("stall_loop", {}), d.get("stall_probe", {})
        worst = d.get("stall_loop_max_over_runs_ms", lp.get("max_ms"))
        add(f"stall during {label}: loop max / p99", f"{lp.get('max_ms')} / {lp.get('p99_ms')}", " ms", "max <= 50 ms", le(worst, 50))
        if len(d.get("stall_loop_max_per_run_ms", [])) > 1:
            add("  loop max in each repeat", " / ".join(str(x) for x in d["stall_loop_max_per_run_ms"]), " ms")
        if lp.get("gc_total_ms"):
            add(f"  GC pauses > 2 ms: count / longest / total", f"{lp.get('gc_pauses_over_2ms')} / {lp.get('gc_max_ms')} / {lp.get('gc_total_ms')}", " ms")
        add(f"  health-check max / p99 (every 10 ms, n={pp.get('samples')})", f"{pp.get('max_ms')} / {pp.get('p99_ms')}", " ms")
    hb = res.get("hash_backlog")
    if hb:
        add(f"hash backlog of N small files ({'done' if hb['finished'] else 'NOT done'}: {hb['done']})", hb["seconds"], f" s ({hb['files_per_s']} files/s)")
        lp, pp = hb["stall_loop"], hb["stall_probe"]
        add("stall during hash backlog: loop max / p99", f"{lp.get('max_ms')} / {lp.get('p99_ms')}", " ms", "max <= 50 ms", le(lp.get("max_ms"), 50))
        add(f"  health-check max / p99 (n={pp.get('samples')})", f"{pp.get('max_ms')} / {pp.get('p99_ms')}", " ms")
    hg = res.get("hash_1gib")
    if hg:
        lp, pp = hg["stall_loop"], hg["stall_probe"]
        add(f"hashing the {res.get('big_file_MiB')} MiB file in the server", hg["seconds_hashing"], f" s ({hg['server_MiB_per_s']} MiB/s, {hg['seconds_from_move']} s from move)")
        add("stall while hashing big file: loop max / p99", f"{lp.get('max_ms')} / {lp.get('p99_ms')}", " ms", "max <= 50 ms", le(lp.get("max_ms"), 50))
        lm = hg["stall_loop_move_to_end"]
        add("  loop max / p99 from the move (incl. finding the file)", f"{lm.get('max_ms')} / {lm.get('p99_ms')}", " ms")
        add(f"  health-check max / p99 (n={pp.get('samples')})", f"{pp.get('max_ms')} / {pp.get('p99_ms')}", " ms")
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
    foreign = {k: res.get(k, {}).get("foreign_cpu_percent") for k in ("cold_sidecars", "warm", "cold_no_sidecars", "hash_1gib")}
    if os.environ.get("LM_BENCH_GC_THRESHOLD"):
        lines.append(f"EXPERIMENT (not the product): server ran with gc.set_threshold({os.environ['LM_BENCH_GC_THRESHOLD']})")
    lines.append(f"machine: {res['machine']['cpus']} CPUs; load avg at start {res.get('loadavg_start')}, at end {res.get('loadavg_end')}; "
                 f"CPU used by OTHER processes during the runs (% of all CPUs): {foreign}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


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
        for i, n in enumerate(sizes):
            busy = await asyncio.to_thread(wait_quiet, args.wait_quiet) if args.wait_quiet else None
            res = await bench_size(n, args, big_file)
            res["cpu_busy_before_percent"] = busy
            res["hasher"] = hasher
            res["what_if_gc_threshold"] = args.what_if_gc_threshold or None
            res["big_file_MiB"] = args.big_mib
            res["table"] = print_table(res, hasher)
            name = f"results-{n}-whatif-gc.json" if args.what_if_gc_threshold else f"results-{n}.json"
            (OUT / name).write_text(json.dumps(res, indent=2))
            log(f"wrote {OUT / name}")
    finally:
        shutil.rmtree(big_dir, ignore_errors=True)  # never leave the big file behind


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark the model library server (issue 2 targets).")
    parser.add_argument("--sizes", default="10000,50000", help="comma-separated library sizes (default 10000,50000)")
    parser.add_argument("--quick", action="store_true", help="10k only, 50 requests per variant, 2 s throughput, 256 MiB hash file")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per list variant")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput duration")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the file hashed while serving (0: skip)")
    parser.add_argument("--hash-backlog-timeout", type=float, default=None, help="max seconds to wait for the small-file hash backlog")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=None,
                        help="start-up runs per scenario, median reported (default 3 up to 10k, 1 above; --quick 1)")
    parser.add_argument("--no-watch", action="store_true", help="run the server with --no-watch")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="before each size, wait up to S seconds for the machine to be < 20%% busy")
    parser.add_argument("--what-if-gc-threshold", default="", metavar="A,B,C",
                        help="EXPERIMENT: the server runs gc.set_threshold(A, B, C) at start (not the product's behaviour)")
    parser.add_argument("--keep-runs", action="store_true", help="keep cache dirs and server logs under bench/out")
    args = parser.parse_args(argv)
    if args.quick:
        if args.sizes == "10000,50000":
            args.sizes = "10000"
        args.requests = min(args.requests, 50)
        args.seconds = min(args.seconds, 2.0)
        args.big_mib = min(args.big_mib, 256)
    if args.what_if_gc_threshold:
        os.environ["LM_BENCH_GC_THRESHOLD"] = args.what_if_gc_threshold
        log(f"EXPERIMENT: server runs with gc.set_threshold({args.what_if_gc_threshold}); figures are a what-if")
    if args.hash_backlog_timeout is None:
        args.hash_backlog_timeout = 20.0 if args.quick else 60.0
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
