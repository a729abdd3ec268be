"""Redis stopped and restarted under load: cache fail-open, budgets fail-closed (or open when
configured) with a clear 503, never a 500, readiness follows, recovery within seconds, and no
reservation left behind. Runs against a private redis-server this test kills (SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stub_upstream import StubUpstream
from tests.resilience.conftest import (
    ADMIN_TOKEN,
    PAYER_KEY,
    PrivateRedis,
    assert_error_body,
    budget_view,
    policy_text,
    start_router,
)

TTL_S = 3  # reservation TTL: a reservation stranded by the outage is reclaimed this fast


@dataclass
class Sample:
    at: float  # when the answer came back
    sent: float  # when the request went out
    kind: str
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Load:
    """Closed-loop load from a few threads, one request kind each, recording every answer."""

    url: str
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, client: httpx.Client, kind: str) -> httpx.Response:
        question = {"role": "user", "content": f"load {uuid.uuid4().hex}"}
        if kind == "payer":  # a tenant with caps: needs the budget store
            return client.post("/v1/chat/completions",
                               json={"model": "ttc-auto", "messages": [question]},
                               headers={"authorization": f"Bearer {PAYER_KEY}"})
        if kind == "anon":  # no caps: only the cache touches Redis
            return client.post("/v1/chat/completions",
                               json={"model": "ttc-auto",
                                     "messages": [{"role": "user", "content": "same question"}]})
        if kind == "messages":
            return client.post("/v1/messages",
                               json={"model": "ttc-auto", "max_tokens": 16, "messages": [question]},
                               headers={"x-api-key": PAYER_KEY})
        if kind == "admin":
            return client.get("/admin/spend", params={"tenant": "payer"},
                              headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        return client.get("/readyz")

    def worker(self, kind: str) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                resp = self.request(client, kind)
                try:
                    payload = resp.json()
                except ValueError:
                    payload = resp.text
                sample = Sample(time.monotonic(), sent, kind, resp.status_code, dict(resp.headers),
                                payload)
                with self.lock:
                    self.samples.append(sample)
                time.sleep(0.02)

    def between(self, start: float, end: float, kind: str | None = None) -> list[Sample]:
        """Samples answered within [start, end)."""
        with self.lock:
            return [s for s in self.samples
                    if start <= s.at < end and (kind is None or s.kind == kind)]

    def sent_after(self, start: float, end: float) -> list[Sample]:
        """Samples sent at or after `start` and answered before `end`: a request that went out
        during the outage and was still retrying when Redis came back is not one of them."""
        with self.lock:
            return [s for s in self.samples if s.sent >= start and s.at < end]


@contextlib.contextmanager
def running_load(url: str, kinds: tuple[str, ...]) -> Iterator[Load]:
    load = Load(url)
    threads = [threading.Thread(target=load.worker, args=(k,), daemon=True) for k in kinds]
    for t in threads:
        t.start()
    try:
        yield load
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=30)


def wait_for(predicate: Any, timeout_s: float) -> float:
    """Seconds until `predicate()` is true (fails the test after `timeout_s`)."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout_s:
            pytest.fail(f"not recovered after {timeout_s}s")
        time.sleep(0.05)
    return time.monotonic() - began


KINDS = ("payer", "anon", "messages", "admin", "ready")


