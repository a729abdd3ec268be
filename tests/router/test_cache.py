"""The result cache: keys, tenant isolation, revision invalidation, size cap, fail-open."""

from __future__ import annotations

import asyncio

import pytest

from policies.schema import CachePolicy
from router.cache import ResultCache, should_cache
from router.metrics import Metrics
from router.store import Store, make_client
from router.upstreams.base import Message
from tests.router import store_fixtures as fx
from tests.router.store_fixtures import RedisProcess, sample

metrics = fx.metrics
private_redis = fx.private_redis
state_redis_url = fx.state_redis_url
store = fx.store

MSGS = [Message("system", "Be brief."), Message("user", "What is 2+2?")]
PARAMS = {"temperature": 0.0, "max_tokens": 64}


async def test_hit_after_set_and_miss_before(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    key = cache.key("acme", "ttc-auto", MSGS, PARAMS, "rev1")
    assert await cache.get(key) is None
    assert await cache.set(key, {"text": "4", "tier": "easy"}, ttl_s=60, max_bytes=10_000)
    assert await cache.get(key) == {"text": "4", "tier": "easy"}
    assert 0 < await store.client.ttl(key) <= 60
    # hits and misses are counted once per answered request by the API layer, not here
    assert sample(metrics, "ttc_cache_requests_total", result="hit") == 0
    assert sample(metrics, "ttc_cache_requests_total", result="miss") == 0


async def test_an_unreadable_entry_is_an_error_not_a_hit(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    key = cache.key("acme", "ttc-auto", MSGS, PARAMS, "rev-bad")
    await store.client.set(key, "not json {", ex=60)
    assert await cache.get(key) is None
    assert cache.read('["a list, not an entry"]') is None
    assert sample(metrics, "ttc_cache_requests_total", result="error") == 2


async def test_one_tenant_never_reads_anothers_entry(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    a = cache.key("acme", "ttc-auto", MSGS, PARAMS, "rev1")
    b = cache.key("beta", "ttc-auto", MSGS, PARAMS, "rev1")
    assert a != b and "{acme}" in a and "{beta}" in b
    await cache.set(a, {"text": "acme's answer"}, 60, 10_000)
    assert await cache.get(b) is None


def test_key_covers_what_changes_a_result(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    base = cache.key("t", "ttc-auto", MSGS, PARAMS, "rev1")
    assert cache.key("t", "ttc-auto", MSGS, PARAMS, "rev2") != base  # reload invalidates
    assert cache.key("t", "ttc-math", MSGS, PARAMS, "rev1") != base
    assert cache.key("t", "ttc-auto", MSGS[1:], PARAMS, "rev1") != base
    assert cache.key("t", "ttc-auto", MSGS, {**PARAMS, "seed": 3}, "rev1") != base
    # Same content, different spelling: same key.
    dicts = [{"role": m.role, "content": m.content} for m in MSGS]
    reordered = {"max_tokens": 64, "temperature": 0.0, "stop": None}
    assert cache.key("t", "ttc-auto", dicts, reordered, "rev1") == base
    nfd = [Message("system", "Be brief."), Message("user", "Cafe\u0301?")]
    nfc = [Message("system", "Be brief."), Message("user", "Caf\u00e9?")]
    assert cache.key("t", "m", nfd, {}, "r") == cache.key("t", "m", nfc, {}, "r")


async def test_entries_over_the_size_cap_are_not_stored(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    key = cache.key("t", "m", MSGS, {}, "r")
    assert not await cache.set(key, {"text": "x" * 2000}, 60, max_bytes=1000)
    assert await cache.get(key) is None


def test_sampled_requests_cached_only_when_allowed() -> None:
    default = CachePolicy()
    assert should_cache(default, 0.0) and should_cache(default, None)
    assert not should_cache(default, 0.7) and not should_cache(default, 0.0, n=3)
    assert should_cache(CachePolicy(cache_sampled=True), 0.7)
    assert not should_cache(CachePolicy(enabled=False), 0.0)


async def test_redis_down_is_fail_open_and_recovers(
    private_redis: RedisProcess, metrics: Metrics
) -> None:
    clock = [0.0]
    store = Store(make_client(private_redis.url, timeout_s=0.5), "ttccache:")
    cache = ResultCache(store, metrics, cooldown_s=5.0, clock=lambda: clock[0])
    key = cache.key("t", "m", MSGS, {}, "r")
    assert await cache.set(key, {"text": "4"}, 60, 10_000)
    private_redis.stop()
    assert await cache.get(key) is None  # served without cache, not an error
    assert sample(metrics, "ttc_cache_requests_total", result="error") == 1
    assert sample(metrics, "ttc_store_errors_total", op="cache_get") == 1
    assert not await cache.ready(key)  # cooling down: the request bypasses the cache
    assert await cache.get(key) is None  # skipped without touching Redis: no new error
    assert sample(metrics, "ttc_cache_requests_total", result="error") == 1
    assert not await cache.set(key, {"text": "4"}, 60, 10_000)
    private_redis.start()
    await asyncio.sleep(0.05)
    clock[0] += 6  # cooldown over
    assert await cache.set(key, {"text": "5"}, 60, 10_000)
    assert await cache.get(key) == {"text": "5"}
    await store.aclose()


async def test_corrupt_entry_is_a_miss_not_a_crash(store: Store, metrics: Metrics) -> None:
    cache = ResultCache(store, metrics)
    key = cache.key("t", "m", MSGS, {}, "r")
    await store.client.set(key, "not json")
    assert await cache.get(key) is None
    with pytest.raises(TypeError):
        cache.key("t", "m", ["just a string"], {}, "r")


async def test_a_get_waits_for_a_write_still_on_its_way(store: Store, metrics: Metrics) -> None:
    """The request path writes in the background (with the settle): the next identical
    request in this process still hits."""
    cache = ResultCache(store, metrics)
    key = cache.key("acme", "ttc-auto", MSGS, PARAMS, "rev-bg")

    async def write() -> None:
        await asyncio.sleep(0.05)
        await cache.set(key, {"text": "4"}, ttl_s=60, max_bytes=10_000)

    cache.writing(key, asyncio.get_running_loop().create_task(write()))
    assert await cache.get(key) == {"text": "4"}
    assert not cache._writes  # forgotten once done
