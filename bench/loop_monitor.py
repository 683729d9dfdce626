"""Run the standalone server with an in-process event-loop stall monitor.

``python bench/loop_monitor.py <standalone.py arguments>`` behaves exactly like
``python standalone.py ...`` but, before ``web.run_app`` starts, adds an ``on_startup``
hook that runs a task on the server's loop: it sleeps 5 ms and records how late it woke
up (``loop.time()`` drift). Samples ``(monotonic time, lag seconds)`` are written to the
file named by ``LM_BENCH_LOOP_LOG`` (JSON) when the server exits, so the bench can cut
windows (cold scan, hashing) out of them with its own ``time.monotonic()`` clock
(CLOCK_MONOTONIC is shared by processes on one machine).

Bench code only: it changes nothing in the server, it just wraps ``aiohttp.web.run_app``.
"""
from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PERIOD = 0.005


def _stack(frame, depth: int = 12) -> list[str]:
    out = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        out.append(f"{code.co_name} ({Path(code.co_filename).name}:{frame.f_lineno})")
        frame = frame.f_back
    return out


class LoopMonitor:
    def __init__(self, log_path: str | None) -> None:
        self.log_path = log_path
        self.times: list[float] = []
        self.lags: list[float] = []
        self.heartbeat = time.monotonic()
        self.stalls: list[dict] = []  # stack snapshots taken while the loop was late
        self._task: asyncio.Task | None = None
        self._lock = threading.Lock()
        self._loop_thread = threading.get_ident()
        self.gc_pauses: list[tuple[float, int, float]] = []  # (monotonic end, generation, seconds) > 2 ms
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict) -> None:
        # a collection holds the GIL: no thread runs, the stall sampler cannot see it either
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            took = time.perf_counter() - self._gc_started
            if took > 0.002:
                self.gc_pauses.append((time.monotonic(), info.get("generation", -1), round(took, 4)))

    def _stall_sampler(self, threshold: float) -> None:
        """While the loop is late by more than ``threshold``, snapshot every thread's stack
        every 5 ms: the loop thread's stack says whether a callback runs (and which) or the
        loop waits in ``select`` for the GIL held by another thread (whose stack is shown)."""
        while True:
            time.sleep(0.005)
            if self._task is None:
                continue
            late = time.monotonic() - self.heartbeat - PERIOD
            if late < threshold:
                continue
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            snap = {"t": time.monotonic(), "late": round(late, 4), "loop": _stack(frames.get(self._loop_thread)), "others": {}}
            for ident, frame in frames.items():
                if ident in (self._loop_thread, threading.get_ident()):
                    continue
                stack = _stack(frame, 6)
                idle = ("wait (threading", "_worker (thread", "select (", "poll (", "read_events", "_check_inotify_fd (",
                        "_acquire_restore (", "get (delayed_queue", "get (queue")
                if stack and not stack[0].startswith(idle):
                    snap["others"][names.get(ident, str(ident))] = stack
            self.stalls.append(snap)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + PERIOD
            await asyncio.sleep(PERIOD)
            lag = loop.time() - expected
            self.heartbeat = time.monotonic()
            self.times.append(time.monotonic())
            self.lags.append(max(0.0, lag))

    async def on_startup(self, app) -> None:  # aiohttp signal handler
        slow = os.environ.get("LM_BENCH_SLOW_CALLBACK_MS")
        if slow:  # diagnosis: asyncio debug mode names every callback slower than this
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = float(slow) / 1000
        self._loop_thread = threading.get_ident()
        self.heartbeat = time.monotonic()
        import gc

        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-loop-monitor")
        stall_ms = os.environ.get("LM_BENCH_STALL_STACKS_MS")
        if stall_ms:
            threading.Thread(target=self._stall_sampler, args=(float(stall_ms) / 1000,), name="bench-stall-sampler", daemon=True).start()

    async def on_cleanup(self, app) -> None:
        if self._task is not None:
            self._task.cancel()
        self.dump()

    def dump(self) -> None:
        if not self.log_path:
            return
        with self._lock:
            n = min(len(self.times), len(self.lags))
            payload = {"period": PERIOD, "t": self.times[:n], "lag": [round(x, 6) for x in self.lags[:n]], "stalls": list(self.stalls),
                       "gc": list(self.gc_pauses)}
            tmp = f"{self.log_path}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
            os.replace(tmp, self.log_path)


def _load_standalone_host():
    spec = importlib.util.spec_from_file_location("lm_bench_standalone", REPO / "standalone.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only (main is guarded)
    return module._load_package()


def main(argv: list[str]) -> None:
    from aiohttp import web

    if os.environ.get("LM_BENCH_SLOW_CALLBACK_MS"):
        import logging

        logging.getLogger("asyncio").setLevel(logging.WARNING)

    monitor = LoopMonitor(os.environ.get("LM_BENCH_LOOP_LOG"))
    threshold = os.environ.get("LM_BENCH_GC_THRESHOLD")
    if threshold:  # what-if experiments only (run_bench --what-if-gc-threshold)
        import gc

        gc.set_threshold(*(int(x) for x in threshold.split(",")))
    original = web.run_app

    def run_app(app, **kwargs):
        app.on_startup.append(monitor.on_startup)
        app.on_cleanup.append(monitor.on_cleanup)
        return original(app, **kwargs)

    web.run_app = run_app  # the host calls ``web.run_app`` through the module attribute
    atexit.register(monitor.dump)
    host = _load_standalone_host()
    host.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
