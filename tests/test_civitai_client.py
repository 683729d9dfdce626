"""CivitaiClient against the local CivitAI test server over real HTTP: lookups, limits, faults."""
from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from lm_plugin.py.errors import (
    AuthenticationRequired,
    EarlyAccessRequired,
    RateLimited,
    UpstreamNotFound,
    UpstreamUnavailable,
    ValidationError,
)
from lm_plugin.py.services.civitai.civitai_client import (
    HTML_INSTEAD_OF_FILE,
    CivitaiClient,
    download_url_for,
)
from lm_plugin.py.services.civitai.civitai_not_found_cache import NotFoundCache
from lm_plugin.py.services.civitai.civitai_rate_limiter import CivitaiRateLimiter

from .civitai_fixtures import civitai  # noqa: F401
from .civitai_server import CivitaiTestServer, start_civitai_server

SECRET_KEY = "sk-test-SECRET-1234567890abcdef"


class FakeTime:
    """A settable clock whose sleep records the delay and advances time instantly."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(round(delay, 3))
        self.now += delay
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


MakeCivitaiClient = Callable[..., CivitaiClient]


@pytest.fixture
async def make_civitai_client(civitai: CivitaiTestServer, fake_time: FakeTime) -> AsyncIterator[MakeCivitaiClient]:
    clients: list[CivitaiClient] = []

    def factory(
        *,
        bases: list[str] | None = None,
        key: str | None = None,
        max_retries: int = 3,
        timeout: float = 5.0,
        cache: NotFoundCache | None = None,
    ) -> CivitaiClient:
        limiter = CivitaiRateLimiter(
            min_interval=0, max_retries=max_retries, clock=fake_time.clock,
            sleep=fake_time.sleep, random_fraction=lambda: 1.0,
        )
        client = CivitaiClient(
            base_urls=lambda: bases or [civitai.api_base],
            api_key=lambda: key,
            rate_limiter=limiter,
            not_found_cache=cache if cache is not None else NotFoundCache(clock=fake_time.clock),
            timeout=aiohttp.ClientTimeout(total=timeout),
            download_timeout=aiohttp.ClientTimeout(total=timeout),
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


def closed_port_base() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/api/v1"


def unknown_sha(n: int) -> str:
    return hashlib.sha256(f"unknown-{n}".encode()).hexdigest()


# ------------------------------------------------------------------ lookups


@pytest.mark.parametrize("kind", ["SHA256", "AutoV2", "AutoV1", "AutoV3", "CRC32", "BLAKE3"])
async def test_version_found_by_each_hash_kind(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, kind: str) -> None:
    version = civitai.add_version()
    found = await make_civitai_client().get_version_by_hash(version.hashes[kind])
    assert found is not None and found["id"] == version.id
    assert found["files"][0]["hashes"]["SHA256"].lower() == version.sha256


async def test_unknown_hash_is_none_and_not_asked_again(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    client = make_civitai_client()
    assert await client.get_version_by_hash(unknown_sha(1)) is None
    assert await client.get_version_by_hash(unknown_sha(1).upper()) is None
    assert civitai.count("by-hash") == 1


async def test_not_found_entry_expires_after_its_ttl(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, fake_time: FakeTime
) -> None:
    client = make_civitai_client(cache=NotFoundCache(ttl=60, clock=fake_time.clock))
    await client.get_version_by_hash(unknown_sha(1))
    fake_time.now += 61
    await client.get_version_by_hash(unknown_sha(1))
    assert civitai.count("by-hash") == 2


async def test_malformed_hash_is_rejected_without_a_request(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    with pytest.raises(ValidationError, match="not a CivitAI file hash"):
        await make_civitai_client().get_version_by_hash("../etc/passwd")
    assert civitai.count() == 0


async def test_batch_of_250_hashes_takes_three_posts(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    known = [civitai.add_version() for _ in range(5)]
    hashes = [unknown_sha(i) for i in range(245)] + [v.sha256.upper() for v in known]
    client = make_civitai_client()
    found = await client.get_versions_by_hashes(hashes)
    assert civitai.count("by-hash-batch") == 3
    assert [len(r.body) for r in civitai.requests] == [100, 100, 50]
    assert {sha: v["id"] for sha, v in found.items()} == {v.sha256: v.id for v in known}


async def test_batch_skips_hashes_known_to_be_missing(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version()
    client = make_civitai_client()
    await client.get_versions_by_hashes([unknown_sha(1), unknown_sha(2)])
    found = await client.get_versions_by_hashes([unknown_sha(1), unknown_sha(2), version.sha256])
    assert list(found) == [version.sha256]
    assert civitai.requests[-1].body == [version.sha256]
    assert await client.get_version_by_hash(unknown_sha(2)) is None
    assert civitai.count("by-hash") == 0


async def test_batch_rejects_short_hashes(make_civitai_client: MakeCivitaiClient) -> None:
    with pytest.raises(ValidationError, match="not a SHA256 hash"):
        await make_civitai_client().get_versions_by_hashes(["abcdef0123"])


async def test_models_by_ids_in_batches_of_100(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    models = [civitai.add_model(model_id=i) for i in range(1, 151)]
    found = await make_civitai_client().get_models([m.id for m in models] + [999_999])
    assert civitai.count("models") == 2
    assert sorted(found) == [m.id for m in models]
    assert civitai.requests[0].query.startswith("ids=1%2C2%2C3") or civitai.requests[0].query.startswith("ids=1,2,3")


async def test_models_follow_next_page(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.models_page_size = 2
    models = [civitai.add_model() for _ in range(5)]
    found = await make_civitai_client().get_models([m.id for m in models])
    assert sorted(found) == sorted(m.id for m in models)
    assert civitai.count("models") == 3


async def test_unknown_model_id_is_negative_cached(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    client = make_civitai_client()
    assert await client.get_models([424242]) == {}
    assert await client.get_model(424242) is None
    assert civitai.count() == 1


async def test_version_and_model_by_id(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version()
    client = make_civitai_client()
    assert (await client.get_version(version.id))["baseModel"] == "SD 1.5"
    model = await client.get_model(version.model_id)
    assert model["creator"]["username"] == "alice"
    assert await client.get_version(987654) is None


# ------------------------------------------------------------------ errors


async def test_401_without_key_says_a_key_is_needed(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("version", status=401)
    with pytest.raises(AuthenticationRequired) as caught:
        await make_civitai_client().get_version(5)
    assert caught.value.message == "CivitAI requires an API key for model version 5: add your key in the settings"


async def test_401_with_key_says_it_is_invalid_without_the_key(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.valid_keys = {"another-key"}
    with pytest.raises(AuthenticationRequired) as caught:
        await make_civitai_client(key=SECRET_KEY).get_version(5)
    assert caught.value.to_json() == {
        "success": False,
        "error": "CivitAI rejected the API key for model version 5: the key is invalid or expired",
        "code": "authentication_required",
        "upstream_status": 401,
    }


async def test_403_early_access_carries_the_deadline(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("version", status=403, deadline="2026-12-24T00:00:00.000Z")
    with pytest.raises(EarlyAccessRequired) as caught:
        await make_civitai_client().get_version(5)
    assert caught.value.extra["deadline"] == "2026-12-24T00:00:00.000Z"
    assert "Early Access on CivitAI until 2026-12-24" in caught.value.message


async def test_410_is_upstream_not_found(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("model", status=410)
    with pytest.raises(UpstreamNotFound, match="model 7 was removed from CivitAI"):
        await make_civitai_client().get_model(7)


async def test_429_retry_after_is_honoured(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, fake_time: FakeTime
) -> None:
    version = civitai.add_version()
    civitai.fail_next("by-hash", status=429, retry_after=7)
    found = await make_civitai_client().get_version_by_hash(version.sha256)
    assert found["id"] == version.id
    assert fake_time.sleeps == [7.0]
    assert civitai.count("by-hash") == 2


async def test_429_retry_after_http_date_is_honoured() -> None:
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert CivitaiRateLimiter.parse_retry_after(when, now=1_000_000) == 30.0
    assert CivitaiRateLimiter.parse_retry_after("soon") is None


async def test_429_without_retry_after_backs_off_exponentially(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, fake_time: FakeTime
) -> None:
    version = civitai.add_version()
    civitai.fail_next("by-hash", status=429, times=3)
    found = await make_civitai_client().get_version_by_hash(version.sha256)
    assert found["id"] == version.id
    assert fake_time.sleeps == [1.0, 2.0, 4.0]


async def test_back_off_is_capped_at_30_seconds() -> None:
    limiter = CivitaiRateLimiter(random_fraction=lambda: 1.0)
    assert [limiter.backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    jittered = CivitaiRateLimiter(random_fraction=lambda: 0.25)
    assert jittered.backoff_delay(3) == 2.0


async def test_429_forever_raises_rate_limited(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("by-hash-batch", status=429, times=None)
    with pytest.raises(RateLimited) as caught:
        await make_civitai_client(max_retries=2).get_versions_by_hashes([unknown_sha(1)])
    assert caught.value.status == 503
    assert civitai.count("by-hash-batch") == 3
    assert await make_civitai_client().get_versions_by_hashes([]) == {}


async def test_500_then_success(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, fake_time: FakeTime) -> None:
    version = civitai.add_version()
    civitai.fail_next("version", status=500)
    assert (await make_civitai_client().get_version(version.id))["id"] == version.id
    assert fake_time.sleeps == [1.0]


async def test_500_forever_is_upstream_unavailable(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("version", status=500, times=None)
    with pytest.raises(UpstreamUnavailable, match=r"HTTP 500 after 2 tries"):
        await make_civitai_client(max_retries=1).get_version(5)


async def test_a_429_slows_down_every_caller_sharing_the_limiter(fake_time: FakeTime) -> None:
    limiter = CivitaiRateLimiter(min_interval=0, clock=fake_time.clock, sleep=fake_time.sleep)
    limiter.pause(5)
    await limiter.acquire()
    assert fake_time.sleeps == [5.0]


async def test_requests_are_spaced_by_the_min_interval(fake_time: FakeTime) -> None:
    limiter = CivitaiRateLimiter(min_interval=0.5, clock=fake_time.clock, sleep=fake_time.sleep)
    start = fake_time.now
    await asyncio.gather(*(limiter.acquire() for _ in range(3)))
    assert fake_time.now == start + 1.0 and len(fake_time.sleeps) == 2


async def test_hang_times_out_as_upstream_unavailable(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("by-hash", kind="hang")
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        await make_civitai_client(timeout=0.3).get_version_by_hash(unknown_sha(1))
    assert await make_civitai_client().get_version_by_hash(unknown_sha(1)) is None


async def test_malformed_json_is_upstream_unavailable(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("version", kind="malformed_json")
    with pytest.raises(UpstreamUnavailable, match="malformed JSON for model version 5"):
        await make_civitai_client().get_version(5)


async def test_html_page_with_200_is_upstream_unavailable(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    civitai.fail_next("by-hash", kind="html")
    with pytest.raises(UpstreamUnavailable, match="web page instead of data"):
        await make_civitai_client().get_version_by_hash(unknown_sha(1))
    assert civitai.count("by-hash") == 1


@pytest.mark.parametrize("status", [400, 404])
async def test_no_retry_on_other_4xx(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, status: int) -> None:
    civitai.fail_next("version", status=status)
    client = make_civitai_client()
    if status == 404:
        assert await client.get_version(5) is None
    else:
        with pytest.raises(UpstreamUnavailable, match=r"rejected the request for model version 5 \(HTTP 400\)"):
            await client.get_version(5)
    assert civitai.count("version") == 1


# ------------------------------------------------------------------ bases and key


async def test_second_base_used_when_first_is_unreachable(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version()
    client = make_civitai_client(bases=[closed_port_base(), civitai.api_base])
    assert (await client.get_version_by_hash(version.sha256))["id"] == version.id
    assert (await client.get_versions_by_hashes([version.sha256]))[version.sha256]["id"] == version.id


async def test_unreachable_only_base_is_upstream_unavailable_and_not_cached(make_civitai_client: MakeCivitaiClient) -> None:
    client = make_civitai_client(bases=[closed_port_base()])
    with pytest.raises(UpstreamUnavailable, match="could not reach CivitAI"):
        await client.get_versions_by_hashes([unknown_sha(1)])
    assert len(client.not_found_cache) == 0


async def test_404_at_first_base_asks_the_second(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, aiohttp_server: Any
) -> None:
    mirror = await start_civitai_server(aiohttp_server)
    version = mirror.add_version()
    client = make_civitai_client(bases=[civitai.api_base, mirror.api_base])
    assert (await client.get_version_by_hash(version.hashes["AutoV2"]))["id"] == version.id
    found = await client.get_versions_by_hashes([version.sha256, unknown_sha(1)])
    assert list(found) == [version.sha256]
    assert civitai.count() == 2 and mirror.count() == 2
    assert mirror.requests[-1].body == [version.sha256, unknown_sha(1)]


async def test_env_base_and_key_override_settings(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = civitai.add_version()
    monkeypatch.setenv("CIVITAI_API_BASE", f"{civitai.api_base}, {closed_port_base()}")
    monkeypatch.setenv("CIVITAI_API_KEY", SECRET_KEY)
    client = make_civitai_client(bases=["https://civitai.invalid/api/v1"])
    assert client.base_urls()[0] == civitai.api_base
    assert (await client.get_version(version.id))["id"] == version.id
    assert civitai.requests[-1].headers["Authorization"] == f"Bearer {SECRET_KEY}"


async def test_bearer_header_sent_and_key_never_in_query(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version()
    await make_civitai_client(key=SECRET_KEY).get_versions_by_hashes([version.sha256])
    [request] = civitai.requests
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert SECRET_KEY not in request.query and SECRET_KEY not in request.path


async def test_key_never_logged_nor_in_errors(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, caplog: pytest.LogCaptureFixture
) -> None:
    civitai.fail_next("version", status=401, error=f"bad key {SECRET_KEY}")
    civitai.fail_next("model", status=500, times=None)
    client = make_civitai_client(key=SECRET_KEY, max_retries=1)
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    for call in (client.get_version(1), client.get_model(1), client.open_download(1)):
        try:
            await call
        except Exception as exc:  # noqa: BLE001 - every failure is inspected below
            errors.append(exc)
    assert len(errors) == 3 and caplog.records
    for exc in errors:
        assert SECRET_KEY not in str(exc) and SECRET_KEY not in repr(exc)
        assert SECRET_KEY not in str(getattr(exc, "to_json", lambda: "")())
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(client)


# ------------------------------------------------------------------ downloads


def test_download_url_is_derived_from_the_api_base() -> None:
    assert download_url_for("https://civitai.com/api/v1", 42) == "https://civitai.com/api/download/models/42"
    assert download_url_for("http://127.0.0.1:8/api/v1/", 7) == "http://127.0.0.1:8/api/download/models/7"


async def test_open_download_follows_redirect_and_streams_the_file(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient
) -> None:
    version = civitai.add_version(tensor_bytes=20_000, requires_auth=True)
    async with await make_civitai_client(key=SECRET_KEY).open_download(version.id) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{version.file_name}"'
        assert await resp.read() == version.content
    first = civitai.requests[0]
    assert first.route == "download" and first.headers["Content-Type"] == "application/json"
    assert first.headers["Authorization"] == f"Bearer {SECRET_KEY}"


async def test_open_download_passes_range_for_resume(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version(tensor_bytes=20_000)
    async with await make_civitai_client().open_download(version.id, headers={"Range": "bytes=1000-"}) as resp:
        assert resp.status == 206
        assert await resp.read() == version.content[1000:]
    assert civitai.range_headers == ["bytes=1000-"]


async def test_open_download_keeps_the_key_away_from_another_host(
    civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient
) -> None:
    version = civitai.add_version()
    civitai.signed_host = "localhost"
    async with await make_civitai_client(key=SECRET_KEY).open_download(version.id) as resp:
        assert await resp.read() == version.content
    signed = civitai.requests[-1]
    assert signed.route == "signed" and signed.headers["Host"].startswith("localhost")
    assert "Authorization" not in signed.headers


async def test_open_download_without_key_for_login_only_file(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version(requires_auth=True)
    with pytest.raises(AuthenticationRequired, match="requires an API key for model version"):
        await make_civitai_client().open_download(version.id)


async def test_open_download_early_access(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version(early_access_deadline="2026-12-01T00:00:00.000Z")
    with pytest.raises(EarlyAccessRequired) as caught:
        await make_civitai_client(key=SECRET_KEY).open_download(version.id)
    assert caught.value.extra == {"upstream_status": 403, "deadline": "2026-12-01T00:00:00.000Z"}


async def test_open_download_archived_and_unknown(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    archived = civitai.add_version(archived=True)
    client = make_civitai_client()
    with pytest.raises(UpstreamNotFound, match="removed from CivitAI"):
        await client.open_download(archived.id)
    with pytest.raises(UpstreamNotFound, match="not available for download"):
        await client.open_download(31337)


async def test_open_download_refuses_an_html_page(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient) -> None:
    version = civitai.add_version()
    civitai.fail_next("download", kind="html")
    with pytest.raises(UpstreamUnavailable) as caught:
        await make_civitai_client().open_download(version.id)
    assert caught.value.message == HTML_INSTEAD_OF_FILE
    assert caught.value.message.startswith("CivitAI answered with a web page instead of the model file")


async def test_open_download_retries_429(civitai: CivitaiTestServer, make_civitai_client: MakeCivitaiClient, fake_time: FakeTime) -> None:
    version = civitai.add_version()
    civitai.fail_next("download", status=429, retry_after=2)
    async with await make_civitai_client().open_download(version.id) as resp:
        assert await resp.read() == version.content
    assert fake_time.sleeps == [2.0]


# ------------------------------------------------------------------ negative cache


def test_not_found_cache_round_trips_and_reports_changes(fake_time: FakeTime) -> None:
    changes: list[tuple[dict[str, float], list[str]]] = []
    cache = NotFoundCache(ttl=100, clock=fake_time.clock, on_change=lambda a, r: changes.append((a, r)))
    cache.add_many(["hash:aa", "model:1"])
    cache.discard("model:1")
    assert changes == [({"hash:aa": fake_time.now, "model:1": fake_time.now}, []), ({}, ["model:1"])]
    restored = NotFoundCache(ttl=100, clock=fake_time.clock)
    restored.load({**cache.export(), "hash:old": fake_time.now - 500})
    assert "hash:aa" in restored and "hash:old" not in restored
    assert restored.export() == {"hash:aa": fake_time.now}


async def test_default_limiter_and_cache_use_the_injected_clock(
    civitai: CivitaiTestServer, fake_time: FakeTime
) -> None:
    client = CivitaiClient(base_urls=lambda: [civitai.api_base], clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        civitai.fail_next("by-hash", status=429, retry_after=3)
        assert await client.get_version_by_hash(unknown_sha(9)) is None
        assert fake_time.sleeps == [3.0]
        assert client.not_found_cache.export() == {f"hash:{unknown_sha(9)}": fake_time.now}
    finally:
        await client.close()
