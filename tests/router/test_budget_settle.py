"""Settling every amount on a real Redis: zero (a zero-price model), fractions of a micro-dollar,
priced models; token and dollar caps; reclaiming expired reservations of each. A settle that
fails is counted and shown, never silent."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from policies.schema import TenantPolicy
from router.budgets import Budgets
from router.metrics import Metrics
from router.store import Store
from tests.router import store_fixtures as fx
from tests.router.store_fixtures import sample

metrics = fx.metrics
state_redis_url = fx.state_redis_url
store = fx.store


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


CAPS = {
    "tokens": TenantPolicy.model_validate({"daily_tokens": 200_000}),
    "usd": TenantPolicy.model_validate({"daily_usd": 5.0}),
    "both": TenantPolicy.model_validate({"daily_tokens": 200_000, "monthly_usd": 5.0}),
    "none": None,
}
# (reserved usd, actual usd): a zero-price model reserves and spends 0; sub-micro amounts
AMOUNTS = {
    "zero-price": (0.0, 0.0),
    "priced": (0.002, 0.0011),
    "sub-micro": (0.0000004, 0.0000002),
    "priced-zero-actual": (0.002, 0.0),
}


@pytest.mark.parametrize("cap", list(CAPS))
@pytest.mark.parametrize("amount", list(AMOUNTS))
async def test_settle_commits_every_amount(
    store: Store, metrics: Metrics, cap: str, amount: str
) -> None:
    clock = Clock()
    b = Budgets(store, metrics, clock=clock)
    spec = CAPS[cap]
    reserve_usd, actual_usd = AMOUNTS[amount]
    r = await b.reserve("t", spec, reserve_usd, 300, ttl_s=5)
    await b.settle(r, actual_usd, 120, "easy", "greedy")
    day = await b.spend("t", "day")
    assert day["tokens"] == 120 and day["requests"] == 1
    assert day["reserved_tokens"] == 0 and day["reserved_usd"] == 0
    assert day["usd"] == pytest.approx(actual_usd, abs=1e-6)
    assert day["usd"] >= actual_usd  # spend is never under-recorded
    assert sample(metrics, "ttc_budget_settle_failures_total") == 0


@pytest.mark.parametrize("cap", list(CAPS))
@pytest.mark.parametrize("amount", list(AMOUNTS))
async def test_expired_reservations_of_every_amount_are_reclaimed(
    store: Store, metrics: Metrics, cap: str, amount: str
) -> None:
    clock = Clock()
    b = Budgets(store, metrics, clock=clock)
    spec = CAPS[cap]
    reserve_usd, _ = AMOUNTS[amount]
    await b.reserve("t", spec, reserve_usd, 300, ttl_s=5)  # never settled (a crashed replica)
    clock.now += 6
    r = await b.reserve("t", spec, reserve_usd, 300, ttl_s=5)
    assert r.reclaimed == 1
    day = await b.spend("t", "day")
    assert day["reserved_tokens"] == 300  # only the live one
    assert sample(metrics, "ttc_budget_reservations_reclaimed_total") == 1


async def test_settle_rounds_up_fractions_and_never_commits_more_than_reserved(
    store: Store, metrics: Metrics
) -> None:
    b = Budgets(store, metrics, clock=Clock())
    spec = TenantPolicy.model_validate({"daily_usd": 0.00001})  # 10 micro-dollars
    for _ in range(5):
        r = await b.reserve("t", spec, 0.0000013, 10, ttl_s=60)  # reserves 2 micro
        await b.settle(r, 0.0000011, 10)  # 1.1 micro commits 2 (never under-recorded)
    day = await b.spend("t", "day")
    assert day["usd"] == pytest.approx(0.00001) and day["reserved_usd"] == 0
    with pytest.raises(Exception, match="budget exceeded"):
        await b.reserve("t", spec, 0.0000001, 10, ttl_s=60)


async def test_a_failing_settle_is_counted_and_reported(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics, clock=Clock())
    r = await b.reserve("t", None, 0.001, 10, ttl_s=60)
    # a day hash holding a non-integer breaks HINCRBY: the script errors out in Redis
    await store.client.hset(r.keys[0], "usd", "not-a-number")
    await b.settle(r, 0.001, 10, "easy", "greedy")
    assert sample(metrics, "ttc_budget_settle_failures_total") == 1
    assert b.settle_health.failures == 1
    assert "not an integer" in (b.settle_health.last_error or "")
    assert b.settle_health.last_error_at is not None
    ok = await b.reserve("t", None, 0.001, 10, ttl_s=60)
    await store.client.hset(r.keys[0], "usd", "0")
    await b.settle(ok, 0.001, 10)
    assert b.settle_health.failures == 1  # cumulative; last_ok_at moves on
    assert b.settle_health.last_ok_at is not None


async def test_zero_amounts_reach_redis_as_integers(store: Store) -> None:
    """The script's own arithmetic: `-0` is what HINCRBY rejected."""
    with pytest.raises(ResponseError, match="not an integer"):
        await store.client.eval("return redis.call('HINCRBY', KEYS[1], 'x', -tonumber('0'))",
                                1, store.key("probe"))


async def test_a_background_settle_holds_the_cap_until_it_lands_and_counts_at_once(
    store: Store, metrics: Metrics
) -> None:
    """`settle_later`: the reservation holds the worst case until the settle lands; a reserve
    of the tenant in this process that nothing fits waits for it and asks again, so it sees
    the actual spend."""
    b = Budgets(store, metrics, clock=Clock())
    spec = TenantPolicy.model_validate({"daily_usd": 1.0})
    first = await b.reserve("t", spec, 0.8, 10, ttl_s=60)
    other = Budgets(store, metrics, clock=Clock())  # another replica on the same Redis
    with pytest.raises(Exception, match="budget exceeded"):  # 0.8 held: 0.8 more cannot fit
        await other.reserve("t", spec, 0.8, 10, ttl_s=60)
    b.settle_later(first, 0.1, 10, "easy", "greedy")  # actual cost 0.1: 0.9 is left
    second = await b.reserve("t", spec, 0.8, 10, ttl_s=60)  # after the settle: it fits
    assert second.checked
    day = await b.spend("t", "day")
    assert day["usd"] == pytest.approx(0.1) and day["reserved_usd"] == pytest.approx(0.8)


async def test_flush_waits_for_every_background_settle(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics, clock=Clock())
    key = store.key("c", "{t}", "digest")
    for i in range(5):
        r = await b.reserve(f"t{i % 2}", None, 0.01, 10, ttl_s=60)
        b.settle_later(r, 0.01, 10, also_set=(key, '{"texts": ["x"]}', 30) if i == 4 else None)
    await b.flush()
    assert not b._settling
    raw = {t: await store.client.hget(b.period_key(t, "day"), "usd")
           for t in ("t0", "t1")}
    assert raw == {"t0": "30000", "t1": "20000"}
    assert await store.client.get(key) == '{"texts": ["x"]}'
