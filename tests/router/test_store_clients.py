"""Redis Cluster and Sentinel through redis-py's own clients, on real servers started here.

Cluster: three masters (`redis-cli --cluster create`); budgets, cache and the HTTP path work
across masters, and every key one script touches sits in one slot. Sentinel: a primary, a
replica and three sentinels; the primary is killed mid-load and the router must keep caps,
count nothing twice and recover without a restart.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.exceptions import RedisError

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier
from policies.schema import TenantPolicy
from router.budgets import Budgets
from router.cache import ResultCache
from router.metrics import Metrics
from router.settings import Settings
from router.store import Store, connect_store
from router.store_clients import (
    DeadlineRetry,
    _ResolvingConnection,
    _ResolvingSSLConnection,
    make_client,
    url_mode,
)
from tests.router.conftest import sha
from tests.router.redis_topologies import (
    ClusterTopology,
    SentinelTopology,
    cli,
    free_port,
    redis_cluster,
    redis_sentinel,
)

__all__ = ["redis_cluster", "redis_sentinel"]  # fixtures used below

KEY = "sk-topology"
PRICE = 100  # USD per Mtok in and out: one stub answer (10 + 4 tokens) costs 0.0014 USD
POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          price: {{input_per_mtok: {price}, output_per_mtok: {price}}}, max_concurrency: 64,
          timeout_s: 5}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 16, deadline_s: 30}}
  medium: {{strategy: greedy, model: stub, max_tokens: 16, deadline_s: 30}}
  hard: {{strategy: greedy, model: stub, max_tokens: 16, deadline_s: 30}}
  very_hard: {{strategy: greedy, model: stub, max_tokens: 16, deadline_s: 30}}
budgets: {{on_exceeded: reject}}
tenants:
  shared: {{api_key_sha256: ["{key}"], daily_usd: {cap}}}
anonymous_tenant: null
cache: {{enabled: true, ttl_s: 60}}
"""


def test_url_scheme_picks_the_client() -> None:
    assert url_mode("redis://h:1/0") == ("standalone", False)
    assert url_mode("rediss://h:1/0") == ("standalone", True)
    assert url_mode("redis+cluster://a:1,b:2") == ("cluster", False)
    assert url_mode("rediss+sentinel://a:1/svc") == ("sentinel", True)
    assert url_mode("redis://a:1,b:2", "sentinel") == ("sentinel", False)
    with pytest.raises(ValueError, match="contradicts"):
        url_mode("redis+cluster://a:1", "sentinel")


def test_sentinel_clients_resolve_the_primary_on_every_connect() -> None:
    """Plain and TLS Sentinel URLs both get the connection class that asks Sentinel on every
    socket connect (the failover test below shows why), and the deadline retry."""
    plain = make_client("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc", failover_s=7)
    tls = make_client("rediss+sentinel://127.0.0.1:1/svc")
    assert isinstance(plain, Redis) and isinstance(tls, Redis)
    assert plain.connection_pool.connection_class is _ResolvingConnection
    assert tls.connection_pool.connection_class is _ResolvingSSLConnection
    assert issubclass(_ResolvingSSLConnection, SSLConnection)
    retry = plain.connection_pool.connection_kwargs["retry"]
    assert isinstance(retry, DeadlineRetry) and retry.window_s == 7


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with ServerThread(StubUpstream()) as server:
        yield server.url


# --- Cluster -------------------------------------------------------------------------------

async def test_cluster_url_builds_a_cluster_client(redis_cluster: ClusterTopology) -> None:
    store = await connect_store(Settings(redis_url=redis_cluster.url))
    try:
        assert isinstance(store.client, RedisCluster)
        assert await store.ping()
        assert len(store.client.get_primaries()) == 3
    finally:
        await store.aclose()


def _tenants() -> list[str]:
    return ["acme", "a", "b", "c", "zeta", "tenant:with:colons", "x{y", "ünïcode", "t-" * 20] + [
        f"t{i}" for i in range(30)
    ]


async def test_every_key_of_a_tenant_shares_one_slot(redis_cluster: ClusterTopology) -> None:
    """Every key a budget script or the cache touches for one tenant hashes to one slot (the
    server's own CLUSTER KEYSLOT), while tenants spread over all three masters."""
    client = make_client(redis_cluster.url)
    store = Store(client, "ttc:")
    budgets, cache = Budgets(store, Metrics()), ResultCache(store, Metrics())
    port = redis_cluster.ports[0]
    nodes = set()
    try:
        assert await store.ping()  # discovers the slot map
        for tenant in _tenants():
            keys = [*budgets._keys(tenant),
                    cache.key(tenant, "m", [{"role": "user", "content": "q"}], {}, "rev")]
            slots = {int(cli(port, "CLUSTER", "KEYSLOT", k)) for k in keys}
            assert len(slots) == 1, (tenant, keys, slots)
            assert isinstance(client, RedisCluster)
            node = client.get_node_from_key(keys[0])
            assert node is not None
            nodes.add(node.name)
    finally:
        await client.aclose()
    assert len(nodes) == 3  # the tag spreads tenants; it does not pin them to one master


