"""Sanity checks of the local CivitAI test server itself (shapes, limits, Range, faults)."""
from __future__ import annotations

import asyncio
import hashlib

import aiohttp
from safetensors.numpy import load

from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer, make_safetensors


async def test_version_by_every_hash_kind_case_insensitive(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    async with aiohttp.ClientSession() as session:
        for kind, value in version.hashes.items():
            for variant in (value.lower(), value.upper()):
                async with session.get(f"{civitai.api_base}/model-versions/by-hash/{variant}") as resp:
                    assert resp.status == 200, kind
                    assert (await resp.json())["id"] == version.id
    assert set(version.hashes) == {"AutoV1", "AutoV2", "AutoV3", "SHA256", "CRC32", "BLAKE3"}


async def test_generated_file_is_real_safetensors_with_matching_sha256(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    tensors = load(version.content)
    assert tensors and version.sha256 == hashlib.sha256(version.content).hexdigest()
    assert make_safetensors(seed=version.id) == version.content


async def test_batch_by_hash_rejects_more_than_100_and_short_hashes(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    async with aiohttp.ClientSession() as session:
        url = f"{civitai.api_base}/model-versions/by-hash"
        async with session.post(url, json=["a" * 64] * 101) as resp:
            assert resp.status == 400
        async with session.post(url, json=[version.hashes["AutoV2"]]) as resp:
            assert resp.status == 400
        async with session.post(url, json=[version.sha256.upper(), "b" * 64]) as resp:
            assert resp.status == 200
            assert [v["id"] for v in await resp.json()] == [version.id]
        async with session.post(url + "/ids", json=[version.sha256]) as resp:
            assert await resp.json() == {version.sha256: version.id}
    assert civitai.count("by-hash-batch") == 3


async def test_models_by_ids_and_model_shape(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    model = civitai.models[version.model_id]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{civitai.api_base}/models", params={"ids": f"{model.id},999999"}) as resp:
            body = await resp.json()
    [item] = body["items"]
    assert item["creator"]["username"] == "alice"
    assert item["modelVersions"][0]["id"] == version.id
    assert {"allowNoCredit", "allowCommercialUse", "allowDerivatives", "allowDifferentLicense"} <= set(item)


async def test_download_redirects_to_signed_url_with_content_disposition(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=10_000)
    async with aiohttp.ClientSession() as session:
        async with session.get(civitai.download_url(version.id), allow_redirects=False,
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 307
            location = resp.headers["Location"]
        assert "/signed/" in location
        async with session.get(location) as resp:
            assert resp.headers["Content-Disposition"] == f'attachment; filename="{version.file_name}"'
            assert resp.headers["Accept-Ranges"] == "bytes"
            assert int(resp.headers["Content-Length"]) == len(version.content)
            assert await resp.read() == version.content


async def test_range_request_returns_206_with_the_tail(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=10_000)
    total = len(version.content)
    async with aiohttp.ClientSession() as session:
        async with session.get(civitai.download_url(version.id), headers={"Range": "bytes=100-"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 100-{total - 1}/{total}"
            assert await resp.read() == version.content[100:]
        async with session.get(civitai.download_url(version.id), headers={"Range": f"bytes={total}-"}) as resp:
            assert resp.status == 416
    assert civitai.range_headers == ["bytes=100-", f"bytes={total}-"]


async def test_download_without_json_content_type_lands_on_html_login_page(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(requires_auth=True)
    async with aiohttp.ClientSession() as session:
        async with session.get(civitai.download_url(version.id)) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
        async with session.get(civitai.download_url(version.id),
                               headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"error": "Unauthorized"}


async def test_drop_fault_cuts_the_body_after_n_bytes(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=50_000)
    civitai.fail_next("signed", kind="drop", after_bytes=1000)
    received = b""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(civitai.download_url(version.id)) as resp:
                async for piece in resp.content.iter_any():
                    received += piece
        except aiohttp.ClientPayloadError:
            pass
    assert received == version.content[:1000]


async def test_fault_counts_down_then_normal_answers_resume(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    civitai.fail_next("by-hash", status=429, retry_after=1, times=2)
    url = f"{civitai.api_base}/model-versions/by-hash/{version.sha256}"
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(url) as resp:
                statuses.append((resp.status, resp.headers.get("Retry-After")))
    assert statuses == [(429, "1"), (429, "1"), (200, None)]
    assert civitai.count("by-hash") == 3


async def test_images_are_real_pictures(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(images=[2, {"nsfwLevel": 1, "ext": "png"}])
    body = civitai.version_json(version.id)
    async with aiohttp.ClientSession() as session:
        async with session.get(body["images"][0]["url"]) as resp:
            assert resp.content_type == "image/webp"
            assert (await resp.read())[:4] == b"RIFF"
        async with session.get(body["images"][1]["url"]) as resp:
            assert (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"


async def test_synthetic_mode_knows_any_sha256(aiohttp_server) -> None:
    from .civitai_server import start_civitai_server

    server = await start_civitai_server(aiohttp_server, synthetic_models=10)
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(100)]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.api_base}/model-versions/by-hash", json=hashes) as resp:
            versions = await resp.json()
    assert len(versions) == 100
    assert {v["modelId"] for v in versions} <= set(range(1, 11))


async def read_all(url: str, headers: dict[str, str] | None = None) -> bytes:
    received = b""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(url, headers=headers) as resp:
                async for piece in resp.content.iter_any():
                    received += piece
        except aiohttp.ClientPayloadError:
            pass
    return received


async def test_wrong_bytes_fault_keeps_the_length_but_not_the_hash(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=10_000)
    civitai.fail_next("signed", kind="wrong_bytes")
    body = await read_all(civitai.download_url(version.id))
    assert len(body) == len(version.content)
    assert hashlib.sha256(body).hexdigest() != version.sha256


async def test_truncated_fault_sends_half_the_advertised_body(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=10_000)
    civitai.fail_next("signed", kind="truncated")
    body = await read_all(civitai.download_url(version.id))
    assert body == version.content[: len(version.content) // 2]


async def test_slow_fault_throttles_the_stream(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version(tensor_bytes=2_000)
    civitai.fail_next("signed", kind="slow", bytes_per_second=20_000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    body = await read_all(civitai.download_url(version.id))
    assert body == version.content
    assert loop.time() - started >= len(version.content) / 20_000 * 0.8


async def test_status_faults_on_downloads(civitai: CivitaiTestServer) -> None:
    version = civitai.add_version()
    civitai.fail_next("download", status=403)
    civitai.fail_next("download", status=410)
    async with aiohttp.ClientSession() as session:
        async with session.get(civitai.download_url(version.id)) as resp:
            assert (resp.status, (await resp.json())["error"]) == (403, "Early Access")
        async with session.get(civitai.download_url(version.id)) as resp:
            assert resp.status == 410


async def test_restart_keeps_data_port_and_signed_urls(civitai: CivitaiTestServer, aiohttp_server) -> None:
    from .civitai_server import restart_civitai_server

    version = civitai.add_version(tensor_bytes=10_000)
    origin = civitai.origin
    async with aiohttp.ClientSession() as session:
        async with session.get(civitai.download_url(version.id), allow_redirects=False) as resp:
            signed = resp.headers["Location"]
    await restart_civitai_server(civitai, aiohttp_server)
    assert civitai.origin == origin
    assert await read_all(signed, {"Range": "bytes=500-"}) == version.content[500:]
