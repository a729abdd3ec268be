"""Task-type overrides, the interactive latency class and the LLM classifier fallback, through
HTTP against the stub upstream (the fallback model is the stub, scripted per test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import TIERS, TierScores
from policies.loader import PolicyValidationError, parse_policy

POLICY = """
models:
  stub:
    provider: openai
    base_url: {base}/v1
    model: stub
    capabilities: {{chat: true, completions: true, n: true}}
    timeout_s: 5
    max_retries: 0
classifier: {{confidence_threshold: 0.5, fallback_model: stub, fallback_timeout_s: 0.5}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: 10}}
  medium: {{strategy: self_consistency, params: {{n: 3}}, model: stub, max_tokens: 64,
           deadline_s: 10}}
  hard: {{strategy: best_of_n, params: {{n: 3}}, model: stub, max_tokens: 64, deadline_s: 10}}
  very_hard: {{strategy: best_of_n, params: {{n: 4}}, model: stub, max_tokens: 64,
              deadline_s: 10}}
tasks:
  creative: {{strategy: greedy}}
  code: {{max_tokens: 32, min_confidence: 0.6}}
latency:
  interactive: {{deadline_s: 2, strategies: [greedy]}}
cache: {{enabled: false}}
"""
SURE = (0.02, 0.03, 0.9, 0.05)  # hard, confidently: no fallback
UNSURE = (0.3, 0.25, 0.25, 0.2)  # easy by a hair: below the 0.5 threshold


class TextClassifier:
    """Tier and task chosen from the text: "[task:conf] [unsure] ..." (ours, not a mock)."""

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        out = []
        for text in texts:
            probs = UNSURE if "unsure" in text else SURE
            scores = TierScores.from_probabilities(probs, source="test/text")
            if text.startswith("["):
                task, conf = text[1 : text.index("]")].split(":")
                scores = replace(scores, task=task, task_confidence=float(conf))
            out.append(scores)
        return out


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[str, StubUpstream]
]:
    from router.app import create_app
    from router.settings import Settings

    stub = StubUpstream(answer="hard")
    with ServerThread(stub) as upstream:
        tmp = tmp_path_factory.mktemp("overrides")
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY.format(base=upstream.url))
        settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp,
                            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:")
        app = create_app(settings, classifier=TextClassifier())
        with ServerThread(app) as server:
            yield server.url, stub


def route(url: str, text: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/route", json={"input": text}, headers=headers, timeout=10)


def test_task_override_applies_after_the_tier_and_shows_everywhere(
    served: tuple[str, StubUpstream],
) -> None:
    url, _ = served
    r = route(url, "[creative:0.9] Write a sonnet about autumn rain.")
    body = r.json()
    assert body["tier"] == "hard" and body["task"] == "creative"
    assert body["strategy"] == "greedy" and body["params"] == {}
    assert r.headers["x-ttc-task"] == "creative"
    assert body["overrides"] and body["overrides"][0].startswith("task creative: best_of_n")
    # the reservation prices the plan that runs: one sample, not best_of_n's three
    plain = route(url, "[maths:0.9] Write a sonnet about autumn rain.").json()
    assert plain["strategy"] == "best_of_n" and plain["overrides"] == []
    assert body["estimated_worst_case_tokens"] < plain["estimated_worst_case_tokens"]


def test_task_override_needs_the_task_heads_confidence(served: tuple[str, StubUpstream]) -> None:
    url, _ = served
    sure = route(url, "[code:0.9] Implement an LRU cache in Rust.").json()
    unsure = route(url, "[code:0.3] Implement an LRU cache in Rust.").json()
    assert sure["max_tokens"] == 32 and sure["strategy"] == "best_of_n"
    assert unsure["max_tokens"] == 64 and unsure["overrides"] == []


def test_chat_completion_carries_task_in_header_and_ttc(served: tuple[str, StubUpstream]) -> None:
    url, _ = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="ttc-auto", messages=[{"role": "user", "content": "[creative:0.8] A haiku, please"}]
    )
    ttc = raw.parse().model_extra["ttc"]  # type: ignore[index]
    assert raw.headers["x-ttc-task"] == "creative" and ttc["task"] == "creative"
    assert raw.headers["x-ttc-strategy"] == "greedy" and ttc["overrides"]


def test_interactive_requests_are_capped_and_say_so(served: tuple[str, StubUpstream]) -> None:
    url, _ = served
    r = route(url, "[maths:0.9] Prove it.", **{"x-ttc-latency": "interactive"})
    body = r.json()
    assert body["tier"] == "hard" and body["latency"] == "interactive"
    assert body["strategy"] == "greedy" and body["deadline_s"] == 2
    assert any(n.startswith("latency interactive: best_of_n") for n in body["overrides"])
    # metadata works on the chat endpoint, and an unknown class is a 400 naming the field
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="ttc-auto", messages=[{"role": "user", "content": "Prove it."}],
        metadata={"ttc_latency": "interactive"},
    )
    assert raw.headers["x-ttc-strategy"] == "greedy"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="ttc-auto", messages=[{"role": "user", "content": "hi"}],
            metadata={"ttc_latency": "instant"},
        )
    assert err.value.body["param"] == "metadata.ttc_latency"  # type: ignore[index]
    bad = route(url, "hi", **{"x-ttc-latency": "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-ttc-latency"


def _fallback_count(url: str, outcome: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f'ttc_classifier_fallback_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_fallback_asks_the_model_when_unsure_answers_each_tier_and_caches(
    served: tuple[str, StubUpstream],
) -> None:
    url, stub = served
    stub.delay_s = 0.0
    for tier in TIERS:
        stub.answer = tier.value
        text = f"unsure {tier.value} {uuid.uuid4().hex}"
        before = stub.requests
        body = route(url, text).json()
        assert body["classifier_source"] == "llm" and body["tier"] == tier.value, body
        assert stub.requests == before + 1
        # the same text again: the cached answer, no second call
        again = route(url, text).json()
        assert again["tier"] == tier.value and stub.requests == before + 1
    # a confident embedding score never asks
    before = stub.requests
    assert route(url, "confident question").json()["classifier_source"] == "test/text"
    assert stub.requests == before
    assert _fallback_count(url, "agree") + _fallback_count(url, "disagree") >= len(TIERS)


def test_fallback_timeout_keeps_the_embedding_tier_and_is_counted(
    served: tuple[str, StubUpstream],
) -> None:
    url, stub = served
    before = _fallback_count(url, "timeout")
    stub.answer, stub.delay_s = "very_hard", 2.0  # past the policy's 0.5 s fallback timeout
    try:
        text = f"unsure slow {uuid.uuid4().hex}"
        body = route(url, text).json()
        assert body["fallback_note"] == "timeout" and body["tier"] == "easy"
        assert body["classifier_source"] == "test/text" and body["classify_ms"] < 1500
        assert _fallback_count(url, "timeout") == before + 1
    finally:
        stub.delay_s = 0.0


def test_policy_validation_names_bad_overrides(tmp_path: Path) -> None:
    text = POLICY.format(base="http://127.0.0.1:9").replace(
        "creative: {strategy: greedy}", "creative: {strategy: telepathy, model: nowhere}"
    ).replace("strategies: [greedy]", "strategies: [greedy, warp]")
    with pytest.raises(PolicyValidationError) as err:
        parse_policy(text, "p.yaml")
    msg = str(err.value)
    assert "tasks.creative.strategy: unknown strategy 'telepathy'" in msg
    assert "tasks.creative.model: unknown model 'nowhere'" in msg
    assert "latency.interactive.strategies[1]: unknown strategy 'warp'" in msg
    bad_task = POLICY.format(base="http://127.0.0.1:9").replace("creative:", "poetry:")
    with pytest.raises(PolicyValidationError, match=r"tasks\.poetry"):
        parse_policy(bad_task, "p.yaml")


def test_default_policy_keeps_search_away_from_writing_recall_and_chat() -> None:
    from policies.loader import load_policy
    from router.overrides import effective_plan

    policy = load_policy(None).policy
    for tier in TIERS:
        for task in ("creative", "rewrite", "factual", "chat", "other"):
            scores = replace(TierScores.from_probabilities(SURE), task=task, task_confidence=0.4)
            assert effective_plan(policy, tier, None, scores)[0].strategy == "greedy"
        maths = replace(TierScores.from_probabilities(SURE), task="maths", task_confidence=0.9)
        tp, notes = effective_plan(policy, tier, None, maths)
        assert tp == policy.tiers[tier] and notes == ()
        assert effective_plan(policy, tier, "interactive", maths)[0].strategy == "greedy"
