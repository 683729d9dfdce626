"""Auto-organize (issue 5) through the real app on real files: dry run equals the real run,
single-flight (409), hostile metadata sanitised into safe folder names, exclusions, companions
travelling, only emptied folders removed, progress kept until cleared."""
from __future__ import annotations

import asyncio
import os

import pytest
from lm_plugin.py.services.organize.path_template import sanitize_folder_name

from .fixtures import services_of


def sidecar(base_model: str = "SDXL 1.0", tags: list[str] | None = None, creator: str = "") -> dict:
    data: dict = {"base_model": base_model, "tags": tags if tags is not None else ["style"]}
    if creator:
        data["civitai"] = {"id": 1, "modelId": 2, "creator": {"username": creator}}
    return data


async def organize(client, prefix: str = "loras", **body):
    resp = await client.post(f"/api/lm/{prefix}/auto-organize", json=body)
    return resp.status, await resp.json()


def files_under(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------ plan and run


async def test_dry_run_plans_without_touching_files_and_the_real_run_does_the_same(make_client, library):
    library.add_lora("a", "old", sidecar=sidecar("SDXL 1.0", ["style"]), preview="png")
    library.add_lora("b", "old/deeper", sidecar=sidecar("SD 1.5", ["character", "style"]))
    library.add_lora("c", "", sidecar=sidecar("Pony", []))
    library.add_lora("in_place", "SDXL 1.0/style", sidecar=sidecar("SDXL 1.0", ["style"]))
    client = await make_client(library)
    before = files_under(library.loras)
    status, dry = await organize(client, dry_run=True)
    assert status == 200, dry
    assert files_under(library.loras) == before
    root = library.loras.as_posix()
    assert {(m["from"], m["to"]) for m in dry["moves"]} == {
        (f"{root}/old/a.safetensors", f"{root}/SDXL 1.0/style/a.safetensors"),
        (f"{root}/old/deeper/b.safetensors", f"{root}/SD 1.5/character/b.safetensors"),
        (f"{root}/c.safetensors", f"{root}/Pony/c.safetensors"),
    }
    assert [(s["file_path"], s["reason"]) for s in dry["skipped"]] == [
        (f"{root}/SDXL 1.0/style/in_place.safetensors", "already_in_place")
    ]
    assert services_of(client).organize_jobs.latest("auto_organize") is None  # a dry run leaves no progress

    status, real = await organize(client)
    assert status == 200, real
    assert real["moves"] == dry["moves"] and real["skipped"] == dry["skipped"] and real["failed"] == []
    assert files_under(library.loras) == [
        "Pony/c.metadata.json", "Pony/c.safetensors",
        "SD 1.5/character/b.metadata.json", "SD 1.5/character/b.safetensors",
        "SDXL 1.0/style/a.metadata.json", "SDXL 1.0/style/a.png", "SDXL 1.0/style/a.safetensors",
        "SDXL 1.0/style/in_place.metadata.json", "SDXL 1.0/style/in_place.safetensors",
    ]
    assert sorted(real["removed_folders"]) == [f"{root}/old", f"{root}/old/deeper"]
    listed = (await (await client.get("/api/lm/loras/list", params={"page_size": "100"})).json())["items"]
    assert sorted(i["relative_path"] for i in listed) == [
        "Pony/c.safetensors", "SD 1.5/character/b.safetensors",
        "SDXL 1.0/style/a.safetensors", "SDXL 1.0/style/in_place.safetensors",
    ]
    again_status, again = await organize(client, dry_run=True)
    assert again_status == 200 and again["moves"] == []


async def test_only_folders_the_run_emptied_are_removed(make_client, library):
    library.add_lora("a", "src/keep", sidecar=sidecar())
    (library.loras / "src" / "keep" / "notes.txt").write_text("mine")
    library.add_lora("b", "src/gone", sidecar=sidecar())
    (library.loras / "already_empty").mkdir()
    client = await make_client(library)
    status, body = await organize(client)
    assert status == 200, body
    root = library.loras.as_posix()
    assert body["removed_folders"] == [f"{root}/src/gone"]
    assert (library.loras / "src" / "keep" / "notes.txt").is_file()
    assert (library.loras / "already_empty").is_dir() and library.loras.is_dir()


async def test_companions_travel_and_a_conflict_never_overwrites(make_client, library):
    library.add_lora("twin", "one", sidecar=sidecar(), preview="webp")
    (library.loras / "one" / "twin.civitai.info").write_text("{}")
    existing = library.add_lora("clash", "SDXL 1.0/style", sidecar=sidecar())
    library.add_lora("clash", "two", sidecar=sidecar(tags=["style"]))
    client = await make_client(library)
    original = existing.read_bytes()
    status, body = await organize(client)
    assert status == 200, body
    root = library.loras.as_posix()
    assert [m["from"] for m in body["moves"]] == [f"{root}/one/twin.safetensors"]
    skipped = {s["file_path"]: s for s in body["skipped"]}
    assert skipped[f"{root}/two/clash.safetensors"]["reason"] == "conflict"
    assert "already exists" in skipped[f"{root}/two/clash.safetensors"]["detail"]
    moved = library.loras / "SDXL 1.0" / "style"
    assert {p.name for p in moved.iterdir()} >= {"twin.safetensors", "twin.webp", "twin.metadata.json", "twin.civitai.info"}
    assert existing.read_bytes() == original
    assert (library.loras / "two" / "clash.safetensors").is_file()


@pytest.mark.parametrize(
    "tag, folder",
    [("../../etc", "etc"), ("CON", "CON_"), ("a/b", "a_b"), ("..", None), ("", None), ("lpt1.txt", "lpt1_.txt"),
     ("trailing. ", "trailing"), (".hidden", "hidden"), ("x" * 300, "x" * 64)],
)
async def test_hostile_tags_become_safe_folder_names(make_client, library, tag, folder):
    library.add_lora("m", "in", sidecar=sidecar("SDXL 1.0", [tag] if tag else []))
    client = await make_client(library)
    status, body = await organize(client, dry_run=True)
    assert status == 200, body
    root = library.loras.as_posix()
    expected = f"{root}/SDXL 1.0/{folder}" if folder else f"{root}/SDXL 1.0"
    assert [m["target_dir"] for m in body["moves"]] == [expected]
    status, real = await organize(client)
    assert status == 200 and real["moves"] == body["moves"]
    assert os.path.isfile(f"{expected}/m.safetensors")
    assert os.path.realpath(expected).startswith(os.path.realpath(root) + os.sep)


def test_sanitize_folder_name_refuses_every_reserved_and_traversal_form():
    for hostile in ("..", ".", "/", "\\", "../..", "./.", " ", "...", "\x00"):
        assert sanitize_folder_name(hostile) in ("", "_"), hostile
    for reserved in ("con", "PRN", "aux", "Nul", "COM1", "lpt9", "com1.tar.gz"):
        clean = sanitize_folder_name(reserved)
        assert clean.split(".")[0].endswith("_") and sanitize_folder_name(clean) == clean
    assert sanitize_folder_name('a<b>c:d"e|f?g*h') == "a_b_c_d_e_f_g_h"
    assert sanitize_folder_name("C:\\Windows\\System32") == "C__Windows_System32"


async def test_the_author_and_model_name_placeholders(make_client, library):
    library.add_lora("m", "", sidecar={**sidecar("SDXL 1.0", [], creator="../bob"), "model_name": "My: Model"})
    client = await make_client(library)
    await services_of(client).settings.update({"auto_organize_templates": {"lora": "{author}/{model_name}"}})
    status, body = await organize(client, dry_run=True)
    assert status == 200, body
    assert [m["target_dir"] for m in body["moves"]] == [f"{library.loras.as_posix()}/bob/My_ Model"]


async def test_models_without_metadata_for_the_template_are_skipped(make_client, library):
    library.add_lora("bare", "x", sidecar={"base_model": "", "tags": []}, metadata={})
    client = await make_client(library)
    status, body = await organize(client, dry_run=True)
    assert status == 200 and body["moves"] == []
    assert [s["reason"] for s in body["skipped"]] == ["no_folder"]


async def test_exclusion_patterns_and_chosen_files(make_client, library):
    keep = library.add_lora("keep_me", "a", sidecar=sidecar())
    wip = library.add_lora("wip_thing", "a", sidecar=sidecar())
    other = library.add_lora("other", "private", sidecar=sidecar())
    moved = library.add_lora("moved", "a", sidecar=sidecar())
    client = await make_client(library)
    status, body = await organize(client, exclusion_patterns=["wip_*", "private"], dry_run=True)
    assert status == 200, body
    assert sorted(m["from"] for m in body["moves"]) == sorted([keep.as_posix(), moved.as_posix()])
    reasons = {s["file_path"]: s["reason"] for s in body["skipped"]}
    assert reasons == {wip.as_posix(): "excluded", other.as_posix(): "excluded"}
    status, body = await organize(client, file_paths=[moved.as_posix()])
    assert status == 200 and [m["from"] for m in body["moves"]] == [moved.as_posix()]
    assert keep.is_file() and not moved.exists()


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '{"file_paths": "x"}', '{"file_paths": []}',
                                  '{"dry_run": "yes"}', '{"exclusion_patterns": [1]}', '{"everything": true}'])