async def test_caps_hold_on_every_master(redis_cluster: ClusterTopology) -> None:
    """Concurrent reservations for tenants on all three masters: each tenant's cap admits
    exactly cap / estimate of them; settle commits exactly what was spent."""
    store = Store(make_client(redis_cluster.url, timeout_s=10.0),
                  f"ttctest:{uuid.uuid4().hex[:8]}:")
    budgets = Budgets(store, Metrics())
    tenants = [f"t{i}" for i in range(9)]
    spec = TenantPolicy(daily_usd=1.0)
    assert await store.ping()  # initialise the slot map first, as connect_store does
    try:
        async def one(tenant: str) -> bool:
            try:
                r = await budgets.reserve(tenant, spec, 0.25, 10, 60)
            except Exception:
                return False
            await budgets.settle(r, 0.1, 5, "easy", "greedy")
            return True

        results = await asyncio.gather(*(one(t) for t in tenants for _ in range(8)))
        for i, tenant in enumerate(tenants):
            admitted = sum(results[i * 8:(i + 1) * 8])
            # 0.25 worst case against 1.0: 4 fit at once; settled ones free room again
            assert 4 <= admitted <= 8
            spend = await budgets.spend(tenant)
            assert spend["usd"] == pytest.approx(0.1 * admitted)
            assert spend["reserved_usd"] == 0
        assert sorted(await budgets.tenants()) == sorted(tenants)
    finally:
        for tenant in tenants:
            await budgets.reset(tenant)
        await store.aclose()


def test_router_serves_on_the_cluster(
    redis_cluster: ClusterTopology, stub_url: str, tmp_path: Path
) -> None:
    """The whole request path (cache, reserve, settle) on a cluster: a repeat is a cache hit
    and the spend lands on the tenant's master."""
    from router.app import create_app

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(stub=stub_url, key=sha(KEY), cap=10, price=PRICE))
    prefix = f"ttc-test-{uuid.uuid4().hex[:8]}:"
    settings = Settings(policy_path=policy, redis_url=redis_cluster.url, redis_prefix=prefix,
                        data_dir=tmp_path)
    app = create_app(settings, classifier=FixedClassifier(Tier.EASY))
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "cluster?"}]}
    headers = {"authorization": f"Bearer {KEY}"}
    with ServerThread(app) as server:
        first = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
        second = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
        ready = httpx.get(f"{server.url}/readyz").json()
    assert first.status_code == 200, first.text
    assert (first.headers["x-ttc-cache"], second.headers["x-ttc-cache"]) == ("miss", "hit")
    assert ready["checks"]["store"]["ok"]
    spend = asyncio.run(_spend(redis_cluster.url, prefix))
    assert spend["usd"] == pytest.approx(float(first.headers["x-ttc-cost-usd"]))
    assert spend["requests"] == 1


async def _spend(url: str, prefix: str) -> dict[str, Any]:
    store = Store(make_client(url), prefix)
    try:
        return await Budgets(store, Metrics()).spend("shared", "day")
    finally:
        await store.aclose()


# --- Sentinel ------------------------------------------------------------------------------

async def test_sentinel_url_finds_the_primary(redis_sentinel: SentinelTopology) -> None:
    store = await connect_store(Settings(redis_url=redis_sentinel.url))
    try:
        assert await store.ping()
        await store.client.set("ttctest:sentinel", "1", ex=5)
        info = await store.client.info("server")
        assert int(info["tcp_port"]) == redis_sentinel.current_primary()
    finally:
        await store.aclose()


