"""The embedded Redis is supervised (issue 11: killing it left /readyz at 503 forever with no
error text): a killed server is restarted and the router serves again; when restarts keep
failing the router gives up and stops itself."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier
from router.errors import StoreUnavailable
from router.store import EmbeddedRedis
from router.supervise import EmbeddedHealth, supervise

POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}}}}
tiers:
  easy: {{strategy: greedy, model: stub}}
  medium: {{strategy: greedy, model: stub}}
  hard: {{strategy: greedy, model: stub}}
  very_hard: {{strategy: greedy, model: stub}}
tenants:
  capped: {{daily_tokens: 100000}}
anonymous_tenant: capped
"""


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def test_a_killed_embedded_redis_is_restarted(tmp_path: Path) -> None:
    from router.app import create_app
    from router.settings import Settings

    with ServerThread(StubUpstream()) as stub:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(stub=stub.url))
        data = Path(f"/tmp/ttc-sup-{uuid.uuid4().hex[:8]}")  # short: unix socket path limit
        settings = Settings(policy_path=policy, data_dir=data, redis_url=None)
        app = create_app(settings, classifier=FixedClassifier(Tier.EASY))
        with ServerThread(app) as server:
            assert _ready(server.url).status_code == 200
            process = app.state.ttc.store.embedded.process
            os.kill(process.pid, signal.SIGKILL)  # the redis-server this test's router started
            down = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = _ready(server.url)
                if r.status_code == 503:
                    down = r.json()["checks"]["store"]
                if r.status_code == 200 and r.json()["checks"]["store"]["embedded"]["restarts"]:
                    break
                time.sleep(0.2)
            ready = r.json()["checks"]["store"]
            assert r.status_code == 200, ready
            assert ready["embedded"]["restarts"] == 1
            assert ready["embedded"]["last_exit"] == -signal.SIGKILL
            if down is not None:  # seen while it was down: the reason is spelled out
                assert "embedded server is being restarted" in down["error"]
            answer = httpx.post(f"{server.url}/v1/chat/completions", timeout=30, json={
                "model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 200, answer.text  # the capped tenant's budget works


class BrokenRedis(EmbeddedRedis):
    """An embedded server that is gone and cannot be started again."""

    async def start(self, timeout_s: float = 15.0) -> None:
        raise StoreUnavailable("embedded Redis did not start; see redis.log")


async def test_restarts_that_keep_failing_give_up(tmp_path: Path) -> None:
    embedded = BrokenRedis(Path("/tmp") / f"ttc-sup-{uuid.uuid4().hex[:8]}")
    health = EmbeddedHealth()
    gave_up = asyncio.Event()
    began = time.monotonic()
    await asyncio.wait_for(
        supervise(embedded, health, asyncio.Event(), interval_s=0.01, max_restarts=3,
                  give_up=gave_up.set),
        timeout=30,
    )
    assert gave_up.is_set() and health.gave_up
    assert health.restarts == 0 and "did not start" in (health.last_error or "")
    assert time.monotonic() - began >= 0.5 + 1 + 2  # backoff between the three attempts


@pytest.mark.parametrize("restarts", [2])
async def test_restarts_are_bounded_per_window(tmp_path: Path, restarts: int) -> None:
    """A server that dies again right after every restart is given up on after the bound."""

    class Flapping(EmbeddedRedis):
        async def start(self, timeout_s: float = 15.0) -> None:
            pass  # "starts", but `process` stays None and the socket never answers

    health = EmbeddedHealth()
    gave_up = asyncio.Event()
    await asyncio.wait_for(
        supervise(Flapping(Path("/tmp") / f"ttc-sup-{uuid.uuid4().hex[:8]}"), health,
                  asyncio.Event(), interval_s=0.01, max_restarts=restarts, give_up=gave_up.set),
        timeout=30,
    )
    assert gave_up.is_set() and health.restarts == restarts
    assert health.last_error == f"{restarts} restarts within 600s"
