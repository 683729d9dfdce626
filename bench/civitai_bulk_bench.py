"""Benchmark of ``fetch-all-civitai`` (issue 4): 1,000 models unknown to the index, refreshed
from the local CivitAI test server answering in 50 ms, through the real standalone app.

    .venv/bin/python bench/civitai_bulk_bench.py                   # 1,000 files in one folder, 50 ms, one model each
    .venv/bin/python bench/civitai_bulk_bench.py --folders 20      # the same files in 20 folders of 50
    .venv/bin/python bench/civitai_bulk_bench.py --files 300 --civitai-models 40 --wait-hashed

Steps: write N small, distinct, real safetensors files (no sidecars) into a temp LoRA root;
start the local CivitAI test server (``tests/civitai_server.py``'s ``CivitaiTestServer`` with
``--synthetic``: any SHA256 is a known version) in its own process, plus a request-count
route; start ``standalone.py`` on the temp root with ``CIVITAI_API_BASE`` pointing at it;
once the library is listed (hashes may still be pending), POST ``fetch-all-civitai`` and time
it. Then the baseline "one request per model" (by-hash GET + model GET per file, what a naive
client does) is measured for a sample with the real ``CivitaiClient`` and its default limiter
against the same server, and extrapolated to N. Prints the figures; ``--json`` writes them.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable
COUNTS_PATH = "/__bench__/counts"


# ------------------------------------------------------------------ the CivitAI stand-in process


def serve_civitai(latency_ms: float, synthetic: int, port_file: Path) -> None:
    """Run ``CivitaiTestServer`` (fixture data only) with a route reporting its request counts."""
    from aiohttp import web

    spec = importlib.util.spec_from_file_location("civitai_server", REPO / "tests" / "civitai_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["civitai_server"] = module
    spec.loader.exec_module(module)
    server = module.CivitaiTestServer(latency_ms=latency_ms, synthetic_models=synthetic)

    async def counts(_request: web.Request) -> web.Response:
        return web.json_response(dict(server._counts))

    server.app.router.add_get(COUNTS_PATH, counts, name="bench-counts")

    async def main() -> None:
        runner = web.AppRunner(server.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        server.bind(f"http://{host}:{port}")
        port_file.write_text(server.origin)
        parent = os.getppid()
        while os.getppid() == parent:  # the benchmark died without stopping us: leave too
            await asyncio.sleep(0.5)
        await runner.cleanup()

    asyncio.run(main())


# ------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_models(root: Path, count: int, folders: int = 1) -> None:
    """``count`` distinct small safetensors files, spread round-robin over ``folders`` folders."""
    import numpy as np
    from safetensors.numpy import save_file

    for i in range(count):
        folder = root if folders <= 1 else root / f"group_{i % folders:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        tensor = (np.arange(64, dtype=np.float32) + i * 64).reshape(8, 8)
        save_file({"lora_up.weight": tensor}, str(folder / f"bench_{i:04d}.safetensors"),
                  metadata={"ss_base_model_version": "sdxl_base_v1-0"})


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            raise RuntimeError("the CivitAI test server exited early")
        time.sleep(0.02)
    raise TimeoutError("the CivitAI test server did not start")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load_plugin():
    """Import the repository as the package ``lm_plugin`` (as the tests do) for CivitaiClient."""
    if "lm_plugin" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lm_plugin", REPO / "__init__.py",
                                                      submodule_search_locations=[str(REPO)])
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["lm_plugin"] = module
        spec.loader.exec_module(module)
    from lm_plugin.py.services.civitai.civitai_client import CivitaiClient  # type: ignore[import-not-found]

    return CivitaiClient


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def counts_of(session, origin: str) -> dict[str, int]:
    async with session.get(origin + COUNTS_PATH) as resp:
        data = await resp.json()
    data.pop("bench-counts", None)
    return data


async def wait_listed(session, base: str, expected: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            async with session.get(base + "/api/lm/status") as resp:
                if resp.status == 200:
                    body = await resp.json()
                    lora = body["types"]["lora"]
                    if lora["ready"] and lora["total"] == expected:
                        return time.monotonic() - started
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("the app did not list the library in time")


async def wait_hashed(session, base: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        async with session.get(base + "/api/lm/status") as resp:
            hashing = (await resp.json())["hashing"]
        if not hashing["queued"] and not hashing["current"]:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise TimeoutError("hashing did not finish in time")


async def one_request_per_model(origin: str, sample: int) -> dict[str, Any]:
    """What a naive client costs: by-hash GET + model GET per file, through the default limiter."""
    import hashlib

    CivitaiClient = load_plugin()
    client = CivitaiClient(base_urls=lambda: [origin + "/api/v1"])
    started = time.monotonic()
    try:
        for i in range(sample):
            sha = hashlib.sha256(f"naive-{i}".encode()).hexdigest()
            version = await client.get_version_by_hash(sha)
            await client.get_model(int(version["modelId"]))
    finally:
        await client.close()
    seconds = time.monotonic() - started
    return {
        "sample_models": sample,
        "sample_seconds": round(seconds, 2),
        "requests_per_model": 2,
        "limiter_min_interval_s": client.rate_limiter.min_interval,
    }


# ------------------------------------------------------------------ the benchmark


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    work = Path(tempfile.mkdtemp(prefix="lm-civitai-bench-"))
    loras = work / "loras"
    t0 = time.monotonic()
    write_models(loras, args.files, args.folders)
    generated_s = time.monotonic() - t0

    port_file = work / "civitai-origin.txt"
    civitai_proc = subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve()), "--serve-civitai", "--latency-ms", str(args.latency_ms),
         "--synthetic", str(args.civitai_models), "--port-file", str(port_file)],
        cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=open(work / "civitai.log", "wb"),
    )
    app_proc = None
    try:
        origin = wait_for_file(port_file, civitai_proc, 30)
        port = free_port()
        env = dict(os.environ, CIVITAI_API_BASE=origin + "/api/v1", PYTHONUNBUFFERED="1")
        env.pop("CIVITAI_API_KEY", None)
        app_proc = subprocess.Popen(
            [PYTHON, "standalone.py", "--port", str(port), "--loras", str(loras), "--no-watch",
             "--settings", str(work / "settings.json"), "--cache-dir", str(work / "cache"), "--log-level", args.app_log_level],
            cwd=str(REPO), env=env, stdout=open(work / "app.log", "wb"), stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            listed_s = await wait_listed(session, base, args.files, 120)
            hashed_s = None
            if args.wait_hashed:
                hashed_s = await wait_hashed(session, base, 300)
            async with session.get(base + "/api/lm/status") as resp:
                hashing = (await resp.json())["hashing"]
            before = await counts_of(session, origin)
            cpu_before = _cpu_seconds(app_proc.pid)
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            async with session.post(base + "/api/lm/loras/fetch-all-civitai", json={}) as resp:
                status = resp.status
                summary = await resp.json()
            seconds = time.monotonic() - started
            app_cpu = _cpu_seconds(app_proc.pid) - cpu_before
            after = await counts_of(session, origin)
            naive = await one_request_per_model(origin, args.naive_sample)
        used = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        sidecars = sum(1 for _ in loras.rglob("*.metadata.json"))
        previews = sum(1 for _ in loras.rglob("*.webp"))
    finally:
        stop(app_proc)
        stop(civitai_proc)

    api_calls = sum(v for k, v in used.items() if k not in ("image",))
    per_model_s = naive["sample_seconds"] / max(1, naive["sample_models"])
    result = {
        "files": args.files,
        "folders": args.folders,
        "civitai_models": args.civitai_models or args.files,
        "latency_ms": args.latency_ms,
        "generate_s": round(generated_s, 2),
        "listed_after_s": round(listed_s, 2),
        "hashing_waited_s": None if hashed_s is None else round(hashed_s, 2),
        "hashes_pending_at_start": hashing.get("queued", 0) + (1 if hashing.get("current") else 0),
        "http_status": status,
        "summary": {k: summary.get(k) for k in ("status", "total", "processed", "updated", "not_found", "failed")},
        "seconds": round(seconds, 2),
        "app_cpu_seconds": round(app_cpu, 2),
        "load_average_before": round(load_before, 2),
        "by_hash_batch_calls": used.get("by-hash-batch", 0),
        "model_detail_calls": used.get("models", 0) + used.get("model", 0),
        "other_api_calls": api_calls - used.get("by-hash-batch", 0) - used.get("models", 0) - used.get("model", 0),
        "api_requests": api_calls,
        "preview_requests": used.get("image", 0),
        "total_requests": sum(used.values()),
        "sidecars_written": sidecars,
        "previews_written": previews,
        "one_request_per_model": {
            **naive,
            "api_requests": 2 * args.files,
            "estimated_seconds": round(per_model_s * args.files, 1),
            "plus_previews_sequential_s": round(args.files * args.latency_ms / 1000, 1),
        },
        "work_dir": str(work),
    }
    return result


def report(r: dict[str, Any]) -> None:
    n = r["one_request_per_model"]
    lines = [
        f"fetch-all-civitai over {r['files']} models unknown to the index, in {r['folders']} folder(s) "
        f"({r['civitai_models']} CivitAI models, server latency {r['latency_ms']:.0f} ms)",
        f"  library listed after        {r['listed_after_s']:.2f} s   (hashes still pending at start: {r['hashes_pending_at_start']})",
        f"  answer                      HTTP {r['http_status']} {r['summary']}",
        f"  time                        {r['seconds']:.2f} s            (target < 5 s; app CPU {r['app_cpu_seconds']:.2f} s, "
        f"machine load {r['load_average_before']:.1f} on {os.cpu_count()} CPUs)",
        f"  by-hash batch calls         {r['by_hash_batch_calls']}                 (target <= 10)",
        f"  model-detail calls          {r['model_detail_calls']}                 (target <= 10)",
        f"  other API calls             {r['other_api_calls']}",
        f"  preview image requests      {r['preview_requests']}",
        f"  total requests              {r['total_requests']}",
        f"  sidecars / previews written {r['sidecars_written']} / {r['previews_written']}",
        "one request per model (naive client: by-hash GET + model GET per file, default limiter):",
        f"  measured                    {n['sample_models']} models in {n['sample_seconds']:.2f} s",
        f"  for {r['files']} models            {n['api_requests']} API requests, ~{n['estimated_seconds']:.0f} s "
        f"(+ {r['preview_requests'] or r['files']} preview requests)",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--folders", type=int, default=1,
                        help="spread the files over this many folders (1 = one flat folder, the worst case)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--civitai-models", type=int, default=0,
                        help="spread the files over this many CivitAI models (0 = one model per file, the worst case)")
    parser.add_argument("--naive-sample", type=int, default=30, help="models measured for the one-request-per-model baseline")
    parser.add_argument("--wait-hashed", action="store_true",
                        help="let background hashing finish before the refresh (time the CivitAI part alone)")
    parser.add_argument("--app-log-level", default="WARNING", help="the app's log level (its log is in the work dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve-civitai", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_civitai:
        serve_civitai(args.latency_ms, args.synthetic, args.port_file)
        return
    result = asyncio.run(run(args))
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    ok = (result["by_hash_batch_calls"] <= 10 and result["model_detail_calls"] <= 10 and result["seconds"] < 5
          and result["summary"]["updated"] == result["files"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
