"""Usage history in the listing (issue 11): ``sort_by=usage`` / ``last_used``, the
``unused_days`` filter and the ``usage_count`` / ``last_used`` fields, over real files and
the real usage history (recorded as the prompt hook records it)."""
from __future__ import annotations

import time

import pytest

from .fixtures import services_of, wait_hashed

DAY = 86_400


async def listing(client, **params) -> dict:
    resp = await client.get("/api/lm/loras/list", params={"page_size": "100", **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def names(client, **params) -> list[str]:
    return [item["file_name"] for item in (await listing(client, **params))["items"]]


async def used_library(make_client, library):
    """Five LoRAs: c used 3 times (10 days ago last), a twice (today), e once (40 days ago);
    b and d never."""
    for name in ("a", "b", "c", "d", "e"):
        library.add_lora(name, values=8 + ord(name))  # distinct contents: distinct hashes
    client = await make_client(library)
    await wait_hashed(client)
    items = (await listing(client))["items"]
    sha = {item["file_name"]: item["sha256"] for item in items}
    assert all(sha.values()) and len(set(sha.values())) == 5
    usage = services_of(client).usage
    now = time.time()
    await usage.record([sha["c"]], when=now - 30 * DAY)
    await usage.record([sha["c"], sha["e"]], when=now - 40 * DAY)
    await usage.record([sha["c"]], when=now - 10 * DAY)
    await usage.record([sha["a"]], when=now - 2 * DAY)
    await usage.record([sha["a"]], when=now - 60)
    return client, sha, now


async def test_usage_sort_puts_the_most_used_first_then_names(make_client, library):
    client, _, _ = await used_library(make_client, library)
    assert await names(client, sort_by="usage") == ["c", "a", "e", "b", "d"]
    assert await names(client, sort_by="usage:desc") == ["c", "a", "e", "b", "d"]
    assert (await names(client, sort_by="usage:asc"))[:2] == ["d", "b"]
    assert (await names(client, sort_by="usage:asc"))[-1] == "c"


async def test_last_used_sort_puts_the_most_recent_first(make_client, library):
    client, _, _ = await used_library(make_client, library)
    assert await names(client, sort_by="last_used") == ["a", "c", "e", "b", "d"]


async def test_items_carry_usage_count_and_last_used_in_epoch_seconds(make_client, library):
    client, _, now = await used_library(make_client, library)
    items = {i["file_name"]: i for i in (await listing(client))["items"]}
    assert items["c"]["usage_count"] == 3 and items["c"]["last_used"] == pytest.approx(now - 10 * DAY)
    assert items["a"]["usage_count"] == 2 and items["a"]["last_used"] == pytest.approx(now - 60)
    assert items["b"]["usage_count"] == 0 and items["b"]["last_used"] is None
    # the same style as the other time field of an item
    assert isinstance(items["a"]["modified"], float) and isinstance(items["a"]["last_used"], float)


async def test_unused_days_keeps_models_not_used_lately_and_the_never_used(make_client, library):
    client, _, _ = await used_library(make_client, library)
    assert await names(client, unused_days="7") == ["b", "c", "d", "e"]
    assert await names(client, unused_days="30") == ["b", "d", "e"]
    assert await names(client, unused_days="365") == ["b", "d"]
    assert await names(client, unused_days="0") == ["a", "b", "c", "d", "e"]  # nothing is used "after now"


async def test_usage_filter_combines_with_other_filters_and_sorts(make_client, library):
    client, _, _ = await used_library(make_client, library)
    assert await names(client, unused_days="7", sort_by="usage") == ["c", "e", "b", "d"]
    assert await names(client, unused_days="7", search="e") == ["e"]
    body = await listing(client, unused_days="7", page_size="2", page="2", sort_by="last_used")
    assert body["total"] == 4 and [i["file_name"] for i in body["items"]] == ["b", "d"]


async def test_a_new_use_shows_in_the_next_listing(make_client, library):
    client, sha, _ = await used_library(make_client, library)
    assert (await names(client, sort_by="usage"))[0] == "c"  # memoised now
    usage = services_of(client).usage
    for _ in range(3):
        await usage.record([sha["d"]])
    assert await names(client, sort_by="usage") == ["c", "d", "a", "e", "b"]  # 3 uses each: by name
    assert (await names(client, sort_by="last_used"))[0] == "d"
    assert "d" not in await names(client, unused_days="1")


async def test_usage_follows_a_rename_because_it_is_keyed_by_hash(make_client, library):
    client, sha, _ = await used_library(make_client, library)
    item = next(i for i in (await listing(client))["items"] if i["file_name"] == "c")
    resp = await client.post("/api/lm/loras/rename", json={"file_path": item["file_path"], "new_file_name": "zz"})
    assert resp.status == 200, await resp.text()
    assert (await names(client, sort_by="usage"))[0] == "zz"
    renamed = next(i for i in (await listing(client))["items"] if i["file_name"] == "zz")
    assert renamed["usage_count"] == 3


@pytest.mark.parametrize("params", [{"unused_days": "x"}, {"unused_days": "-1"}, {"unused_days": "1e9"},
                                    {"sort_by": "usage:up"}, {"sort_by": "used"}])
async def test_bad_usage_parameters_are_400(client, params):
    resp = await client.get("/api/lm/loras/list", params=params)
    assert resp.status == 400
    body = await resp.json()
    assert body["success"] is False and body["error"]


async def test_without_any_history_the_usage_sorts_are_by_name(make_client, library):
    for name in ("b", "a", "c"):
        library.add_lora(name)
    client = await make_client(library)
    assert await names(client, sort_by="usage") == ["a", "b", "c"]
    assert await names(client, sort_by="last_used") == ["a", "b", "c"]
    assert await names(client, unused_days="3") == ["a", "b", "c"]