async def test_malformed_requests_are_400_and_move_nothing(make_client, library, body):
    library.add_lora("a", "old", sidecar=sidecar())
    client = await make_client(library)
    before = files_under(library.loras)
    resp = await client.post("/api/lm/loras/auto-organize", data=body, headers={"Content-Type": "application/json"})
    answer = await resp.json()
    assert resp.status == 400 and answer["success"] is False and answer["code"] == "invalid_input", answer
    assert files_under(library.loras) == before


async def test_paths_outside_the_library_are_refused(make_client, library, tmp_path):
    library.add_lora("a", "old", sidecar=sidecar())
    client = await make_client(library)
    status, body = await organize(client, file_paths=[str(tmp_path / "elsewhere.safetensors")])
    assert status == 403 and body["code"] == "path_outside_library"


async def test_the_get_route_organizes_and_is_guarded_against_cross_site_use(make_client, library):
    path = library.add_lora("a", "old", sidecar=sidecar())
    client = await make_client(library)
    resp = await client.get("/api/lm/loras/auto-organize", headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403 and path.is_file()
    resp = await client.get("/api/lm/loras/auto-organize", params={"dry_run": "true", "file_paths": path.as_posix()})
    body = await resp.json()
    assert resp.status == 200 and len(body["moves"]) == 1 and path.is_file()
    resp = await client.get("/api/lm/loras/auto-organize")
    assert resp.status == 200 and not path.exists()


# ------------------------------------------------------------------ single flight and progress


async def test_a_second_run_while_one_is_active_is_409(make_client, library):
    first = library.add_lora("first", "old", sidecar=sidecar())
    library.add_lora("second", "old", sidecar=sidecar())
    client = await make_client(library)
    services = services_of(client)
    # A mutation holds the first model's lock: the run waits on it, so it is reliably in flight.
    async with services.model_locks.hold(first.as_posix()):
        running = asyncio.ensure_future(organize(client))

        async def in_flight():
            snap = (await (await client.get("/api/lm/loras/auto-organize-progress")).json())
            return snap if snap.get("status") == "running" else None

        from .civitai_app import poll

        await poll(in_flight, timeout=10, what="the first run to start")
        for prefix in ("loras", "checkpoints"):
            status, body = await organize(client, prefix=prefix, dry_run=True)
            assert status == 409 and body["code"] == "already_running", body
            assert body["error"].startswith("auto-organize is already running (for lora)")
        resp = await client.post("/api/lm/loras/auto-organize-clear")
        assert resp.status == 409
    status, body = await running
    assert status == 200 and len(body["moves"]) == 2


async def test_progress_stays_readable_after_the_run_until_cleared(make_client, library):
    library.add_lora("a", "old", sidecar=sidecar())
    client = await make_client(library)
    ws = await client.ws_connect("/ws/fetch-progress")
    status, body = await organize(client)
    assert status == 200
    seen = []
    while not seen or seen[-1]["status"] != "completed":
        message = await asyncio.wait_for(ws.receive_json(), timeout=5)
        if message.get("type") == "auto_organize_progress":
            seen.append(message)
    await ws.close()
    assert [m["status"] for m in seen][0] == "queued" and seen[-1]["moved"] == 1
    for _ in range(2):  # polling does not consume it
        snap = await (await client.get("/api/lm/loras/auto-organize-progress")).json()
        assert snap["status"] == "completed" and snap["moved"] == 1 and snap["total"] == 1
        assert snap["result"]["moves"] == body["moves"]
    assert {k: v for k, v in snap.items() if k != "success"} == seen[-1]
    cleared = await (await client.post("/api/lm/loras/auto-organize-clear")).json()
    assert cleared == {"success": True, "cleared": True}
    snap = await (await client.get("/api/lm/loras/auto-organize-progress")).json()
    assert snap == {"success": True, "status": "idle", "progress": None}
