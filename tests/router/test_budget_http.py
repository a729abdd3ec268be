"""Budget caps through the HTTP API: three router processes share one Redis and one tenant cap;
downgrade and reject paths."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from tests.router.conftest import sha

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-shared-cap"
CAP_USD = 0.2

POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          price: {{input_per_mtok: 100, output_per_mtok: 100}}, max_concurrency: 64}}
  pricey: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
            price: {{input_per_mtok: 10000, output_per_mtok: 10000}}}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 16}}
  medium: {{strategy: greedy, model: stub, max_tokens: 16}}
  hard: {{strategy: greedy, model: pricey, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: pricey, max_tokens: 16}}
budgets: {{on_exceeded: {mode}}}
tenants:
  shared: {{api_key_sha256: ["{key}"], daily_usd: {cap}, allow_tier_hint: true}}
anonymous_tenant: null
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with ServerThread(StubUpstream()) as server:
        yield server.url


def _spawn(
    policy: Path, redis_url: str, prefix: str, data_dir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "TTC_PORT": str(port),
        "TTC_POLICY_PATH": str(policy),
        "TTC_REDIS_URL": redis_url,
        "TTC_REDIS_PREFIX": prefix,
        "TTC_DATA_DIR": str(data_dir),
        "TTC_LOG_LEVEL": "warning",
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "serve"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, "router process exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("router did not start")


async def _fire(urls: list[str], total: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=total)) as c:
        return list(
            await asyncio.gather(
                *(
                    c.post(
                        f"{urls[i % len(urls)]}/v1/chat/completions",
                        headers={"authorization": f"Bearer {KEY}", "x-ttc-tier": "easy"},
                        json={
                            "model": "ttc-auto",
                            "messages": [{"role": "user", "content": f"request {i}"}],
                        },
                    )
                    for i in range(total)
                )
            )
        )


async def _spend(redis_url: str, prefix: str) -> dict[str, object]:
    from router.budgets import Budgets
    from router.metrics import Metrics
    from router.store import Store, make_client

    store = Store(make_client(redis_url), prefix)
    try:
        return await Budgets(store, Metrics()).spend("shared", "day")
    finally:
        await store.aclose()


def test_three_processes_never_exceed_one_cap(
    stub_url: str, redis_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(stub=stub_url, key=sha(KEY), cap=CAP_USD, mode="reject"))
    prefix = f"ttc-test-{uuid.uuid4().hex[:8]}:"
    procs = [_spawn(policy, redis_url, prefix, tmp_path) for _ in range(3)]
    try:
        for proc, url in procs:
            _wait(url, proc)
        responses = asyncio.run(_fire([url for _, url in procs], 200))
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=20)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    ok = [r for r in responses if r.status_code == 200]
    assert ok and statuses.count(429) > 0  # the cap binds within this burst
    billed = sum(float(r.headers["x-ttc-cost-usd"]) for r in ok)
    spend = asyncio.run(_spend(redis_url, prefix))
    assert spend["usd"] <= CAP_USD
    assert spend["usd"] == pytest.approx(billed, abs=1e-6)  # every response's cost committed
    assert spend["reserved_usd"] == 0 and spend["reserved_tokens"] == 0  # nothing left held
    assert spend["requests"] == len(ok)
    for r in responses:
        if r.status_code == 429:
            assert r.json()["error"]["type"] == "budget_exceeded"
            assert "x-ttc-budget-remaining" in r.headers


def test_downgrade_picks_the_most_capable_tier_that_fits(
    stub_url: str, redis_url: str, tmp_path: Path
) -> None:
    from router.app import create_app
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    # hard on `pricey` reserves ~100x more than medium on `stub`: only medium fits 0.05 USD
    policy.write_text(POLICY.format(stub=stub_url, key=sha(KEY), cap=0.05, mode="downgrade"))
    settings = Settings(
        policy_path=policy,
        redis_url=redis_url,
        data_dir=tmp_path,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
    )
    from classifier.base import FixedClassifier, Tier

    with ServerThread(create_app(settings, classifier=FixedClassifier(Tier.HARD))) as server:
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={"model": "ttc-auto", "messages": [{"role": "user", "content": "expensive?"}]},
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-ttc-tier"] == "medium"
    assert r.headers["x-ttc-downgraded-from"] == "hard"
    assert r.json()["ttc"]["downgraded_from"] == "hard"


ZERO_PRICE_POLICY = """
models:
  free: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          price: {{input_per_mtok: 0, output_per_mtok: 0}}}}
tiers:
  easy: {{strategy: greedy, model: free, max_tokens: 16, deadline_s: 1}}
  medium: {{strategy: greedy, model: free, max_tokens: 16, deadline_s: 1}}
  hard: {{strategy: greedy, model: free, max_tokens: 16, deadline_s: 1}}
  very_hard: {{strategy: greedy, model: free, max_tokens: 16, deadline_s: 1}}
budgets: {{reservation_ttl_s: 2}}
cache: {{enabled: false}}
tenants:
  shared: {{api_key_sha256: ["{key}"], daily_tokens: 200000, allow_tier_hint: true}}
anonymous_tenant: null
"""


def test_zero_price_model_settles_past_the_reservation_ttl(
    stub_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Issue 11: a zero-cost settle failed in Redis (`-0`), so no tokens were recorded and, once
    the reservation TTL passed, reclaiming it failed too: every request of a token-capped tenant
    got 503 while Redis was up and /readyz said ready."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(ZERO_PRICE_POLICY.format(stub=stub_url, key=sha(KEY)))
    prefix = f"ttc-test-{uuid.uuid4().hex[:8]}:"
    procs = [_spawn(policy, redis_url, prefix, tmp_path) for _ in range(3)]
    urls = [url for _, url in procs]
    try:
        for proc, url in procs:
            _wait(url, proc)
        first = asyncio.run(_fire(urls, 6))
        time.sleep(2.5)  # past reservation_ttl_s: the next reserve reclaims what is left held
        second = asyncio.run(_fire(urls, 6))
        ready = [httpx.get(f"{url}/readyz", timeout=10).json() for url in urls]
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=20)
    responses = first + second
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    spend = asyncio.run(_spend(redis_url, prefix))
    used = sum(r.json()["usage"]["total_tokens"] for r in responses)
    assert used > 0 and spend["tokens"] == used  # every request's tokens committed
    assert spend["usd"] == 0 and spend["requests"] == 12
    assert spend["reserved_usd"] == 0 and spend["reserved_tokens"] == 0
    for detail in ready:
        assert detail["checks"]["budgets"]["settle_failures"] == 0, detail
