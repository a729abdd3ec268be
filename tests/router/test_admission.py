"""Admission control (503 + retry-after past the in-flight bound) and the loop-lag metric."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier
from tests.router.conftest import write_policy


def test_past_the_bound_requests_get_503_with_retry_after(
    redis_url: str, tmp_path: Path
) -> None:
    from router.app import create_app
    from router.settings import Settings

    with ServerThread(StubUpstream(delay_s=0.6)) as stub:
        policy = write_policy(tmp_path / "policy.yaml", stub.url)
        settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp_path,
                            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:", max_inflight=2)
        app = create_app(settings, classifier=FixedClassifier(Tier.EASY))
        with ServerThread(app) as server:

            async def burst() -> tuple[list[httpx.Response], httpx.Response]:
                async with httpx.AsyncClient(timeout=30) as c:
                    asks = [c.post(f"{server.url}/v1/chat/completions", json={
                        "model": "ttc-auto",
                        "messages": [{"role": "user", "content": f"slow {i}"}]})
                        for i in range(6)]
                    health = c.get(f"{server.url}/healthz")
                    *answers, h = await asyncio.gather(*asks, health)
                    return answers, h

            answers, health = asyncio.run(burst())
            metrics = httpx.get(f"{server.url}/metrics").text
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 200, 503, 503, 503, 503]
    assert health.status_code == 200  # never shed
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["type"] == "overloaded"
    assert re.search(r"^ttc_requests_shed_total 4\.0$", metrics, re.M)
    lag = re.search(r"^ttc_event_loop_lag_seconds_count (\S+)$", metrics, re.M)
    assert lag is not None and float(lag.group(1)) >= 1  # sampled while serving
