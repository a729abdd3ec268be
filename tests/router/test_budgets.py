"""Budget caps and spend tracking on a real Redis."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from classifier.base import TIERS, Tier, TierScores
from policies.schema import Policy, TenantPolicy
from router.budgets import BudgetCapExceeded, Budgets
from router.errors import StoreUnavailable
from router.metrics import Metrics
from router.planning import Call, Plan, plan
from router.store import Store, make_client
from router.tenancy import Tenant
from tests.policies.samples import ladder_doc, load_doc
from tests.router import store_fixtures as fx
from tests.router.store_fixtures import RedisProcess, sample

metrics = fx.metrics
private_redis = fx.private_redis
state_redis_url = fx.state_redis_url
store = fx.store


class Clock:
    def __init__(self, start: float = datetime(2025, 3, 31, 23, 0, tzinfo=UTC).timestamp()):
        self.now = start

    def __call__(self) -> float:
        return self.now


def caps(**kw: float | int) -> TenantPolicy:
    return TenantPolicy.model_validate(kw)


async def test_reserve_settle_commits_actual_and_releases(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics)
    spec = caps(daily_usd=1.0, daily_tokens=10_000)
    r = await b.reserve("acme", spec, 0.30, 3000, 60)
    assert r.remaining.daily_usd == pytest.approx(0.70)
    assert r.remaining.daily_tokens == 7000
    assert (await b.spend("acme"))["reserved_usd"] == pytest.approx(0.30)
    await b.settle(r, 0.12, 1200, "hard", "best_of_n")
    day = await b.spend("acme", "day")
    assert day["usd"] == pytest.approx(0.12) and day["tokens"] == 1200
    assert day["reserved_usd"] == 0 and day["reserved_tokens"] == 0
    assert day["by_tier"]["hard"] == {"usd": pytest.approx(0.12), "tokens": 1200, "requests": 1}
    assert day["by_strategy"]["best_of_n"]["requests"] == 1
    month = await b.spend("acme", "month")
    assert month["usd"] == pytest.approx(0.12)
    assert (await b.remaining("acme", spec)).daily_usd == pytest.approx(0.88)
    assert sample(metrics, "ttc_tenant_spend_usd", tenant="acme", period="day") == \
        pytest.approx(0.12)


async def test_over_cap_is_rejected_with_remaining(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics)
    spec = caps(daily_usd=1.0)
    first = await b.reserve("acme", spec, 0.8, 10, 60)
    with pytest.raises(BudgetCapExceeded) as info:
        await b.reserve("acme", spec, 0.3, 10, 60)
    exc = info.value
    assert exc.status == 429 and exc.cap == "daily_usd"
    assert exc.headers["x-ttc-budget-remaining"] == "0.200000"
    assert "daily_usd" in exc.message and "0.2" in exc.message
    await b.release(first)  # nothing spent: the room comes back
    await b.reserve("acme", spec, 0.3, 10, 60)


@pytest.mark.parametrize(
    ("spec", "usd", "tokens", "binding"),
    [
        ({"monthly_usd": 0.5, "daily_usd": 10.0}, 0.6, 1, "monthly_usd"),
        ({"daily_tokens": 100}, 0.0, 101, "daily_tokens"),
        ({"monthly_tokens": 50, "daily_usd": 1.0}, 0.1, 51, "monthly_tokens"),
    ],
)
async def test_every_cap_applies(
    store: Store, metrics: Metrics, spec: dict[str, float], usd: float, tokens: int,
    binding: str,
) -> None:
    b = Budgets(store, metrics)
    with pytest.raises(BudgetCapExceeded) as info:
        await b.reserve("t", caps(**spec), usd, tokens, 60)
    assert info.value.cap == binding


async def test_month_accumulates_across_days(store: Store, metrics: Metrics) -> None:
    clock = Clock(datetime(2025, 3, 10, 23, 59, tzinfo=UTC).timestamp())
    b = Budgets(store, metrics, clock=clock)
    spec = caps(daily_usd=1.0, monthly_usd=1.5)
    r = await b.reserve("t", spec, 0.9, 1, 60)
    await b.settle(r, 0.9, 1)
    clock.now += 120  # next UTC day, same month
    with pytest.raises(BudgetCapExceeded) as info:  # the day is fresh, the month is not
        await b.reserve("t", spec, 0.9, 1, 60)
    assert info.value.cap == "monthly_usd"
    assert (await b.spend("t", "day"))["usd"] == 0
    r2 = await b.reserve("t", spec, 0.5, 1, 60)
    assert r2.remaining.daily_usd == pytest.approx(0.5)
    assert r2.remaining.monthly_usd == pytest.approx(0.1)


async def test_expired_reservations_are_reclaimed(store: Store, metrics: Metrics) -> None:
    clock = Clock()
    b = Budgets(store, metrics, clock=clock)
    spec = caps(daily_usd=1.0)
    crashed = await b.reserve("t", spec, 1.0, 1, ttl_s=30)  # a replica dies holding it
    with pytest.raises(BudgetCapExceeded):
        await b.reserve("t", spec, 0.1, 1, 30)
    clock.now += 31
    r = await b.reserve("t", spec, 0.9, 1, 30)
    assert r.reclaimed == 1
    assert sample(metrics, "ttc_budget_reservations_reclaimed_total") == 1
    # The crashed replica comes back late: its actual spend is still recorded, once.
    await b.settle(crashed, 0.05, 1, "easy", "greedy")
    await b.settle(r, 0.2, 1, "easy", "greedy")
    day = await b.spend("t")
    assert day["usd"] == pytest.approx(0.25) and day["reserved_usd"] == 0


def options(policy: Policy, tier: Tier) -> tuple[Plan, ...]:
    """The planner's plan for `tier` (empty prompt) and its downgrades."""
    scores = TierScores.from_probabilities([1.0 if t is tier else 0.0 for t in TIERS])
    tenant = Tenant("t", policy.tenants["t"])
    return plan(policy, tenant, Call("chat", "ttc-auto", ()), scores).options