async def test_sentinel_retries_end_at_the_failover_window(
    redis_sentinel: SentinelTopology,
) -> None:
    """A primary hangs (SIGSTOP: connects are still accepted, nothing answers) and the
    sentinels do not yet call it down: a command gives up about `failover_s` after its first
    failure. Each attempt itself takes a socket timeout, so a retry count sized for the window
    (`failover_s / 0.5 + 3` attempts) ran several times longer; the deadline does not."""
    port, service = free_port(), f"hung{uuid.uuid4().hex[:6]}"
    redis_sentinel.procs.start(port)
    for sentinel in redis_sentinel.sentinels:
        assert cli(sentinel, "SENTINEL", "MONITOR", service, "127.0.0.1", str(port), "2") == "OK"
    hosts = ",".join(f"127.0.0.1:{p}" for p in redis_sentinel.sentinels)
    client = make_client(f"redis+sentinel://{hosts}/{service}", failover_s=1.5, timeout_s=0.5)
    proc = redis_sentinel.procs.procs[port]
    try:
        await client.set("ttctest:hung", "1")  # a pooled connection to the primary
        proc.send_signal(signal.SIGSTOP)
        began = time.monotonic()
        with pytest.raises(RedisError):
            await client.set("ttctest:hung", "2")
        took = time.monotonic() - began
    finally:
        proc.send_signal(signal.SIGCONT)
        redis_sentinel.procs.kill(port)
        await client.aclose()
        for sentinel in redis_sentinel.sentinels:
            cli(sentinel, "SENTINEL", "REMOVE", service)
    assert took < 1.5 + 1.5, took  # the window, then at most one attempt's timeouts


def test_failover_mid_load_keeps_caps_and_counts_once(
    redis_sentinel: SentinelTopology, stub_url: str, tmp_path: Path
) -> None:
    """Kill the primary while 6 callers hammer one capped tenant. Every answer is 200 or 429
    (no request lost: the ones in flight at the kill wait for the promoted replica and are
    served); every request has its answer within 10 s of the promotion, found by the router
    itself; the spend on the new primary equals what the 200s billed (nothing lost, nothing
    counted twice) and stays under the cap; no reservation is left held."""
    from router.app import create_app

    cost = (10 + 4) * PRICE / 1e6
    cap = round(cost * 120, 6)  # about 120 answers fit; the load asks for 220
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(stub=stub_url, key=sha(KEY), cap=cap, price=PRICE))
    prefix = f"ttc-test-{uuid.uuid4().hex[:8]}:"
    settings = Settings(policy_path=policy, redis_url=redis_sentinel.url, redis_prefix=prefix,
                        data_dir=tmp_path, redis_failover_s=90)  # a loaded CI machine is slow
    app = create_app(settings, classifier=FixedClassifier(Tier.EASY))
    old_primary = redis_sentinel.current_primary()
    results: list[tuple[float, int, float]] = []  # (time, status, billed usd)
    killed_at: list[float] = []
    promoted_at: list[float] = []
    with ServerThread(app) as server:

        def killer() -> None:
            while len(results) < 40:
                time.sleep(0.01)
            killed_at.append(time.monotonic())
            redis_sentinel.procs.kill(old_primary)
            while redis_sentinel.current_primary() == old_primary:  # Sentinel's part
                time.sleep(0.05)
            promoted_at.append(time.monotonic())

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        asyncio.run(_load(server.url, results, total=220, callers=6))
        thread.join(timeout=5)
    new_primary = redis_sentinel.current_primary()
    assert new_primary != old_primary and killed_at and promoted_at
    statuses = [s for _, s, _ in results]
    timing = (f"promotion {promoted_at[0] - killed_at[0]:.1f} s after the kill; last answer "
              f"{max(t for t, _, _ in results) - promoted_at[0]:.1f} s after the promotion")
    assert len(results) == 220 and set(statuses) <= {200, 429}, (statuses, timing)
    # The router's part of the recovery: every request, those in flight at the kill included,
    # is answered within 10 s of Sentinel promoting the replica (Sentinel's own part, kill to
    # promotion, is ~2-3 s here on an idle machine).
    assert max(t for t, _, _ in results) - promoted_at[0] < 10, timing
    assert statuses.count(429) > 0  # the cap bound during the run
    billed = sum(usd for _, s, usd in results if s == 200)
    spend = asyncio.run(_spend(redis_sentinel.url, prefix))
    assert spend["usd"] == pytest.approx(billed, abs=1e-9)  # each answer counted exactly once
    assert spend["usd"] <= cap + 1e-9
    assert spend["requests"] == statuses.count(200)
    assert spend["reserved_usd"] == 0 and spend["reserved_tokens"] == 0


async def _load(url: str, results: list[tuple[float, int, float]], total: int,
                callers: int) -> None:
    counter = iter(range(total))
    async with httpx.AsyncClient(timeout=150) as client:

        async def caller() -> None:
            for i in counter:
                r = await client.post(
                    f"{url}/v1/chat/completions",
                    headers={"authorization": f"Bearer {KEY}"},
                    json={"model": "ttc-auto",
                          "messages": [{"role": "user", "content": f"failover {i}"}]},
                )
                usd = float(r.headers.get("x-ttc-cost-usd", 0)) if r.status_code == 200 else 0
                results.append((time.monotonic(), r.status_code, usd))

        await asyncio.gather(*(caller() for _ in range(callers)))
