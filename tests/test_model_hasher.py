"""Model hashing: digests of real files, cancellation, pausing, and the background queue."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lm_plugin.py.services.library.model_hasher import (
    AUTOV1_LENGTH,
    AUTOV1_OFFSET,
    FileHashes,
    HashCancelled,
    HashQueue,
    hash_file,
)

MiB = 1024 * 1024


def file_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating content (so a misplaced AutoV1 window shows)."""
    block = hashlib.sha256(str(seed).encode()).digest()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block + counter.to_bytes(8, "little")).digest() * 64
        counter += 1
    return bytes(out[:size])


def expected(data: bytes) -> FileHashes:
    digest = hashlib.sha256(data).hexdigest()
    legacy = hashlib.sha256(data[AUTOV1_OFFSET : AUTOV1_OFFSET + AUTOV1_LENGTH]).hexdigest()
    return FileHashes(sha256=digest, autov2=digest[:10], autov1=legacy[:8])


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def sparse(path: Path, size: int) -> str:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return str(path)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)


# --- hash_file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, AUTOV1_OFFSET, AUTOV1_OFFSET + 1, AUTOV1_OFFSET + 100, AUTOV1_OFFSET + AUTOV1_LENGTH, 3 * MiB + 17],
)
@pytest.mark.parametrize("chunk_size", [8 * MiB, 4096, 7777, AUTOV1_OFFSET + 1])
def test_hash_file_matches_hashlib(tmp_path: Path, size: int, chunk_size: int) -> None:
    data = file_bytes(size)
    path = write(tmp_path / "m.safetensors", data)

    assert hash_file(path, chunk_size=chunk_size) == expected(data)


def test_autov1_of_a_file_shorter_than_one_mib_is_the_hash_of_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "small.pt", b"x" * 1000)

    assert hash_file(path).autov1 == hashlib.sha256(b"").hexdigest()[:8] == "e3b0c442"


def test_hashes_are_lowercase_hex_of_the_right_lengths(tmp_path: Path) -> None:
    result = hash_file(write(tmp_path / "m.bin", file_bytes(2 * MiB)))

    assert len(result.sha256) == 64 and result.sha256 == result.sha256.lower()
    assert result.autov2 == result.sha256[:10]
    assert len(result.autov1) == 8


def test_progress_reports_cumulative_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", file_bytes(10_000))
    seen: list[int] = []

    hash_file(path, chunk_size=4096, on_progress=seen.append)

    assert seen == [4096, 8192, 10_000]


def test_should_stop_cancels_between_chunks(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", file_bytes(64 * 1024))
    seen: list[int] = []

    with pytest.raises(HashCancelled, match="m.bin"):
        hash_file(path, chunk_size=4096, on_progress=seen.append, should_stop=lambda: len(seen) >= 3)

    assert seen == [4096, 8192, 12288]


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "missing.safetensors")


def test_directory_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        hash_file(tmp_path)


def test_invalid_chunk_size_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        hash_file(write(tmp_path / "m.bin", b"x"), chunk_size=0)


def test_rate_limit_slows_hashing_down(tmp_path: Path) -> None:
    path = sparse(tmp_path / "m.bin", 4 * MiB)

    started = time.monotonic()
    hash_file(path, chunk_size=MiB, max_bytes_per_second=20 * MiB)

    assert time.monotonic() - started >= 0.15  # 4 MiB at 20 MiB/s is 0.2 s


def test_cleared_unpaused_event_holds_hashing_until_set(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", file_bytes(20_000))
    unpaused = threading.Event()
    seen: list[int] = []
    result: list[FileHashes] = []
    worker = threading.Thread(
        target=lambda: result.append(hash_file(path, chunk_size=4096, on_progress=seen.append, unpaused=unpaused))
    )
    worker.start()
    try:
        assert not unpaused.wait(0.1)  # paused: nothing read yet
        assert seen == []
    finally:
        unpaused.set()
        worker.join(5)

    assert result == [expected(file_bytes(20_000))]


def test_stop_while_paused_cancels(tmp_path: Path) -> None:
    path = write(tmp_path / "m.bin", b"x" * 100)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            hash_file(path, should_stop=stop.is_set, unpaused=threading.Event())
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    stop.set()
    worker.join(5)

    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], HashCancelled)


# --- HashQueue -------------------------------------------------------------------------


