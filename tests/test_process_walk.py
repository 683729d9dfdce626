"""Start-up walks in child processes: a warm start's walk beside the index build, a cold
scan handed over to two children. They must find exactly what a walk in the server finds
(the same listing, the same counts), keep the library's boundaries, and fall back to the
server's own walk when a child cannot do its part."""
from __future__ import annotations

import io
import json
import logging
import os
import time

import pytest
from lm_plugin.py.services.library import process_walk
from lm_plugin.py.services.library.walk_child import WalkFailed, claims_of, read_frame, write_frame

from .fixtures import make_app_client, services_of, wait_hashed

TYPES = ("loras", "checkpoints", "embeddings")
LONG_AGO = time.time() - 3600


@pytest.fixture
def child_walks(monkeypatch):
    """Every start-up walk goes to child processes (from one model on); lists the number
    of processes each walk started (0: none could be)."""
    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)
    started: list[int] = []
    spawn = process_walk.ChildWalker.spawn

    def counting_spawn(self, processes: int = 1):
        walk = spawn(self, processes)
        started.append(walk.processes if walk is not None else 0)
        return walk

    monkeypatch.setattr(process_walk.ChildWalker, "spawn", counting_spawn)
    return started


def fill(library) -> None:
    """Forty-odd models of three types: sidecars with and without hashes, tags, previews,
    a corrupt sidecar, folders."""
    for n in range(36):
        folder = ("", "style", "style/deep", "chars")[n % 4]
        sidecar = None
        if n % 3:
            sidecar = {"tags": [f"t{n % 5}", "shared"], "base_model": "SDXL 1.0", "favorite": n % 7 == 0}
            if n % 2:
                sidecar["sha256"] = f"{n:064x}"
        library.add_lora(f"lora{n:02d}", folder, sidecar=sidecar, preview="webp" if n % 5 else None)
    (library.loras / "broken.metadata.json").parent.mkdir(parents=True, exist_ok=True)
    library.add_lora("broken")
    (library.loras / "broken.metadata.json").write_text("{not json", encoding="utf-8")
    for n in range(4):
        library.add_checkpoint(f"ckpt{n}", "sdxl" if n % 2 else "", sidecar={"tags": ["ck"]})
        library.add_embedding(f"emb{n}")


async def listings(client) -> dict[str, list[dict]]:
    out = {}
    for prefix in TYPES:
        resp = await client.get(f"/api/lm/{prefix}/list", params={"page_size": "500", "sort_by": "name"})
        assert resp.status == 200, await resp.text()
        out[prefix] = sorted((await resp.json())["items"], key=lambda item: item["file_path"])
    return out


async def settled_listing(aiohttp_client, library, state, **kwargs) -> tuple[dict, dict]:
    client = await make_app_client(aiohttp_client, library, state_dir=state, **kwargs)
    await wait_hashed(client)
    found = await listings(client)
    scans = {model_type.value: lib.last_scan for model_type, lib in services_of(client).library.items()}
    await client.close()
    return found, scans


async def test_a_cold_scan_handed_to_two_children_lists_what_the_server_walk_lists(
    aiohttp_client, library, tmp_path, child_walks, monkeypatch
):
    fill(library)
    monkeypatch.setattr(process_walk, "MIN_MODELS", 10**9)  # the truth: walked in the server
    truth, _ = await settled_listing(aiohttp_client, library, tmp_path / "here")
    assert child_walks == []

    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)
    found, scans = await settled_listing(aiohttp_client, library, tmp_path / "children")

    assert found == truth
    assert child_walks and set(child_walks) == {2}  # each type's cold scan went to two children
    assert scans["lora"]["total"] == 37


