"""The SQLite cache changes format without losing anything (issue 13): a schema-3 cache is
migrated on first start (its entries still serve a warm start), a corrupt or unreadable one
is rebuilt, and the download history and CivitAI answers in ``kv`` survive every change."""
from __future__ import annotations

import json
import sqlite3

from lm_plugin.py.services.library import index_cache
from lm_plugin.py.services.library.index_cache import IndexCache
from lm_plugin.py.services.library.model_records import ModelType

from .fixtures import make_app_client, services_of, wait_hashed

# schema 3's row: 26 fields in this order, then [size, mtime_ns, inode] (JSON text)
V3_FIELDS = (
    "model_type", "file_path", "root", "folder", "file_name", "extension", "sub_type",
    "model_name", "sha256", "autov2", "autov3", "hash_status", "base_model", "preview_path",
    "preview_nsfw_level", "tags", "trigger_words", "favorite", "notes", "exclude",
    "from_civitai", "civitai", "creator", "usage_tips", "metadata_status", "sidecar_mtime_ns",
)


def v3_row(entry) -> str:
    """How schema 3 stored ``entry`` (the old writer, spelled out)."""
    values = {
        "model_type": entry.model_type.value, "file_path": entry.file_path, "root": entry.root,
        "folder": entry.folder, "file_name": entry.file_name, "extension": entry.extension,
        "sub_type": entry.sub_type, "model_name": entry.model_name, "sha256": entry.sha256,
        "autov2": entry.autov2, "autov3": entry.autov3, "hash_status": entry.hash_status.value,
        "base_model": entry.base_model, "preview_path": entry.preview_path,
        "preview_nsfw_level": entry.preview_nsfw_level, "tags": list(entry.tags),
        "trigger_words": list(entry.trigger_words), "favorite": entry.favorite, "notes": entry.notes,
        "exclude": entry.exclude, "from_civitai": entry.from_civitai, "civitai": dict(entry.civitai),
        "creator": entry.creator, "usage_tips": entry.usage_tips, "metadata_status": entry.metadata_status.value,
        "sidecar_mtime_ns": entry.sidecar_mtime_ns,
    }
    row = [values[name] for name in V3_FIELDS] + [[entry.stamp.size, entry.stamp.mtime_ns, entry.stamp.inode]]
    return json.dumps(row, separators=(",", ":"))


def write_v3_cache(path, entries, *, kv=(("bench-notes", "job-1", {"status": "completed"}),), hashes=()) -> None:
    """A cache file exactly as schema 3 left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE entries (path TEXT PRIMARY KEY, model_type TEXT NOT NULL, data TEXT NOT NULL);
        CREATE INDEX entries_type ON entries(model_type);
        CREATE TABLE hashes (inode INTEGER, size INTEGER, mtime_ns INTEGER, sha256 TEXT NOT NULL,
            autov2 TEXT NOT NULL, PRIMARY KEY (inode, size, mtime_ns));
        CREATE TABLE kv (namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key));
        INSERT INTO meta VALUES ('schema', '3');
        """
    )
    conn.executemany("INSERT INTO entries VALUES (?, ?, ?)", [(e.file_path, e.model_type.value, v3_row(e)) for e in entries])
    conn.executemany("INSERT INTO kv VALUES (?, ?, ?)", [(ns, k, json.dumps(v)) for ns, k, v in kv])
    conn.executemany("INSERT INTO hashes VALUES (?, ?, ?, ?, ?)", list(hashes))
    conn.commit()
    conn.close()


async def indexed_entries(aiohttp_client, library, state) -> dict:
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    await wait_hashed(client)
    entries = dict(services_of(client).library[ModelType.LORA].index.entries)
    await client.close()
    return entries


async def test_a_schema_3_cache_is_migrated_and_serves_a_warm_start(aiohttp_client, library, tmp_path):
    library.add_lora("kept", "style", sidecar={"tags": ["ink"], "model_name": "Kept", "civitai": {
        "id": 7, "modelId": 3, "name": "v1", "trainedWords": ["kp"], "model": {"name": "Kept", "type": "LORA"}}},
        preview="webp")
    library.add_lora("plain")
    entries = await indexed_entries(aiohttp_client, library, tmp_path / "first")
    state = tmp_path / "upgraded"
    write_v3_cache(state / "cache" / "index.sqlite3", entries.values())
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    services = services_of(client)
    await services.library.wait_started(10)
    lora = services.library[ModelType.LORA]
    assert services.cache.migrated_from == "3"
    assert lora.last_scan["reused"] == 2 and lora.last_scan["built"] == 0  # warm: nothing re-read
    assert dict(lora.index.entries) == entries
    assert await services.cache.kv_get_all("bench-notes") == {"job-1": {"status": "completed"}}
    await client.close()


async def test_migration_keeps_known_hashes(tmp_path):
    path = tmp_path / "cache" / "index.sqlite3"
    write_v3_cache(path, [], hashes=[(11, 22, 33, "a" * 64, "a" * 10)])
    cache = IndexCache(path=path)
    await cache.open()
    try:
        assert list((await cache.load_hashes()).values()) == ["a" * 64]
    finally:
        await cache.close()