async def test_downgrade_picks_most_capable_tier_that_fits(
    store: Store, metrics: Metrics
) -> None:
    policy = load_doc(ladder_doc(daily_usd=0.005)).policy
    b = Budgets(store, metrics)
    chosen, r = await b.reserve_with_downgrade("t", policy.tenants["t"],
                                               options(policy, Tier.VERY_HARD), 60)
    assert chosen.tier is Tier.HARD and r.usd == pytest.approx(0.001) and r.choice == 1
    assert chosen.downgraded_from is Tier.VERY_HARD
    chosen, _ = await b.reserve_with_downgrade("t", policy.tenants["t"],
                                               options(policy, Tier.EASY), 60)
    assert chosen.tier is Tier.EASY


async def test_reject_policy_does_not_downgrade(store: Store, metrics: Metrics) -> None:
    policy = load_doc(ladder_doc("reject", daily_usd=0.005)).policy
    b = Budgets(store, metrics)
    with pytest.raises(BudgetCapExceeded) as info:
        await b.reserve_with_downgrade("t", policy.tenants["t"],
                                       options(policy, Tier.VERY_HARD), 60)
    assert float(info.value.headers["x-ttc-budget-remaining"]) == pytest.approx(0.005)
    chosen, _ = await b.reserve_with_downgrade("t", policy.tenants["t"],
                                               options(policy, Tier.HARD), 60)
    assert chosen.tier is Tier.HARD


async def test_nothing_fits_even_easy(store: Store, metrics: Metrics) -> None:
    policy = load_doc(ladder_doc(daily_usd=0.000001)).policy
    with pytest.raises(BudgetCapExceeded):
        await Budgets(store, metrics).reserve_with_downgrade(
            "t", policy.tenants["t"], options(policy, Tier.VERY_HARD), 60)


