"""The persistent index: a warm start serves the cache and reconciles with the disk, and
changes made while the server runs appear without a manual refresh."""
from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from .fixtures import make_app_client, services_of, wait_hashed


async def listing(client) -> dict[str, dict]:
    body = await (await client.get("/api/lm/loras/list", params={"page_size": "100"})).json()
    return {i["file_name"]: i for i in body["items"]}


async def eventually(check, timeout: float = 10.0):
    """Poll ``check`` (async, returns truthy when satisfied) until it passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("rebuild_threshold", [1000, 0], ids=["incremental", "rebuilt-off-loop"])
async def test_warm_start_serves_cache_then_reconciles_changes_made_while_down(
    aiohttp_client, library, tmp_path, monkeypatch, rebuild_threshold
):
    from lm_plugin.py.services.library import type_library

    monkeypatch.setattr(type_library, "BULK_REBUILD_THRESHOLD", rebuild_threshold)
    state = tmp_path / "state"
    keep = library.add_lora("keep", sidecar={"tags": ["old"]})
    change = library.add_lora("change")
    gone = library.add_lora("gone")
    library.add_lora("steady")
    first = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(first)
    before = await listing(first)
    assert set(before) == {"keep", "change", "gone", "steady"}
    await first.close()

    # while the server is down
    gone.unlink()
    library.add_lora("added", "new_folder")
    (library.loras / "keep.metadata.json").write_text(json.dumps({"tags": ["new"]}))
    os.utime(library.loras / "keep.metadata.json", ns=(3_000_000_000, 3_000_000_000))
    with open(change, "ab") as fh:
        fh.write(b"\x00" * 16)

    second = await make_app_client(aiohttp_client, library, state_dir=state)
    after = await listing(second)
    assert set(after) == {"keep", "change", "added", "steady"}
    assert after["keep"]["tags"] == ["new"]
    assert after["change"]["size"] == before["change"]["size"] + 16
    scan = services_of(second).library[next(iter(services_of(second).library))].last_scan
    assert (scan["reused"], scan["built"], scan["removed"]) == (1, 3, 1)
    # the hash of an unchanged file is not computed again; the changed one is re-hashed
    await wait_hashed(second)
    after = await listing(second)
    assert after["keep"]["sha256"] == before["keep"]["sha256"]
    assert after["change"]["sha256"] and after["change"]["sha256"] != before["change"]["sha256"]
    assert keep.exists()


async def test_hashes_are_never_computed_twice_for_an_unchanged_file(aiohttp_client, library, tmp_path):
    state = tmp_path / "state"
    library.add_lora("h1")
    library.add_lora("h2")
    first = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(first)
    done_first = services_of(first).hash_queue.snapshot()["done"]
    assert done_first == 2
    await first.close()
    second = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(second)
    assert services_of(second).hash_queue.snapshot()["done"] == 0
    assert all(i["hash_status"] == "done" for i in (await listing(second)).values())


async def test_a_renamed_file_keeps_its_hash_without_rehashing(aiohttp_client, library, tmp_path):
    state = tmp_path / "state"
    path = library.add_lora("before_rename")
    first = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(first)
    sha = (await listing(first))["before_rename"]["sha256"]
    await first.close()
    path.rename(library.loras / "after_rename.safetensors")
    second = await make_app_client(aiohttp_client, library, state_dir=state)
    items = await listing(second)
    assert items["after_rename"]["sha256"] == sha and items["after_rename"]["hash_status"] == "done"


async def test_changes_while_running_appear_without_a_manual_refresh(aiohttp_client, library, tmp_path):
    library.add_lora("present")
    doomed = library.add_lora("doomed", "sub")
    client = await make_app_client(aiohttp_client, library, state_dir=tmp_path / "state", watch=True)

    library.add_lora("arrived", "sub/deeper")
    await eventually(lambda: _has(client, "arrived"))
    doomed.unlink()
    await eventually(lambda: _lacks(client, "doomed"))
    (library.loras / "present.metadata.json").write_text(json.dumps({"tags": ["live"]}))
    await eventually(lambda: _tagged(client, "present", "live"))
    # a whole folder moved in from elsewhere
    outside = tmp_path / "incoming"
    outside.mkdir()
    shutil.copy(library.loras / "present.safetensors", outside / "moved_in.safetensors")
    shutil.move(str(outside), str(library.loras / "incoming"))
    await eventually(lambda: _has(client, "moved_in"))


async def _has(client, name):
    return name in await listing(client)


async def _lacks(client, name):
    return name not in await listing(client)


async def _tagged(client, name, tag):
    items = await listing(client)
    return name in items and tag in items[name]["tags"]


async def test_a_file_name_that_is_not_utf8_is_listed_and_cached(aiohttp_client, library, tmp_path):
    source = library.add_lora("plain")
    odd = os.fsencode(str(library.loras)) + b"/bad\x80name.safetensors"
    os.rename(os.fsencode(str(source)), odd)
    first = await make_app_client(aiohttp_client, library, state_dir=tmp_path / "state")
    await wait_hashed(first)
    names = set(await listing(first))
    assert names == {os.fsdecode(b"bad\x80name")}
    await first.close()
    second = await make_app_client(aiohttp_client, library, state_dir=tmp_path / "state")
    items = await listing(second)
    assert set(items) == names and next(iter(items.values()))["hash_status"] == "done"
    assert services_of(second).library[next(iter(services_of(second).library))].last_scan["reused"] == 1
