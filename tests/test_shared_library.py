"""A library shared by several processes and hosts (issue 9, item 10).

Cross-process model locks (a second process holds a model; two tasks, two models), two
real standalone servers editing one library at the same moment, the watcher window at
start-up, and the polling fallback for roots on network file systems.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lm_plugin.py.errors import ConflictError
from lm_plugin.py.services.library import library_watcher, network_mounts
from lm_plugin.py.services.library.library_watcher import LibraryWatcher, changed_folders, stamp_folders
from lm_plugin.py.services.library.model_scanner import ModelScanner
from lm_plugin.py.services.library.network_mounts import network_filesystem, network_fs_of, parse_proc_mounts
from lm_plugin.py.services.library.type_library import TypeLibrary
from lm_plugin.py.services.shared.cross_process_locks import LOCK_FILE_NAME, CrossProcessLocks, LockSlot, slot_for
from lm_plugin.py.services.shared.model_locks import ModelLocks

from .comfyui.harness import StandaloneServer, get_json, wait_until
from .fixtures import LibraryBuilder, services_of

PLUGIN_DIR = Path(__file__).resolve().parents[1]
HOLDER = Path(__file__).resolve().parent / "processes" / "lock_holder.py"


async def eventually(check, timeout: float = 15.0, interval: float = 0.05):
    """Poll ``check`` (plain or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# --- cross-process locks -------------------------------------------------------------------------


class Holder:
    """``tests/processes/lock_holder.py`` holding the locks of some models in another process."""

    def __init__(self, *paths: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(HOLDER), str(PLUGIN_DIR), *map(str, paths)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    async def held(self) -> None:
        line = await asyncio.to_thread(self.process.stdout.readline)
        assert line == "held\n", (line, self.process.stderr.read() if self.process.poll() is not None else "")

    async def release(self) -> None:
        self.process.stdin.write("release\n")
        self.process.stdin.flush()
        assert await asyncio.to_thread(self.process.stdout.readline) == "released\n"
        await asyncio.to_thread(self.process.wait, 10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(*paths: Path) -> Holder:
        holder = Holder(*paths)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.kill()


async def test_a_model_locked_by_another_process_is_taken_here_only_after_its_release(library, holders):
    path = library.add_lora("shared", "style")
    holder = holders(path)
    await holder.held()

    busy = await asyncio.to_thread(CrossProcessLocks.of_process().try_acquire, [str(path)])
    assert isinstance(busy, LockSlot) and busy.label == "shared.safetensors"
    with pytest.raises(ConflictError) as caught:
        async with ModelLocks(wait_seconds=0.2).hold(str(path)):
            pytest.fail("took a model another process holds")
    assert caught.value.status == 409 and caught.value.to_json() == {
        "success": False, "code": "conflict",
        "error": "'shared.safetensors' (in 'style') is being changed by another process; try again in a moment",
    }

    entered = asyncio.Event()

    async def edit() -> None:
        async with ModelLocks().hold(str(path)):
            entered.set()

    waiting = asyncio.create_task(edit())
    assert not entered.is_set()
    await holder.release()
    await asyncio.wait_for(waiting, 10)
    assert entered.is_set()


@pytest.mark.parametrize("instances", [1, 2], ids=["one-ModelLocks", "two-ModelLocks"])
async def test_two_tasks_of_one_process_exclude_each_other_on_one_model(library, instances):
    path = str(library.add_lora("counted"))
    counter = library.loras / "counter.txt"
    counter.write_text("0")
    locks = [ModelLocks() for _ in range(instances)]
    inside = 0
    most_inside = 0

    async def bump(locks_of_task: ModelLocks, times: int) -> None:
        nonlocal inside, most_inside
        for _ in range(times):
            async with locks_of_task.hold(path):
                inside += 1
                most_inside = max(most_inside, inside)
                value = int(await asyncio.to_thread(counter.read_text))
                await asyncio.sleep(0)  # let the other task run between the read and the write
                await asyncio.to_thread(counter.write_text, str(value + 1))
                inside -= 1

    await asyncio.gather(bump(locks[0], 15), bump(locks[-1], 15))
    assert most_inside == 1 and counter.read_text() == "30"


async def test_two_models_do_not_block_each_other(library, holders):
    held = library.add_lora("held_elsewhere", "style")
    neighbour = library.add_lora("neighbour", "style")  # the same folder: the same lock file
    elsewhere = library.add_lora("elsewhere", "other")
    holder = holders(held)
    await holder.held()

    async with ModelLocks(wait_seconds=5).hold(str(neighbour), str(elsewhere)):
        assert holder.process.poll() is None
        assert isinstance(await asyncio.to_thread(CrossProcessLocks.of_process().try_acquire, [str(held)]), LockSlot)
    await holder.release()


async def test_a_lock_file_exists_only_while_a_model_of_its_folder_is_held(library):
    path = library.add_lora("alpha", "style")
    lock_file = library.loras / "style" / LOCK_FILE_NAME
    async with ModelLocks().hold(str(path)):
        assert lock_file.is_file()
    assert not lock_file.exists()
    assert sorted(os.listdir(library.loras / "style")) == ["alpha.safetensors"]


async def test_a_folder_that_does_not_exist_gets_no_lock_file(tmp_path):
    missing = tmp_path / "not_yet"
    async with ModelLocks(wait_seconds=1).hold(str(missing / "model.safetensors")):
        assert not missing.exists()
    assert not missing.exists()


def test_the_lock_byte_is_the_stem_s_whatever_the_path_or_case(tmp_path):
    real = tmp_path / "models"
    real.mkdir()
    (tmp_path / "mounted_elsewhere").symlink_to(real)
    one = slot_for(f"{real}/Style.safetensors")
    same = slot_for(f"{tmp_path}/mounted_elsewhere/style.ckpt")
    assert (one.lock_file, one.offset) == (same.lock_file, same.offset) == (str(real / LOCK_FILE_NAME), one.offset)
    assert slot_for(f"{real}/other.safetensors").offset != one.offset


# --- two real servers over one library ----------------------------------------------------------


class Server(StandaloneServer):
    """``python standalone.py`` on the library with its own settings and cache, watching."""

    def __init__(self, library: LibraryBuilder, state: Path) -> None:
        super().__init__(library.base, state, watch=True)

    def wait_ready(self) -> None:  # type: ignore[override]
        def ready() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()
            return all(get_json(f"{self.url}/api/lm/health-check")["ready"].values())

        wait_until(ready, timeout=60, what="standalone server")

    def add_tags(self, path: str, tags: list[str]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.url}/api/lm/loras/add-tags", method="POST",
            data=json.dumps({"file_path": path, "tags": tags}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def listed_tags(self, path: str) -> set[str]:
        items = get_json(f"{self.url}/api/lm/loras/list?page_size=100")["items"]
        return next(set(i["tags"]) for i in items if i["file_path"] == path)


def test_two_servers_editing_one_model_at_the_same_moment_lose_no_tag(library, tmp_path):
    model = library.add_lora("shared", sidecar={"tags": ["base"], "custom_key": {"kept": True}})
    path = model.as_posix()
    servers = [Server(library, tmp_path / "host-a"), Server(library, tmp_path / "host-b")]
    try:
        for server in servers:
            server.wait_ready()
        a, b = servers
        together = threading.Barrier(2)

        def add(server: Server, tag: str) -> tuple[int, Any]:
            together.wait(timeout=30)  # both requests leave at the same moment
            return server.add_tags(path, [tag])

        expected = {"base"}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for round_ in range(40):
                tags = (f"a{round_:02d}", f"b{round_:02d}")
                results = [f.result() for f in (pool.submit(add, a, tags[0]), pool.submit(add, b, tags[1]))]
                assert [status for status, _ in results] == [200, 200], results
                expected.update(tags)

        sidecar = json.loads((library.loras / "shared.metadata.json").read_text())
        assert set(sidecar["tags"]) == expected and len(sidecar["tags"]) == 81
        assert sidecar["custom_key"] == {"kept": True}
        for server in servers:  # each also saw the other's last edit through its watcher
            wait_until(lambda: server.listed_tags(path) == expected, timeout=15, what="both servers' listings")
        assert not (library.loras / LOCK_FILE_NAME).exists()  # the last one out removed it

        for writer, reader, tag in ((a, b, "only-from-a"), (b, a, "only-from-b")):
            assert writer.add_tags(path, [tag])[0] == 200
            wait_until(lambda: tag in reader.listed_tags(path), timeout=15, what=f"{tag} on the other server")
    finally:
        for server in servers:
            server.stop()


# --- the watcher window at start-up -----------------------------------------------------------------


async def test_a_change_made_while_the_first_scan_runs_is_listed_without_a_manual_scan(make_client, library, monkeypatch):
    library.add_lora("present")
    walk = ModelScanner.iter_batches
    arrived, noticed = threading.Event(), threading.Event()
    on_disk_change = TypeLibrary.on_disk_change

    async def noting(self, *args, **kwargs):
        noticed.set()
        return await on_disk_change(self, *args, **kwargs)

    def walk_then_change(self, roots, *args, **kwargs):
        yield from walk(self, roots, *args, **kwargs)
        if not arrived.is_set() and any(r.path == library.loras.as_posix() for r in roots):
            arrived.set()  # the walk has listed the root already: only the watcher can see this
            library.add_lora("arrived_during_scan")
            noticed.wait(timeout=10)  # the scan is still running when the change is seen

    monkeypatch.setattr(ModelScanner, "iter_batches", walk_then_change)
    monkeypatch.setattr(TypeLibrary, "on_disk_change", noting)
    client = await make_client(library, watch=True)

    async def listed() -> bool:
        body = await (await client.get("/api/lm/loras/list", params={"page_size": "100"})).json()
        return "arrived_during_scan" in {i["file_name"] for i in body["items"]}

    assert arrived.is_set() and noticed.is_set()
    await eventually(listed)


# --- network file systems ---------------------------------------------------------------------------

MOUNTS = r"""sysfs /sys sysfs rw,nosuid 0 0
/dev/vda1 / ext4 rw,relatime 0 0
nas:/export/models {remote} nfs4 rw,vers=4.2,addr=10.0.0.2 0 0
/dev/sdb1 {remote}/local-cache ext4 rw 0 0
//nas/share /mnt/smb\040share cifs rw,vers=3.1.1 0 0
me@box: /mnt/box fuse.sshfs rw,nosuid 0 0
/etc/auto.misc /mnt/auto autofs rw 0 0
server:/srv /mnt/auto nfs rw 0 0
"""


def test_network_filesystems_are_found_in_the_mount_table():
    mounts = parse_proc_mounts(MOUNTS.format(remote="/srv/library"))
    assert network_fs_of("/srv/library/loras", mounts) == "nfs4"
    assert network_fs_of("/srv/library", mounts) == "nfs4"
    assert network_fs_of("/srv/library/local-cache/loras", mounts) is None  # a local disk mounted inside
    assert network_fs_of("/mnt/smb share/loras", mounts) == "cifs"
    assert network_fs_of("/mnt/box/models", mounts) == "fuse.sshfs"
    assert network_fs_of("/mnt/auto/models", mounts) == "nfs"  # the later mount on one point wins
    assert network_fs_of("/home/me/models", mounts) is None
    assert network_fs_of("/srv/library-other", mounts) is None


async def test_a_root_on_a_network_filesystem_is_polled_and_the_log_says_so_once(tmp_path, caplog):
    local, remote = tmp_path / "local", tmp_path / "remote"
    (remote / "sub").mkdir(parents=True)
    local.mkdir()
    mounts = parse_proc_mounts(MOUNTS.format(remote=remote.resolve().as_posix()))
    seen: list[list[str] | None] = []

    async def on_change(folders: list[str] | None) -> None:
        seen.append(folders)

    watcher = LibraryWatcher(
        roots=[local.as_posix(), remote.as_posix()], on_change=on_change, debounce_seconds=0.05,
        min_poll_interval=0.05, network_check=lambda path: network_filesystem(path, mounts),
    )
    caplog.set_level(logging.INFO, logger=library_watcher.__name__)
    await watcher.start()
    try:
        assert watcher.mode == "watchdog+polling" and watcher.polled_roots == {remote.as_posix(): "nfs4"}
        (remote / "sub" / "model.metadata.json").write_text("{}")  # what another machine would do
        await eventually(lambda: any(f and f"{remote.as_posix()}/sub" in f for f in seen))
        (local / "model.metadata.json").write_text("{}")  # local roots still get events
        await eventually(lambda: any(f and local.as_posix() in f for f in seen))
    finally:
        await watcher.stop()
    notes = [r.getMessage() for r in caplog.records if "network filesystem" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith(
        f"{remote.as_posix()} is on a network filesystem (nfs4): no change events from other machines; polling every "
    )


def test_folder_fingerprints_change_with_content_but_not_with_hidden_files(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "a" / "m.metadata.json").write_text("{}")
    (root / "b").mkdir()
    before = stamp_folders([root.as_posix()])
    (root / "a" / LOCK_FILE_NAME).write_text("")
    (root / "a" / "x.safetensors.part").write_text("downloading")
    assert changed_folders(before, stamp_folders([root.as_posix()])) == []
    (root / "a" / ".m.tmp").write_text('{"tags": ["new"]}')
    os.replace(root / "a" / ".m.tmp", root / "a" / "m.metadata.json")  # an atomic sidecar rewrite
    (root / "b").rmdir()
    assert changed_folders(before, stamp_folders([root.as_posix()])) == [root.as_posix(), f"{root.as_posix()}/a"]


async def test_a_library_on_a_network_mount_sees_edits_from_other_hosts_by_polling(make_client, library, monkeypatch):
    library.add_lora("remote_model", "sub", sidecar={"tags": []})
    table = parse_proc_mounts(MOUNTS.format(remote=library.base.resolve().as_posix()))
    monkeypatch.setattr(network_mounts, "read_mounts", lambda: table)
    monkeypatch.setattr(library_watcher, "MIN_POLL_INTERVAL", 0.1)
    client = await make_client(library, watch=True)
    watcher = services_of(client).watcher
    assert watcher.mode == "polling" and set(watcher.polled_roots.values()) == {"nfs4"}

    sidecar = library.loras / "sub" / "remote_model.metadata.json"
    sidecar.with_name(".edit.tmp").write_text(json.dumps({"tags": ["from-another-host"]}))
    os.replace(sidecar.with_name(".edit.tmp"), sidecar)

    async def tagged() -> bool:
        body = await (await client.get("/api/lm/loras/list", params={"page_size": "100"})).json()
        return any("from-another-host" in i["tags"] for i in body["items"])

    await eventually(tagged)