class Recorder:
    """on_done that records every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, FileHashes | None, BaseException | None]] = []

    async def __call__(self, key: str, hashes: FileHashes | None, error: BaseException | None) -> None:
        self.calls.append((key, hashes, error))

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.calls]


@pytest.fixture
async def queues() -> AsyncIterator[list[HashQueue]]:
    """Queues a test creates; every one is stopped at teardown."""
    made: list[HashQueue] = []
    yield made
    for queue in made:
        queue.set_paused(False)
        await queue.stop()


def new_queue(queues: list[HashQueue], recorder: Recorder, **kwargs: object) -> HashQueue:
    queue = HashQueue(on_done=recorder, **kwargs)  # type: ignore[arg-type]
    queues.append(queue)
    return queue


async def test_queue_hashes_files_and_reports_each(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    files = {f"k{i}": file_bytes(AUTOV1_OFFSET + 5000 * i, seed=i) for i in range(3)}
    await queue.start()

    for key, data in files.items():
        queue.submit(key, write(tmp_path / f"{key}.safetensors", data))
    await queue.wait_idle(timeout=10)

    assert recorder.calls == [(key, expected(data), None) for key, data in files.items()]
    assert queue.snapshot() == {
        "queued": 0, "current": None, "current_bytes": 0, "current_total": 0, "done": 3, "failed": 0, "paused": False,
    }
    assert queue.pending_count() == 0


async def test_queue_reports_a_missing_file_as_failed(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    await queue.start()

    queue.submit("gone", str(tmp_path / "gone.safetensors"))
    await queue.wait_idle(timeout=5)

    [(key, hashes, error)] = recorder.calls
    assert (key, hashes) == ("gone", None) and isinstance(error, FileNotFoundError)
    assert queue.snapshot()["failed"] == 1


async def test_submit_is_idempotent_while_queued(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    path = write(tmp_path / "a.bin", b"a")

    for _ in range(3):
        queue.submit("a", path)
    assert queue.pending_count() == 1 and queue.is_queued("a")
    await queue.start()
    await queue.wait_idle(timeout=5)

    assert recorder.keys == ["a"]
    assert not queue.is_queued("a")


async def test_submit_is_idempotent_while_running(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    path = write(tmp_path / "a.bin", b"a")
    queue.set_paused(True)
    await queue.start()
    queue.submit("a", path)
    await eventually(lambda: queue.snapshot()["current"] == path)

    queue.submit("a", path, priority=0)

    assert queue.pending_count() == 1 and queue.snapshot()["queued"] == 0
    queue.set_paused(False)
    await queue.wait_idle(timeout=5)
    assert recorder.keys == ["a"]


async def test_resubmitting_a_queued_key_takes_the_newest_path(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    queue.submit("k", write(tmp_path / "old.bin", b"old"))
    queue.submit("k", write(tmp_path / "new.bin", b"new"))

    await queue.start()
    await queue.wait_idle(timeout=5)

    assert recorder.calls == [("k", expected(b"new"), None)]


async def test_lower_priority_value_goes_first_then_fifo(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    for key, priority in [("a", 10), ("b", 10), ("c", 0), ("d", 5), ("e", 10)]:
        queue.submit(key, write(tmp_path / f"{key}.bin", key.encode()), priority=priority)
    queue.submit("e", str(tmp_path / "e.bin"), priority=1)  # a user asked for it: bumped
    queue.submit("c", str(tmp_path / "c.bin"), priority=50)  # a later, lazier submit does not demote

    await queue.start()
    await queue.wait_idle(timeout=5)

    assert recorder.keys == ["c", "e", "d", "a", "b"]


async def test_files_submitted_while_running_are_picked_up(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    await queue.start()

    queue.submit("a", write(tmp_path / "a.bin", b"a"))
    await queue.wait_idle(timeout=5)
    queue.submit("b", write(tmp_path / "b.bin", b"b"))
    await queue.wait_idle(timeout=5)

    assert recorder.keys == ["a", "b"]


async def test_wait_idle_times_out_while_paused(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    queue.set_paused(True)
    await queue.start()
    queue.submit("a", write(tmp_path / "a.bin", b"a"))

    with pytest.raises(asyncio.TimeoutError):
        await queue.wait_idle(timeout=0.05)

    assert recorder.calls == [] and queue.snapshot()["paused"] is True
    queue.set_paused(False)
    await queue.wait_idle(timeout=5)
    assert recorder.keys == ["a"]


async def test_wait_idle_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="never started"):
        await HashQueue(on_done=Recorder()).wait_idle(timeout=0.01)


async def test_snapshot_shows_the_current_file(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    path = write(tmp_path / "a.bin", file_bytes(5000))
    queue.submit("b", write(tmp_path / "b.bin", b"b"))
    queue.set_paused(True)
    queue.submit("a", path, priority=0)
    await queue.start()

    await eventually(lambda: queue.snapshot()["current"] == path)

    assert queue.snapshot() == {
        "queued": 1, "current": path, "current_bytes": 0, "current_total": 5000, "done": 0, "failed": 0, "paused": True,
    }
    assert queue.pending_count() == 2 and queue.is_queued("a") and queue.is_queued("b")


async def test_stop_cancels_the_current_hash_quickly_and_keeps_it_queued(
    tmp_path: Path, queues: list[HashQueue]
) -> None:
    recorder = Recorder()
    # 64 MiB at 8 MiB/s would take 8 s: stop must not wait for it.
    queue = new_queue(queues, recorder, max_bytes_per_second=8 * MiB, chunk_size=MiB)
    path = sparse(tmp_path / "big.safetensors", 64 * MiB)
    await queue.start()
    queue.submit("big", path)
    await eventually(lambda: queue.snapshot()["current_bytes"] > 0)

    started = time.monotonic()
    await queue.stop()

    assert time.monotonic() - started < 1.0
    assert recorder.calls == []
    assert queue.is_queued("big") and queue.snapshot()["current"] is None
    assert not [t for t in threading.enumerate() if t.name.startswith("lm-hash")]


async def test_restart_after_stop_hashes_the_interrupted_file(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    data = file_bytes(3000)
    path = write(tmp_path / "a.bin", data)
    queue.set_paused(True)
    await queue.start()
    queue.submit("a", path)
    await eventually(lambda: queue.snapshot()["current"] == path)
    await queue.stop()

    queue.set_paused(False)
    await queue.start()
    await queue.wait_idle(timeout=5)

    assert recorder.calls == [("a", expected(data), None)]


async def test_stop_lets_a_running_on_done_finish(tmp_path: Path, queues: list[HashQueue]) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()
    finished: list[str] = []

    async def on_done(key: str, hashes: FileHashes | None, error: BaseException | None) -> None:
        entered.set()
        await release.wait()
        finished.append(key)

    queue = HashQueue(on_done=on_done)
    queues.append(queue)
    await queue.start()
    queue.submit("a", write(tmp_path / "a.bin", b"a"))
    await asyncio.wait_for(entered.wait(), 5)

    stopping = asyncio.create_task(queue.stop())
    await asyncio.sleep(0)  # let stop() begin waiting for the worker
    release.set()
    await asyncio.wait_for(stopping, 5)

    assert finished == ["a"] and not queue.is_queued("a")


async def test_stop_cancels_an_on_done_that_outlives_the_grace_period(
    tmp_path: Path, queues: list[HashQueue]
) -> None:
    entered = asyncio.Event()
    cancelled: list[str] = []

    async def on_done(key: str, hashes: FileHashes | None, error: BaseException | None) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise

    queue = HashQueue(on_done=on_done)
    queues.append(queue)
    await queue.start()
    queue.submit("a", write(tmp_path / "a.bin", b"a"))
    await asyncio.wait_for(entered.wait(), 5)

    await asyncio.wait_for(queue.stop(grace=0.05), 5)

    assert cancelled == ["a"]


async def test_on_done_errors_are_logged_and_not_fatal(
    tmp_path: Path, queues: list[HashQueue], caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def on_done(key: str, hashes: FileHashes | None, error: BaseException | None) -> None:
        calls.append(key)
        if key == "a":
            raise RuntimeError("index is broken")

    queue = HashQueue(on_done=on_done)
    queues.append(queue)
    await queue.start()
    queue.submit("a", write(tmp_path / "a.bin", b"a"))
    queue.submit("b", write(tmp_path / "b.bin", b"b"))

    with caplog.at_level(logging.ERROR):
        await queue.wait_idle(timeout=5)

    assert calls == ["a", "b"]
    assert "on_done failed" in caplog.text and "index is broken" in caplog.text


async def test_on_done_may_submit_more_work(tmp_path: Path, queues: list[HashQueue]) -> None:
    keys: list[str] = []
    queue: HashQueue

    async def on_done(key: str, hashes: FileHashes | None, error: BaseException | None) -> None:
        keys.append(key)
        if key == "a":
            queue.submit("b", write(tmp_path / "b.bin", b"b"))

    queue = HashQueue(on_done=on_done)
    queues.append(queue)
    await queue.start()
    queue.submit("a", write(tmp_path / "a.bin", b"a"))
    await queue.wait_idle(timeout=5)

    assert keys == ["a", "b"]


async def test_event_loop_keeps_ticking_while_a_large_file_hashes(tmp_path: Path, queues: list[HashQueue]) -> None:
    recorder = Recorder()
    queue = new_queue(queues, recorder)
    path = sparse(tmp_path / "large.safetensors", 256 * MiB)
    await queue.start()
    queue.submit("large", path)

    gaps: list[float] = []
    last = time.monotonic()
    deadline = last + 30
    while not recorder.calls and last < deadline:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now

    zeros = hashlib.sha256()
    for _ in range(256):
        zeros.update(bytes(MiB))
    digest = zeros.hexdigest()
    autov1 = expected(bytes(2 * MiB)).autov1
    assert recorder.calls == [("large", FileHashes(sha256=digest, autov2=digest[:10], autov1=autov1), None)]
    assert len(gaps) > 3 and max(gaps) < 1.0
