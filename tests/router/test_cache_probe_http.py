"""Over HTTP, on a real Redis: where the result cache is read.

Without an LLM fallback the read rides in the reservation script (no GET of its own: one
round trip for cache and reservation); with one, the cache is read before classifying, so a
hit costs no classification and no model call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier, TierScores
from router.app import UnavailableClassifier
from router.upstreams.scripted import ScriptedUpstream

POLICY = """
models:
  gen:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: g
    capabilities: {chat: true, completions: true}
  rater:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: r
    capabilities: {chat: true, completions: true}
tiers:
  easy: {strategy: greedy, model: gen, max_tokens: 16}
  medium: {strategy: greedy, model: gen, max_tokens: 16}
  hard: {strategy: greedy, model: gen, max_tokens: 16}
  very_hard: {strategy: greedy, model: gen, max_tokens: 16}
tenants:
  default: {daily_usd: 100}
"""
FALLBACK = "classifier: {fallback_model: rater, confidence_threshold: 0.9}\n"


class Counting:
    """A classifier that counts its calls (delegating to `inner`)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        self.calls += 1
        result: list[TierScores] = await self.inner.classify(texts)
        return result

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = self.inner.describe()
        return described


def serve(redis_url: str, tmp_path: Path, policy: str, classifier: Counting,
          ) -> Iterator[tuple[str, Any, ScriptedUpstream]]:
    from router.app import create_app
    from router.settings import Settings

    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    gen = ScriptedUpstream(lambda r: "four", name="gen")
    rater = ScriptedUpstream(lambda r: "hard", name="rater")
    settings = Settings(policy_path=path, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:")
    app = create_app(settings, upstreams={"gen": gen, "rater": rater}, classifier=classifier)
    with ServerThread(app) as server:
        yield server.url, app, rater


class GetSpy:
    """Counts the plain GET commands the router's Redis client sends (the client is real)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self.inner = client.get
        client.get = self

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.inner(*args, **kwargs)


def ask(url: str, content: str) -> httpx.Response:
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": content}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture()
def plain(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Any, Counting]]:
    clf = Counting(FixedClassifier(Tier.EASY))
    for url, app, _ in serve(redis_url, tmp_path, POLICY, clf):
        yield url, app, clf


@pytest.fixture()
def with_fallback(redis_url: str, tmp_path: Path
                  ) -> Iterator[tuple[str, Any, Counting, ScriptedUpstream]]:
    clf = Counting(UnavailableClassifier())  # always unsure: every new query asks the rater
    for url, app, rater in serve(redis_url, tmp_path, POLICY + FALLBACK, clf):
        yield url, app, clf, rater


def test_without_a_fallback_the_cache_read_rides_in_the_reservation(
    plain: tuple[str, Any, Counting],
) -> None:
    url, app, clf = plain
    gets = GetSpy(app.state.ttc.cache.store.client)
    question = f"probe {uuid.uuid4().hex}"
    first, second = ask(url, question), ask(url, question)
    assert (first.headers["x-ttc-cache"], second.headers["x-ttc-cache"]) == ("miss", "hit")
    assert second.json()["choices"][0]["message"]["content"] == "four"
    assert gets.calls == 0  # both reads went in the reserve script
    assert clf.calls == 2  # the price: a hit is classified before its read
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'ttc_cache_requests_total{result="hit"} 1.0' in metrics
    assert 'ttc_cache_requests_total{result="miss"} 1.0' in metrics


def test_with_a_fallback_a_hit_is_read_first_and_calls_no_model(
    with_fallback: tuple[str, Any, Counting, ScriptedUpstream],
) -> None:
    url, app, clf, rater = with_fallback
    gets = GetSpy(app.state.ttc.cache.store.client)
    question = f"probe {uuid.uuid4().hex}"
    first = ask(url, question)
    calls = rater.usage.calls
    second = ask(url, question)
    assert (first.headers["x-ttc-cache"], second.headers["x-ttc-cache"]) == ("miss", "hit")
    assert first.json()["ttc"]["classifier_source"] == "llm" and calls == 1
    assert gets.calls == 2  # a plain GET before each classification
    assert clf.calls == 1 and rater.usage.calls == calls  # the hit classified nothing


def test_a_request_counts_once_in_the_cache_metric(
    with_fallback: tuple[str, Any, Counting, ScriptedUpstream],
) -> None:
    """The read-first path counts the same way: one miss and one hit for two requests."""
    url, _, _, _ = with_fallback
    question = f"probe {uuid.uuid4().hex}"
    ask(url, question), ask(url, question)
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'ttc_cache_requests_total{result="hit"} 1.0' in metrics
    assert 'ttc_cache_requests_total{result="miss"} 1.0' in metrics