async def test_a_warm_start_walked_by_a_child_finds_every_change_made_while_down(
    aiohttp_client, library, tmp_path, child_walks, monkeypatch
):
    fill(library)
    state = tmp_path / "state"
    monkeypatch.setattr(process_walk, "MIN_MODELS", 10**9)  # the first start walks in the server
    await settled_listing(aiohttp_client, library, state)
    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)

    # while the server is down: one gone, one added, a sidecar edited, a preview added,
    # a model rewritten, and a stale leftover of a download
    (library.loras / "style" / "lora01.safetensors").unlink()
    library.add_lora("added", "new_folder", sidecar={"tags": ["fresh"]})
    sidecar = library.loras / "style" / "lora05.metadata.json"
    sidecar.write_text(json.dumps({"tags": ["edited"]}), encoding="utf-8")
    os.utime(sidecar, ns=(3_000_000_000, 3_000_000_000))
    (library.loras / "lora00.webp").write_bytes((library.loras / "lora04.webp").read_bytes())
    with open(library.loras / "chars" / "lora03.safetensors", "ab") as fh:
        fh.write(b"\x00" * 16)
    leftover = library.loras / "chars" / "old.safetensors.part"
    leftover.write_bytes(b"partial")
    os.utime(leftover, (LONG_AGO, LONG_AGO))

    found, scans = await settled_listing(aiohttp_client, library, state)
    warm_walks = list(child_walks)
    monkeypatch.setattr(process_walk, "MIN_MODELS", 10**9)
    truth, _ = await settled_listing(aiohttp_client, library, tmp_path / "fresh")

    assert warm_walks == [1, 1, 1]  # one child per type, beside its index build
    assert found == truth
    lora = scans["lora"]
    assert (lora["built"], lora["removed"], lora["reused"]) == (4, 1, 37 - 1 - 3)
    assert lora["leftovers_removed"] == 1 and not leftover.exists()


async def test_a_warm_start_child_reads_the_cached_edits_of_the_journal_too(
    aiohttp_client, library, tmp_path, child_walks, monkeypatch
):
    """The child reads the cached models from the cache file itself: the snapshot and the
    journal of edits since it, as the server loads them (an edit it missed would look like
    a changed sidecar and be read again)."""
    fill(library)
    state = tmp_path / "state"
    monkeypatch.setattr(process_walk, "MIN_MODELS", 10**9)
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(client)
    edited = str(library.loras / "style" / "lora05.safetensors")
    gone = str(library.loras / "chars" / "lora03.safetensors")
    for route, body in (("add-tags", {"file_path": edited, "tags": ["journaled"]}), ("delete", {"file_path": gone})):
        resp = await client.post(f"/api/lm/loras/{route}", json=body)
        assert resp.status == 200, await resp.text()
    await client.close()
    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)

    found, scans = await settled_listing(aiohttp_client, library, state)

    assert child_walks == [1, 1, 1]
    assert (scans["lora"]["built"], scans["lora"]["removed"], scans["lora"]["reused"]) == (0, 0, 36)
    item = next(i for i in found["loras"] if i["file_path"] == edited)
    assert "journaled" in item["tags"] and gone not in {i["file_path"] for i in found["loras"]}


async def test_a_child_that_cannot_read_the_cache_leaves_the_walk_to_the_server(
    aiohttp_client, library, tmp_path, child_walks, monkeypatch, caplog
):
    fill(library)
    state = tmp_path / "state"
    monkeypatch.setattr(process_walk, "MIN_MODELS", 10**9)
    truth, _ = await settled_listing(aiohttp_client, library, state)
    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)
    send = process_walk.ChildWalk.send
    monkeypatch.setattr(process_walk.ChildWalk, "send", lambda self, **kw: send(self, **{**kw, "cache": str(tmp_path / "no-such.sqlite3")}))

    with caplog.at_level(logging.WARNING):
        found, scans = await settled_listing(aiohttp_client, library, state)

    assert found == truth and scans["lora"]["built"] == 0
    assert "the index cache cannot be read" in caplog.text and "walking in the server" in caplog.text