async def test_uncapped_tenant_spend_is_tracked(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics)
    r = await b.reserve("free", None, 1e6, 10**9, 60)
    assert r.remaining.headers() == {}
    await b.settle(r, 2.5, 100, "medium", "self_consistency")
    assert (await b.spend("free", "month"))["by_tier"]["medium"]["usd"] == pytest.approx(2.5)
    assert "free" in await b.tenants()


async def test_reset_clears_spend_keeps_reservations(store: Store, metrics: Metrics) -> None:
    b = Budgets(store, metrics)
    spec = caps(daily_usd=1.0)
    done = await b.reserve("t", spec, 0.5, 1, 60)
    await b.settle(done, 0.5, 1)
    live = await b.reserve("t", spec, 0.4, 1, 60)
    await b.reset("t", "all")
    day = await b.spend("t")
    assert day["usd"] == 0 and day["reserved_usd"] == pytest.approx(0.4)
    await b.settle(live, 0.1, 1)
    assert (await b.remaining("t", spec)).daily_usd == pytest.approx(0.9)


async def test_concurrent_requests_never_pass_the_cap(store: Store, metrics: Metrics) -> None:
    """200 concurrent reserve/settle on one event loop (the multi-process run is below)."""
    b = Budgets(store, metrics)
    spec = caps(daily_usd=0.05)
    rng = random.Random(7)
    committed: list[float] = []
    rejected = 0

    async def request() -> None:
        nonlocal rejected
        estimate = rng.choice([0.001, 0.002, 0.005])
        try:
            r = await b.reserve("t", spec, estimate, 1, 60)
        except BudgetCapExceeded:
            rejected += 1
            return
        await asyncio.sleep(rng.random() / 100)
        actual = round(estimate * rng.random(), 6)
        await b.settle(r, actual, 1)
        committed.append(actual)

    await asyncio.gather(*(request() for _ in range(200)))
    day = await b.spend("t")
    assert rejected > 0 and committed
    assert day["usd"] == pytest.approx(sum(committed), abs=1e-6)
    assert day["usd"] <= 0.05 and day["reserved_usd"] == 0


async def test_redis_down_fails_closed_then_recovers(
    private_redis: RedisProcess, metrics: Metrics
) -> None:
    s = Store(make_client(private_redis.url, timeout_s=0.5), "ttcdown:")
    b = Budgets(s, metrics)
    spec = caps(daily_usd=1.0)
    r = await b.reserve("t", spec, 0.1, 1, 60)
    private_redis.stop()
    with pytest.raises(StoreUnavailable) as info:
        await b.reserve("t", spec, 0.1, 1, 60)
    assert info.value.status == 503 and "fail" in info.value.message
    assert sample(metrics, "ttc_budget_decisions_total", outcome="store_error") == 1
    unchecked = await b.reserve("t", spec, 0.1, 1, 60, fail_open=True)
    assert not unchecked.checked
    assert not (await b.reserve("free", None, 0.1, 1, 60)).checked  # no caps: nothing to enforce
    await b.settle(r, 0.1, 1)  # settle never raises; the reservation would expire
    assert sample(metrics, "ttc_store_errors_total", op="budget_settle") == 1
    private_redis.start()  # an empty Redis comes back (no persistence)
    await asyncio.sleep(0.05)
    ok = await b.reserve("t", spec, 0.1, 1, 60)
    assert ok.checked and ok.remaining.daily_usd == pytest.approx(0.9)
    await s.aclose()


async def test_settings_fail_open(private_redis: RedisProcess, metrics: Metrics) -> None:
    s = Store(make_client(private_redis.url, timeout_s=0.5), "ttcdown:")
    private_redis.stop()
    b = Budgets(s, metrics, fail_open=True)
    assert not (await b.reserve("t", caps(daily_usd=1.0), 0.1, 1, 60)).checked
    await s.aclose()


