"""Over HTTP, on a real Redis: the reservation sent ahead of classification (`router.ahead`).

The classifier here yields to the event loop for a few milliseconds, as a pass in the batch
thread does, so that the order of Redis work and classification can be observed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier, TierScores
from classifier.embedding import ClassifierUnavailable
from policies.loader import parse_policy
from router import ahead
from router.planning import Call, plan
from router.tenancy import Tenant
from router.upstreams.base import Message
from router.upstreams.scripted import ScriptedUpstream

POLICY = """
models:
  gen:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: g
    capabilities: {{chat: true, completions: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
tiers:
  easy: {{strategy: greedy, model: gen, max_tokens: 16}}
  medium: {{strategy: greedy, model: gen, max_tokens: 16}}
  hard: {{strategy: self_consistency, model: gen, max_tokens: 32, params: {{n: 4}}}}
  very_hard: {{strategy: self_consistency, model: gen, max_tokens: 64, params: {{n: 8}}}}
tasks:
  maths: {{strategy: self_consistency, params: {{n: 16}}, max_tokens: 256}}
tenants:
  default: {{daily_tokens: {tokens}}}
"""


class Recording:
    """A classifier that yields to the loop for `delay_s`, recording when it starts and ends
    into the shared event list; `fail` makes it raise after the delay."""

    def __init__(self, events: list[str], delay_s: float = 0.02) -> None:
        self.inner = FixedClassifier(Tier.VERY_HARD)
        self.events = events
        self.delay_s = delay_s
        self.fail = False

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        self.events.append("classify-start")
        await asyncio.sleep(self.delay_s)
        self.events.append("classify-end")
        if self.fail:
            raise ClassifierUnavailable("classifier broke")
        return await self.inner.classify(texts)

    def describe(self) -> dict[str, Any]:
        return {"backend": "recording"}


class ReserveSpy:
    """Records each reservation script the router's budgets run: how many estimates it was
    offered, and when it answered (the Budgets object is the real one)."""

    def __init__(self, budgets: Any, events: list[str]) -> None:
        self.inner = budgets.reserve_first_fit
        self.events = events
        self.offered: list[list[tuple[float, int]]] = []
        budgets.reserve_first_fit = self

    async def __call__(self, tenant: str, spec: Any, estimates: Sequence[tuple[float, int]],
                       *args: Any, **kwargs: Any) -> Any:
        self.offered.append(list(estimates))
        self.events.append("reserve-sent")
        try:
            return await self.inner(tenant, spec, estimates, *args, **kwargs)
        finally:
            self.events.append("reserve-answered")


def serve(redis_url: str, tmp_path: Path, policy: str, classifier: Recording,
          ) -> Iterator[tuple[str, Any]]:
    from router.app import create_app
    from router.settings import Settings

    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    gen = ScriptedUpstream(lambda r: "four", name="gen")
    settings = Settings(policy_path=path, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:", admin_token="secret")
    app = create_app(settings, upstreams={"gen": gen}, classifier=classifier)
    with ServerThread(app) as server:
        yield server.url, app


def ask(url: str, content: str | None = None, status: int = 200) -> httpx.Response:
    body = {"model": "ttc-auto", "max_tokens": 8,
            "messages": [{"role": "user", "content": content or uuid.uuid4().hex}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    return r


def held(url: str) -> dict[str, Any]:
    """The tenant's spend of the day (the admin API waits for background settles first)."""
    r = httpx.get(f"{url}/admin/spend", params={"tenant": "default"},
                  headers={"authorization": "Bearer secret"}, timeout=30)
    assert r.status_code == 200, r.text
    spend: dict[str, Any] = r.json()
    return spend


@pytest.fixture()
def events() -> list[str]:
    return []


@pytest.fixture()
def far(redis_url: str, tmp_path: Path, events: list[str]
        ) -> Iterator[tuple[str, Any, Recording, ReserveSpy]]:
    clf = Recording(events)
    for url, app in serve(redis_url, tmp_path, POLICY.format(tokens=10**9), clf):
        yield url, app, clf, ReserveSpy(app.state.ttc.budgets, events)


def test_far_from_its_caps_the_reservation_overlaps_classification(
    far: tuple[str, Any, Recording, ReserveSpy], events: list[str],
) -> None:
    url, _, _, spy = far
    ask(url)  # the first request of the tenant: its caps' headroom is not known yet
    assert events == ["classify-start", "classify-end", "reserve-sent", "reserve-answered"]
    assert len(spy.offered[0]) == 4  # the plan and its three downgrades, in plain order
    events.clear()
    ask(url)
    # sent before classifying, answered while the classifier ran
    assert events == ["classify-start", "reserve-sent", "reserve-answered", "classify-end"]
    assert len(spy.offered[1]) == 1


def test_the_bound_covers_the_plan_and_nothing_stays_held(
    far: tuple[str, Any, Recording, ReserveSpy],
) -> None:
    url, _, _, spy = far
    answers = [ask(url) for _ in range(6)]
    assert len(spy.offered) == 6  # one script a request: no plain-order retry
    spend = held(url)
    assert spend["reserved_tokens"] == 0 and spend["reserved_usd"] == 0
    assert spend["requests"] == 6
    assert spend["usd"] == pytest.approx(
        sum(float(a.headers["x-ttc-cost-usd"]) for a in answers), abs=1e-5)


def test_a_plan_the_bound_misses_is_reserved_in_plain_order(
    far: tuple[str, Any, Recording, ReserveSpy], monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _, _, spy = far
    ask(url)
    monkeypatch.setattr(ahead, "bound", lambda policy, call, memo: (1e-6, 1))
    ask(url)
    assert [len(o) for o in spy.offered] == [4, 1, 4]  # the bound, then the plan's options
    spend = held(url)
    assert spend["reserved_tokens"] == 0 and spend["requests"] == 2


def test_an_error_after_the_reservation_went_out_releases_it(
    far: tuple[str, Any, Recording, ReserveSpy], events: list[str],
) -> None:
    url, _, clf, _ = far
    ask(url)
    clf.fail = True
    events.clear()
    r = ask(url, status=503)
    assert r.json()["error"]["message"]
    assert events[:3] == ["classify-start", "reserve-sent", "reserve-answered"]
    spend = held(url)
    assert spend["reserved_tokens"] == 0 and spend["requests"] == 1


def test_a_cache_hit_found_ahead_reserves_nothing(
    far: tuple[str, Any, Recording, ReserveSpy],
) -> None:
    url, _, _, _ = far
    question = f"probe {uuid.uuid4().hex}"
    ask(url)
    first, second = ask(url, question), ask(url, question)
    assert (first.headers["x-ttc-cache"], second.headers["x-ttc-cache"]) == ("miss", "hit")
    spend = held(url)
    assert spend["reserved_tokens"] == 0 and spend["requests"] == 2


def test_near_a_cap_the_plain_order_runs(
    redis_url: str, tmp_path: Path, events: list[str],
) -> None:
    clf = Recording(events, delay_s=0.0)
    cap = 50_000
    call = Call(endpoint="chat", model="ttc-auto", max_tokens=8,
                messages=(Message("user", uuid.uuid4().hex),))
    policy = parse_policy(POLICY.format(tokens=cap)).policy
    assert cap < ahead.HEADROOM * ahead.bound(policy, call)[1]  # under the headroom
    for url, app in serve(redis_url, tmp_path, POLICY.format(tokens=cap), clf):
        spy = ReserveSpy(app.state.ttc.budgets, events)
        for _ in range(3):
            ask(url)
        assert [len(o) for o in spy.offered] == [4, 4, 4]


def test_the_bound_is_at_least_every_plan_the_request_can_get() -> None:
    policy = parse_policy(POLICY.format(tokens=10**9)).policy
    tenant = Tenant("default", None)
    call = Call(endpoint="chat", model="ttc-auto", max_tokens=8,
                messages=(Message("user", "What is 12 * 7? " * 20),))
    memo: dict[tuple[object, ...], tuple[float, int]] = {}
    usd, tokens = ahead.bound(policy, call, memo)
    for tier in Tier:
        for task in (None, "maths", "code"):
            scores = TierScores(tuple(1.0 if t is tier else 0.0 for t in Tier), tier, 1.0,
                                task=task, task_confidence=1.0)
            p = plan(policy, tenant, call, scores)
            assert p.worst_usd <= usd and p.worst_tokens <= tokens
    assert list(memo.values()) == [(usd, tokens)]  # memoised
    assert ahead.bound(policy, call, memo) == (usd, tokens)
