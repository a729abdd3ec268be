"""Over HTTP: a non-streaming call the deadline cuts before it reports its usage is billed an
estimate (its prompt at 3 characters a token plus its full max_tokens), stated in the notes
and the call log, and charged to the tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.calllog import CUT_NOTE, estimate
from router.upstreams.base import Price
from router.upstreams.scripted import ScriptedUpstream

POLICY = """
models:
  slow:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: s
    capabilities: {chat: true, completions: true}
    price: {input_per_mtok: 100.0, output_per_mtok: 1000.0}
  fast:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: f
    capabilities: {chat: true, completions: true}
    price: {input_per_mtok: 100.0, output_per_mtok: 1000.0}
tenants:
  default: {allow_tier_hint: true}
anonymous_tenant: default
tiers:
  easy: {strategy: greedy, model: slow, max_tokens: 16, deadline_s: 0.3}
  medium: {strategy: greedy, model: fast, max_tokens: 16, deadline_s: 5}
  hard: {strategy: cascade, model: fast, max_tokens: 16, deadline_s: 0.5,
         params: {draft: {strategy: greedy}, escalate: {strategy: greedy, model: slow}}}
  very_hard: {strategy: greedy, model: fast, max_tokens: 16}
cache: {enabled: false}
"""
PRICE = Price(100.0, 1000.0)


@pytest.fixture()
def service(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, ScriptedUpstream]]:
    from router.app import create_app
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    slow = ScriptedUpstream(lambda r: "late", name="slow", delay_s=3.0)
    fast = ScriptedUpstream(lambda r: "four", name="fast")
    settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:", admin_token="s")
    app = create_app(settings, upstreams={"slow": slow, "fast": fast},
                     classifier=FixedClassifier(Tier.EASY))
    with ServerThread(app) as server:
        yield server.url, slow


def test_a_call_cut_at_the_deadline_is_billed_an_estimate(
    service: tuple[str, ScriptedUpstream],
) -> None:
    url, slow = service
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "What is 2+2?"}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 504, r.text  # the deadline passed before any answer
    assert slow.usage.calls == 0 and len(slow.requests) == 1  # it ran, and reported nothing
    guess = estimate(slow.requests[0])
    assert guess.completion_tokens == 16 and guess.prompt_tokens > 0
    assert float(r.headers["x-ttc-cost-usd"]) == pytest.approx(PRICE.cost(guess), abs=1e-8)
    spend = httpx.get(f"{url}/admin/spend", params={"tenant": "default"},
                      headers={"authorization": "Bearer s"}, timeout=30).json()
    assert spend["usd"] == pytest.approx(PRICE.cost(guess), abs=2e-6)
    assert spend["tokens"] == guess.prompt_tokens + guess.completion_tokens

    # a call that reports its usage is billed what it reported, with no estimate note
    ok = httpx.post(f"{url}/v1/chat/completions", json=body,
                    headers={"x-ttc-tier": "medium", "x-ttc-trace": "1"}, timeout=30)
    ttc = ok.json()["ttc"]
    assert ok.status_code == 200 and CUT_NOTE not in ttc["notes"]
    assert [c["estimated"] for c in ttc["call_log"]] == [False]


def test_an_answer_after_a_cut_call_states_the_estimate(
    service: tuple[str, ScriptedUpstream],
) -> None:
    """A cascade drafts on the fast model, escalates to the slow one, and the deadline cuts
    the escalation: the client gets the draft, the notes say a call was estimated, and the
    call log holds the draft as reported and the escalation as estimated, summing to the
    cost."""
    url, slow = service
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "What is 3+3?"}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body,
                   headers={"x-ttc-tier": "hard", "x-ttc-trace": "1"}, timeout=30)
    assert r.status_code == 200, r.text
    ttc = r.json()["ttc"]
    assert r.json()["choices"][0]["message"]["content"] == "four"  # the draft
    assert CUT_NOTE in ttc["notes"]
    log = {(c["model"], c["estimated"]): c for c in ttc["call_log"]}
    assert set(log) == {("fast", False), ("slow", True)}
    guess = estimate(slow.requests[-1])
    assert log[("slow", True)]["cost_usd"] == pytest.approx(PRICE.cost(guess))
    assert ttc["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in log.values()), abs=1e-8)