async def test_a_retried_settle_counts_once(store: Store, metrics: Metrics) -> None:
    """A settle whose reply was lost (failover) is sent again by the client: the tombstone
    left by the first makes the second a no-op."""
    b = Budgets(store, metrics)
    spec = caps(daily_usd=1.0)
    r = await b.reserve("acme", spec, 0.30, 300, 60)
    await b.settle(r, 0.10, 100, "easy", "greedy")
    await b.settle(r, 0.10, 100, "easy", "greedy")  # the retry
    day = await b.spend("acme", "day")
    assert day["usd"] == pytest.approx(0.10) and day["tokens"] == 100
    assert day["requests"] == 1 and day["reserved_usd"] == 0


async def test_a_retried_reserve_holds_once(store: Store, metrics: Metrics) -> None:
    """The reserve script sent twice with one reservation id (what a client retry after a
    lost reply does) holds the estimate once and answers the same choice."""
    clock = Clock()
    b = Budgets(store, metrics, clock=clock)
    keys = list(b._keys("acme"))
    args: list[int | str] = [int(clock() * 1000), 60_000, "rid-1", 1_000_000, -1, -1, -1,
                             2, 700_000, 10, 200_000, 5]
    first = await b._reserve(keys=keys, args=args)
    again = await b._reserve(keys=keys, args=args)
    assert int(first[0]) == int(again[0]) == 1
    assert (await b.spend("acme"))["reserved_usd"] == pytest.approx(0.70)
    assert int(again[2]) == 300_000  # remaining after the one reservation
    await b._settle(keys=keys, args=["rid-1", 500_000, 10, "", "", 1, int(clock() * 1000)])
    day = await b.spend("acme")
    assert day["reserved_usd"] == 0 and day["usd"] == pytest.approx(0.5)  # released in full


async def test_tombstones_are_reclaimed(store: Store, metrics: Metrics) -> None:
    clock = Clock()
    b = Budgets(store, metrics, clock=clock)
    r = await b.reserve("acme", caps(daily_usd=1.0), 0.1, 10, 60)
    await b.settle(r, 0.05, 5)
    resd = store.key("b", "{acme}", "resd")
    assert await store.client.hget(resd, r.id) == "="
    clock.now += 700  # past the tombstone's 600 s lifetime, same day
    await b.remaining("acme", caps(daily_usd=1.0))
    assert await store.client.hget(resd, r.id) is None
    assert (await b.spend("acme"))["usd"] == pytest.approx(0.05)


async def test_settle_writes_the_cache_entry_in_the_same_script(
    store: Store, metrics: Metrics
) -> None:
    b = Budgets(store, metrics)
    r = await b.reserve("acme", None, 0.1, 10, 60)
    key = store.key("c", "{acme}", "digest")
    await b.settle(r, 0.05, 5, also_set=(key, '{"texts": ["x"]}', 30))
    assert await store.client.get(key) == '{"texts": ["x"]}'
    assert 0 < await store.client.ttl(key) <= 30


async def test_a_probed_cache_entry_is_read_by_the_reserve_script(
    store: Store, metrics: Metrics
) -> None:
    """`probe`: the reserve script reads the cache key first. Found: the Reservation carries
    the entry and nothing is reserved. Absent: the reservation is made as without a probe."""
    b = Budgets(store, metrics)
    spec = caps(daily_usd=1.0)
    key = store.key("c", "{acme}", "probe-digest")
    missed = await b.reserve_first_fit("acme", spec, [(0.3, 10)], 60, probe=key)
    assert missed.cached is None and missed.usd_micro == 300_000
    assert (await b.spend("acme"))["reserved_usd"] == pytest.approx(0.3)
    await b.settle(missed, 0.1, 5, also_set=(key, '{"texts": ["x"]}', 30))

    hit = await b.reserve_first_fit("acme", spec, [(0.3, 10)], 60, probe=key)
    assert hit.cached == '{"texts": ["x"]}'
    day = await b.spend("acme")
    assert day["reserved_usd"] == 0 and day["usd"] == pytest.approx(0.1)  # nothing held
    # a hit is served whatever the caps say (as when the cache was read first)
    assert (await b.reserve_first_fit("acme", caps(daily_usd=0.01), [(0.3, 10)], 60,
                                      probe=key)).cached is not None
