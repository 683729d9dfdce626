"""Profile one start-up scenario of the server with py-spy (and asyncio's slow-callback log).

    .venv/bin/pip install py-spy          # not a project requirement
    .venv/bin/python bench/profile_scenario.py --size 10000 --scenario cold
    scenarios: cold (the mixed library of synthetic_library.py), warm, hash-backlog

Writes ``bench/out/profile-<scenario>-<size>.txt`` (collapsed stacks from py-spy, all
threads, idle frames excluded) and prints the top functions by own and total time for
the event-loop thread and for the other threads, plus asyncio's "Executing ... took"
lines (callbacks that blocked the loop longer than ``--slow-ms``).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import aiohttp  # noqa: E402
import run_bench as rb  # noqa: E402
import synthetic_library as synth  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")


def summarise(raw: Path, top: int = 25) -> str:
    own: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    total: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    samples: collections.Counter = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0]
        group = "loop thread" if "MainThread" in thread or "main" in thread.lower() else "worker threads"
        frames = [re.sub(r"\s*\(/[^)]*/", " (", f) for f in frames[1:]]
        if group == "loop thread":
            if not any(f.startswith("Handle._run") for f in frames):
                continue  # imports, or the selector waiting: not a callback blocking the loop
            group = "loop thread, inside callbacks"
        samples[group] += n
        if frames:
            own[group][frames[-1]] += n
            for f in set(frames):
                total[group][f] += n
    out = []
    for group in sorted(samples):
        out.append(f"--- {group}: {samples[group]} samples")
        out.append("  own time:")
        for f, n in own[group].most_common(top):
            out.append(f"    {100 * n / samples[group]:5.1f}%  {f}")
        out.append("  total time (inclusive):")
        for f, n in total[group].most_common(top):
            out.append(f"    {100 * n / samples[group]:5.1f}%  {f}")
    return "\n".join(out)


async def run(args: argparse.Namespace) -> None:
    n = args.size
    lib = synth.generate(n, seed=1)
    roots = dict(checkpoints=[synth.checkpoint_root(lib)], embeddings=[synth.embedding_root(lib)])
    work = Path(tempfile.mkdtemp(prefix="profile-", dir=rb.OUT))
    cache = work / "cache"
    if args.slow_ms:
        os.environ["LM_BENCH_SLOW_CALLBACK_MS"] = str(args.slow_ms)
    os.environ["LM_BENCH_STALL_STACKS_MS"] = str(args.stall_ms)
    raw = rb.OUT / f"profile-{args.scenario}-{n}.txt"
    try:
        async with aiohttp.ClientSession() as session:
            if args.scenario == "warm":  # fill the cache first, unprofiled
                srv = rb.Server([synth.lora_root(lib)], cache, work / "prep", extra_roots=roots)
                await rb.measure_start(srv, session, n, warm=False, timeout=300)

                async def all_cached():  # every type scanned and stored, not only the LoRAs
                    _, body = await rb.get_json(session, f"{srv.base}/api/lm/status")
                    types = (body or {}).get("types", {})
                    return bool(types) and all(t.get("ready") and t.get("last_scan") for t in types.values() if t.get("total"))

                await rb.poll(all_cached, period=0.1, timeout=300)
                await asyncio.sleep(1)  # the deferred cache writes
                srv.stop()
            srv = rb.Server([synth.lora_root(lib)], cache, work / "run", extra_roots=roots)
            srv.start()
            spy = subprocess.Popen([str(PY_SPY), "record", "--pid", str(srv.proc.pid), "-r", str(args.rate), "--threads",
                                    "-f", "raw", "-o", str(raw), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            srv.proc, proc = None, srv.proc  # measure_start would spawn again: emulate its polling instead
            t_spawn = time.monotonic()

            async def status():
                _, body = await rb.get_json(session, f"{srv.base}/api/lm/status")
                return body

            t_ready, _ = await rb.poll(lambda: _ready(status, n, args.scenario), period=0.05, timeout=300)
            print(f"{args.scenario}: done after {t_ready - t_spawn if t_ready else float('nan'):.2f}s", flush=True)
            srv.proc = proc
            srv.stop()
            spy.wait(timeout=60)
            stalls = json.loads(srv.loop_log.read_text()).get("stalls", [])
            log = (work / "run").glob("server-*.log")
            slow = [line for f in log for line in f.read_text(errors="replace").splitlines() if "took" in line and "Executing" in line]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"py-spy raw profile: {raw}")
    print(summarise(raw, args.top))
    print(f"--- stalls > {args.stall_ms} ms: {len(stalls)} snapshots (every 5 ms while late); loop-thread stacks:")
    tops = collections.Counter(" <- ".join(st["loop"][:args.depth]) for st in stalls)
    for stack, count in tops.most_common(12):
        print(f"  {count:4d} x 5 ms  {stack}")
    print("  other busy threads during those snapshots:")
    others = collections.Counter(f"{name}: " + " <- ".join(stack[:args.depth]) for st in stalls for name, stack in st["others"].items())
    for stack, count in others.most_common(12):
        print(f"  {count:4d}  {stack}")
    print(f"--- asyncio slow callbacks (> {args.slow_ms} ms): {len(slow)}")
    for line in slow[:40]:
        took = re.search(r"took ([0-9.]+) seconds", line)
        where = re.findall(r"running at ([^ >]+)", line)
        print(f"  {float(took.group(1)) * 1000 if took else float('nan'):7.1f} ms  {where[0] if where else line[:200]}")


async def _ready(status, n: int, scenario: str) -> bool:
    body = await status()
    lora = rb.lora_status(body)
    if not (lora.get("ready") and lora.get("total") == n and lora.get("last_scan")):
        return False
    if scenario == "hash-backlog":
        h = body.get("hashing", {})
        return h.get("done", 0) > 0 and not h.get("queued") and not h.get("current")
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--scenario", choices=["cold", "warm", "hash-backlog"], default="cold")
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--slow-ms", type=float, default=0, help="asyncio debug slow-callback threshold (0: off; debug mode slows the server)")
    parser.add_argument("--stall-ms", type=float, default=20, help="snapshot stacks while the loop is later than this")
    parser.add_argument("--depth", type=int, default=4, help="frames shown per stack")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