async def test_a_child_walk_lists_nothing_that_leads_out_of_the_library(
    aiohttp_client, library, tmp_path, child_walks, caplog
):
    fill(library)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.safetensors").write_bytes((library.loras / "lora00.safetensors").read_bytes())
    (library.loras / "chars" / "escape.safetensors").symlink_to(outside / "secret.safetensors")
    (library.loras / "style" / "away").symlink_to(outside, target_is_directory=True)

    with caplog.at_level(logging.WARNING):
        found, _ = await settled_listing(aiohttp_client, library, tmp_path / "state")

    names = {item["file_name"] for item in found["loras"]}
    assert "escape" not in names and "secret" not in names and len(names) == 37
    assert child_walks
    # reported by the child, logged by the server, once each
    refusals = [r.getMessage() for r in caplog.records if "not listing" in r.getMessage()]
    assert len([m for m in refusals if "escape" in m]) == 1
    assert len([m for m in refusals if "away" in m]) == 1


@pytest.mark.parametrize("start", ["cold", "warm"])
async def test_a_child_that_fails_leaves_the_walk_to_the_server(aiohttp_client, library, tmp_path, monkeypatch, caplog, start):
    fill(library)
    state = tmp_path / "state"
    truth, _ = await settled_listing(aiohttp_client, library, tmp_path / "truth")
    if start == "warm":
        await settled_listing(aiohttp_client, library, state)
        library.add_lora("added_while_down")
        truth, _ = await settled_listing(aiohttp_client, library, tmp_path / "truth2")
    monkeypatch.setattr(process_walk, "MIN_MODELS", 1)
    monkeypatch.setattr(process_walk, "_CHILD_MODULE", process_walk._ALIAS + ".no_such_module")  # the child dies at import

    with caplog.at_level(logging.WARNING):
        found, scans = await settled_listing(aiohttp_client, library, state)

    assert found == truth
    assert any("walking in the server" in r.getMessage() for r in caplog.records)
    assert scans["lora"]["total"] == len(truth["loras"])


async def test_no_child_starts_for_a_small_library(aiohttp_client, library, tmp_path, monkeypatch):
    fill(library)
    started = []
    monkeypatch.setattr(process_walk.ChildWalker, "spawn", lambda self, n=1: started.append(n))
    await settled_listing(aiohttp_client, library, tmp_path / "state")
    await settled_listing(aiohttp_client, library, tmp_path / "state")
    assert started == []


def test_children_share_a_library_out_whole_and_without_overlap():
    names = [f"model {n}.safetensors" for n in range(2000)] + ["ünïcode.safetensors", "bad\udcff.safetensors"]
    for count in (2, 3):
        takers = [claims_of((i, count), frozenset()) for i in range(count)]
        for name in names:
            assert sum(bool(claims(name, "/x/" + name)) for claims in takers) == 1
        assert all(sum(claims(n, "/x/" + n) for n in names) > len(names) / count * 0.8 for claims in takers)
    skip = claims_of((0, 1), frozenset({"/x/model 1.safetensors"}))
    assert not skip("model 1.safetensors", "/x/model 1.safetensors") and skip("model 2.safetensors", "/x/model 2.safetensors")
    assert claims_of((0, 1), frozenset()) is None


def test_frames_round_trip_and_a_torn_one_is_refused():
    stream = io.BytesIO()
    write_frame(stream, ("batch", b"\x00" * 10))
    write_frame(stream, ("done", {"unseen": ["/a"]}))
    data = stream.getvalue()
    reader = io.BytesIO(data)
    assert read_frame(reader) == ("batch", b"\x00" * 10)
    assert read_frame(reader) == ("done", {"unseen": ["/a"]})
    with pytest.raises(EOFError):
        read_frame(reader)
    for cut in (2, 6, len(data) - 3):
        with pytest.raises(WalkFailed):
            torn = io.BytesIO(data[:cut])
            read_frame(torn)
            read_frame(torn)