async def test_an_unknown_schema_is_rebuilt_and_keeps_kv(tmp_path):
    path = tmp_path / "index.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema', '2');
        CREATE TABLE entries (path TEXT PRIMARY KEY, data TEXT);
        INSERT INTO entries VALUES ('/x.safetensors', 'not ours');
        CREATE TABLE kv (namespace TEXT, key TEXT, value TEXT, PRIMARY KEY (namespace, key));
        INSERT INTO kv VALUES ('civitai-not-found', 'abc', '1');
        """
    )
    conn.commit()
    conn.close()
    cache = IndexCache(path=path)
    await cache.open()
    try:
        assert await cache.load_entries(ModelType.LORA) == {}
        assert await cache.kv_get_all("civitai-not-found") == {"abc": 1}
    finally:
        await cache.close()


async def test_a_corrupt_cache_file_is_rebuilt(aiohttp_client, library, tmp_path):
    library.add_lora("survivor", sidecar={"tags": ["t"]})
    state = tmp_path / "state"
    (state / "cache").mkdir(parents=True)
    (state / "cache" / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    body = await (await client.get("/api/lm/loras/list")).json()
    assert [i["file_name"] for i in body["items"]] == ["survivor"]
    await client.close()
    # and the rebuilt cache serves the next start warm
    entries = await indexed_entries(aiohttp_client, library, state)
    assert [e.file_name for e in entries.values()] == ["survivor"]


async def test_an_unreadable_snapshot_means_a_scan_not_a_failure(aiohttp_client, library, tmp_path):
    library.add_lora("again", sidecar={"tags": ["t"]})
    state = tmp_path / "state"
    await indexed_entries(aiohttp_client, library, state)
    conn = sqlite3.connect(state / "cache" / "index.sqlite3")
    conn.execute("UPDATE snapshot SET data = ? WHERE chunk >= 0", (b"\x00garbage",))
    conn.commit()
    conn.close()
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    await services_of(client).library.wait_started(10)
    lora = services_of(client).library[ModelType.LORA]
    assert [e.file_name for e in lora.index.entries.values()] == ["again"]
    assert lora.last_scan["built"] == 1  # read again from disk
    await client.close()


async def test_a_snapshot_of_another_python_is_dropped(tmp_path, monkeypatch):
    path = tmp_path / "index.sqlite3"
    cache = IndexCache(path=path)
    await cache.open()
    await cache.kv_put("downloads", "k", {"v": 1})
    await cache.close()
    monkeypatch.setattr(index_cache, "_MARSHAL_TAG", "0:2.7")
    again = IndexCache(path=path)
    await again.open()
    try:
        assert await again.load_entries(ModelType.LORA) == {}
        assert await again.kv_get_all("downloads") == {"k": {"v": 1}}
    finally:
        await again.close()


def rewrite_as_v4(path) -> None:
    """Turn a cache of ours back into schema 4: the same tables, each snapshot chunk a
    marshalled list of ``entry_to_row`` rows (the orders dropped), journal rows unchanged."""
    import marshal

    conn = sqlite3.connect(path)
    chunks = list(conn.execute("SELECT model_type, chunk, data FROM snapshot WHERE chunk >= 0"))
    conn.execute("DELETE FROM snapshot")
    for model_type, chunk, data in chunks:
        rows = [index_cache.entry_to_row(e) for e in index_cache.decode_chunk(ModelType(model_type), data)]
        conn.execute("INSERT INTO snapshot VALUES (?, ?, ?)", (model_type, chunk, marshal.dumps(rows)))
    conn.execute("UPDATE meta SET value='4' WHERE key='schema'")
    conn.commit()
    conn.close()


async def test_a_schema_4_cache_is_migrated_and_serves_a_warm_start(aiohttp_client, library, tmp_path):
    library.add_lora("kept", "style", sidecar={"tags": ["ink", "Line"], "model_name": "Kept", "favorite": True,
                                               "notes": "n", "civitai": {"id": 7, "modelId": 3, "name": "v1",
                                               "trainedWords": ["kp"], "model": {"name": "Kept", "type": "LORA"}}},
                     preview="webp")
    library.add_lora("plain")
    state = tmp_path / "state"
    entries = await indexed_entries(aiohttp_client, library, state)
    rewrite_as_v4(state / "cache" / "index.sqlite3")
    client = await make_app_client(aiohttp_client, library, state_dir=state)
    services = services_of(client)
    await services.library.wait_started(10)
    lora = services.library[ModelType.LORA]
    assert services.cache.migrated_from == "4"
    assert lora.last_scan["reused"] == 2 and lora.last_scan["built"] == 0  # warm: nothing re-read
    assert dict(lora.index.entries) == entries
    await client.close()


def test_a_snapshot_chunk_round_trips_every_field():
    from lm_plugin.py.services.library.model_records import (
        CivitaiSummary,
        FileStamp,
        HashStatus,
        MetadataStatus,
        ModelEntry,
    )

    entries = [
        ModelEntry(ModelType.CHECKPOINT, f"/r/a/m{n}.safetensors", "/r", "a" if n % 2 else "", ".safetensors",
                   FileStamp(n, -5 + n, 2**40 + n), "checkpoint", f"M{n}", "ab" * 32 if n else "", "cd" * 6,
                   HashStatus.DONE if n else HashStatus.FAILED, "SDXL", ".webp" if n else "", n, ("x", "y")[: n % 3],
                   ("w",), bool(n % 2), f"note {n}", n == 2, True,
                   CivitaiSummary.of_values((1, 2, "v", ("t",), f"M{n}", "LORA")) if n else CivitaiSummary(),
                   "me", "tips", MetadataStatus.CORRUPT_HEADER if n else MetadataStatus.OK, 10**18 + n)
        for n in range(4)
    ]
    back = index_cache.decode_chunk(ModelType.CHECKPOINT, index_cache.encode_chunk(entries))
    assert back == entries
    assert all(type(e) is ModelEntry and type(e.stamp) is FileStamp for e in back)
    assert back[1].stamp.inode == 2**40 + 1 and back[0].stamp.mtime_ns == -5
    assert back[1].tags == ("x",) and back[2].favorite is False and back[2].exclude is True
