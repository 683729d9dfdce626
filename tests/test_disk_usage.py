"""The Disk view's route (issue 14): totals per type and folder, the largest models,
copies across folders and types (same SHA256), models never used, from the indexes."""
from __future__ import annotations

import shutil

from lm_plugin.py.services.shared.model_types import ModelType

from .fixtures import services_of, wait_hashed
from .test_model_folders import folders, get, post, start  # noqa: F401  (fixture)


async def test_disk_reports_totals_largest_duplicates_and_never_used(aiohttp_client, folders, tmp_path):  # noqa: F811
    big = folders.add(ModelType.VAE, "big_vae", values=4000)
    small = folders.add(ModelType.VAE, "small_vae", "sd15", values=100)
    cn = folders.add(ModelType.CONTROLNET, "canny", values=2000)
    lora = folders.add_lora("style_lora", "style", values=50)
    # one file kept twice: as a checkpoint and, copied, as a VAE in another folder
    ckpt = folders.add_checkpoint("model_with_vae")
    copy = folders.folder(ModelType.VAE) / "copies" / "model_with_vae.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(ckpt, copy)
    client = await start(aiohttp_client, folders, tmp_path / "state")
    await wait_hashed(client)
    services = services_of(client)
    used = services.library[ModelType.VAE].index.get(small.as_posix()).sha256
    await services.usage.record([used])

    body = await get(client, "/api/lm/disk", limit=3)
    assert body["success"] is True
    sizes = {p: p.stat().st_size for p in (big, small, cn, lora, ckpt, copy)}
    assert body["total"] == {"size": sum(sizes.values()), "count": 6}
    by_type = {t["model_type"]: t for t in body["types"]}
    assert by_type["vae"]["count"] == 3 and by_type["vae"]["size"] == sizes[big] + sizes[small] + sizes[copy]
    assert by_type["controlnet"]["size"] == sizes[cn]
    assert "gligen" not in by_type  # nothing there
    vae_folders = {f["folder"]: f for f in by_type["vae"]["folders"]}
    assert set(vae_folders) == {"", "sd15", "copies"} and vae_folders["sd15"]["count"] == 1
    expected = sorted(sizes, key=lambda p: (-sizes[p], p.as_posix()))[:3]
    assert [i["file_path"] for i in body["largest"]] == [p.as_posix() for p in expected]
    assert expected[:2] == [big, cn]
    assert body["largest"][0]["size"] == sizes[big] and body["largest"][0]["prefix"] == "vaes"

    # the copy across types
    assert len(body["duplicates"]) == 1
    dup = body["duplicates"][0]
    assert dup["types"] == ["checkpoint", "vae"] and dup["count"] == 2 and dup["wasted"] == sizes[ckpt]
    assert {m["file_path"] for m in dup["models"]} == {ckpt.as_posix(), copy.as_posix()}

    # never used: everything but the one recorded use
    never = body["never_used"]
    assert never["count"] == 5 and never["size"] == sum(sizes.values()) - sizes[small]
    assert small.as_posix() not in {i["file_path"] for i in never["items"]}
    assert body["usage_records"] == 1

    # per type and per folder
    vae = await get(client, "/api/lm/disk", type="vaes")
    assert vae["type"] == "vae" and vae["total"]["count"] == 3 and [t["model_type"] for t in vae["types"]] == ["vae"]
    assert len(vae["duplicates"]) == 1  # the other copy is a checkpoint: still reported
    sub = await get(client, "/api/lm/disk", type="vae", folder="sd15")
    assert sub["total"] == {"size": sizes[small], "count": 1} and sub["never_used"]["count"] == 0
    assert sub["duplicates"] == []

    # bad input is a 400, never a 500
    for params in ({"type": "nonsense"}, {"folder": "x"}, {"type": "vae", "folder": "../x"}, {"limit": "0"},
                   {"limit": "abc"}):
        bad = await get(client, "/api/lm/disk", status=400, **params)
        assert bad["success"] is False and bad["error"]

    # the view's delete goes through the recoverable delete; the report follows the index
    deleted = await post(client, "/api/lm/vaes/delete", {"file_path": copy.as_posix()})
    after = await get(client, "/api/lm/disk")
    assert after["duplicates"] == [] and after["total"]["count"] == 5
    await post(client, "/api/lm/undo-delete", {"batch_id": deleted["batch_id"]})
    await wait_hashed(client)
    again = await get(client, "/api/lm/disk")
    assert again["total"]["count"] == 6 and len(again["duplicates"]) == 1
