"""Over HTTP: the LLM classifier fallback's call is billed to the tenant at the fallback
model's price, and the reservation covers it (the call precedes the plan, so the plan's worst
case carries its actual cost)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from router.upstreams.base import Usage
from router.upstreams.scripted import ScriptedUpstream

POLICY = """
models:
  gen:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: g
    capabilities: {chat: true, completions: true}
    price: {input_per_mtok: 1.0, output_per_mtok: 2.0}
  rater:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: r
    capabilities: {chat: true, completions: true}
    price: {input_per_mtok: 300.0, output_per_mtok: 900.0}
classifier: {fallback_model: rater, confidence_threshold: 0.9}
tiers:
  easy: {strategy: greedy, model: gen, max_tokens: 16}
  medium: {strategy: greedy, model: gen, max_tokens: 16}
  hard: {strategy: greedy, model: gen, max_tokens: 16}
  very_hard: {strategy: greedy, model: gen, max_tokens: 16}
cache: {enabled: false}
"""
GEN, RATER = (1.0, 2.0), (300.0, 900.0)


def cost(u: Usage, price: tuple[float, float]) -> float:
    return (u.prompt_tokens * price[0] + u.completion_tokens * price[1]) / 1e6


def delta(after: Usage, before: Usage) -> Usage:
    return Usage(after.prompt_tokens - before.prompt_tokens,
                 after.completion_tokens - before.completion_tokens)


@pytest.fixture()
def service(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, ScriptedUpstream,
                                                              ScriptedUpstream]]:
    from router.app import UnavailableClassifier, create_app
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    gen = ScriptedUpstream(lambda r: "four", name="gen")
    rater = ScriptedUpstream(lambda r: "hard", name="rater")
    settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:", admin_token="s")
    # uniform scores (confidence 0.25 < 0.9): every new query goes to the fallback
    app = create_app(settings, upstreams={"gen": gen, "rater": rater},
                     classifier=UnavailableClassifier())
    with ServerThread(app) as server:
        yield server.url, gen, rater


def test_the_fallback_call_is_billed_at_its_models_price(
    service: tuple[str, ScriptedUpstream, ScriptedUpstream],
) -> None:
    url, gen, rater = service
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "What is 2+2?"}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"x-ttc-trace": "1"},
                   timeout=30)
    assert r.status_code == 200, r.text
    ttc = r.json()["ttc"]
    assert ttc["classifier_source"] == "llm" and rater.usage.calls == 1
    expected = cost(gen.usage, GEN) + cost(rater.usage, RATER)
    assert cost(rater.usage, RATER) > 0
    assert ttc["cost_usd"] == pytest.approx(expected, abs=1e-8)
    # the call log: the classifier's call and the generation, each at its model's price
    log = {(c["model"], c["stage"]): c for c in ttc["call_log"]}
    assert set(log) == {("rater", "classifier"), ("gen", "generation")}
    assert log[("rater", "classifier")]["cost_usd"] == pytest.approx(cost(rater.usage, RATER))
    assert ttc["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in log.values()), abs=1e-8)
    spend = httpx.get(f"{url}/admin/spend", params={"tenant": "default"},
                      headers={"authorization": "Bearer s"}, timeout=30).json()
    assert spend["usd"] == pytest.approx(expected, abs=2e-6)  # what the tenant pays

    # the same query again: the fallback answers from its cache, no call, nothing billed
    gen_before, rater_before = gen.usage, rater.usage
    again = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30).json()["ttc"]
    assert rater.usage == rater_before
    assert again["cost_usd"] == pytest.approx(cost(delta(gen.usage, gen_before), GEN), abs=1e-8)