def test_redis_outage_under_load(
    private_redis: PrivateRedis, resilience_stub: tuple[StubUpstream, str], tmp_path: Path
) -> None:
    stub, stub_url = resilience_stub
    policy = policy_text(stub_url, ttl=TTL_S, deadline=2.5)
    with start_router(tmp_path, policy, private_redis.url, stub) as router:
        with running_load(router.url, KINDS) as load:
            time.sleep(1.5)
            killed = time.monotonic()
            private_redis.kill()
            time.sleep(3.0)
            restarted = time.monotonic()
            private_redis.start()

            def last_ready_ok() -> bool:
                recent = load.between(time.monotonic() - 0.3, 1e18, "ready")
                return bool(recent) and recent[-1].status == 200

            recover_ready = wait_for(last_ready_ok, 10)
            recover_budget = wait_for(
                lambda: any(s.status == 200
                            for s in load.between(restarted + recover_ready, 1e18, "payer")), 10)
            time.sleep(1.0)
            ended = time.monotonic()

        # Cache recovers too (after its fail-open cool-down): a repeat is a hit again.
        def cache_hit() -> bool:
            q = {"model": "ttc-auto",
                 "messages": [{"role": "user", "content": f"after {restarted}"}]}
            httpx.post(f"{router.url}/v1/chat/completions", json=q, timeout=10)
            r = httpx.post(f"{router.url}/v1/chat/completions", json=q, timeout=10)
            return bool(r.headers.get("x-ttc-cache") == "hit")

        recover_cache = wait_for(cache_hit, 15)
        time.sleep(TTL_S + 0.5)  # reservations stranded by the outage expire
        leftover = budget_view(router.url, "payer")["day"]

    everything = load.between(0, 1e18)
    assert len(everything) > 50, len(everything)
    assert [s for s in everything if s.status >= 500 and s.status != 503] == []
    before = load.between(0, killed)
    assert before and all(s.status == 200 for s in before), {s.status for s in before}

    # Outage window (0.5 s after the kill until the restart): what each request kind gets.
    outage = load.between(killed + 0.5, restarted)
    by_kind = {k: [s for s in outage if s.kind == k] for k in KINDS}
    assert all(by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    for s in by_kind["payer"] + by_kind["messages"]:  # budgets fail closed
        assert s.status == 503, (s.kind, s.status, s.body)
        path = "/v1/messages" if s.kind == "messages" else "/v1/chat/completions"
        err = assert_error_body(path, httpx.Response(503, json=s.body))
        assert "Redis" in err["message"] and "fail" in err["message"]
    assert by_kind["payer"][0].body["error"]["type"] == "store_unavailable"
    for s in by_kind["anon"]:  # cache fails open: served without it
        assert s.status == 200 and s.headers["x-ttc-cache"] in {"miss", "bypass"}, s
    for s in by_kind["ready"]:
        assert s.status == 503 and s.body["checks"]["store"]["ok"] is False
    assert all(s.status == 503 for s in by_kind["admin"])

    after = load.sent_after(restarted + recover_ready + recover_budget + 0.5, ended)
    assert after and all(s.status == 200 for s in after), [
        (s.kind, s.status, round(s.sent - restarted, 2), round(s.at - restarted, 2), s.body)
        for s in after if s.status != 200]
    assert recover_ready < 5 and recover_budget < 5 and recover_cache < 10
    assert leftover["reserved_usd"] == 0 and leftover["reserved_tokens"] == 0, leftover
    print(f"requests={len(everything)} outage={len(outage)} ready_after={recover_ready:.2f}s "
          f"budget_after={recover_budget:.2f}s cache_after={recover_cache:.2f}s")


@pytest.mark.parametrize("how", ["policy", "settings"])
def test_budgets_fail_open_when_configured(
    private_redis: PrivateRedis, resilience_stub: tuple[StubUpstream, str], tmp_path: Path,
    how: str,
) -> None:
    stub, stub_url = resilience_stub
    policy = policy_text(stub_url, fail_open="true" if how == "policy" else "false")
    extra: dict[str, Any] = {"budget_fail_open": True} if how == "settings" else {}
    with start_router(tmp_path, policy, private_redis.url, stub, **extra) as router:
        private_redis.kill()
        statuses = []
        for _ in range(5):
            r = httpx.post(f"{router.url}/v1/chat/completions", timeout=30,
                           headers={"authorization": f"Bearer {PAYER_KEY}"},
                           json={"model": "ttc-auto",
                                 "messages": [{"role": "user", "content": uuid.uuid4().hex}]})
            statuses.append(r.status_code)
            assert r.status_code != 200 or r.json()["choices"][0]["message"]["content"]
        ready = httpx.get(f"{router.url}/readyz", timeout=10)
    assert statuses == [200] * 5
    assert ready.status_code == 503  # still not ready: the operator must know Redis is gone


def test_pooled_connections_survive_a_redis_restart(private_redis: PrivateRedis) -> None:
    """After a restart every connection the pool holds is dead; the first command on each must
    still succeed (the client reconnects and retries a connection error), or requests fail
    for a while after Redis is back although it answers."""
    from router.store_clients import make_client

    async def scenario() -> list[object]:
        client = make_client(private_redis.url, max_connections=8)
        try:
            # eight blocked commands at once leave eight connected sockets in the pool
            await asyncio.gather(*(client.blpop([f"nothing-{i}"], timeout=0.1)
                                   for i in range(8)))
            private_redis.kill()
            private_redis.start()
            return await asyncio.gather(*(client.incr("after-restart") for _ in range(8)),
                                        return_exceptions=True)
        finally:
            await client.aclose()

    results = asyncio.run(scenario())
    assert sorted(r for r in results if isinstance(r, int)) == list(range(1, 9)), results
