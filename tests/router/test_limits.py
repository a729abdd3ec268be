"""Deadlines and limits through the HTTP API (issue 11), on the stub upstream with faults:

- a deadline before any output is a 504 `deadline_exceeded`, never an empty 200; after some
  output it is the best answer with `finish_reason: deadline`, `x-ttc-truncated: deadline` and
  `ttc.anytime` (OpenAI and Anthropic, plain and streamed, through the official clients);
- the request's `max_tokens` reaches step-level strategies;
- errors raised after routing (429, 502, 504) and the dry run carry the `x-ttc-*` headers;
- a prompt that cannot fit the model's context window is a 400 before any upstream call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier
from tests.router.conftest import sha

TIGHT_KEY = "sk-limits-tight"
OPEN_KEY = "sk-limits-open"  # the SDKs always send a key; a keyed tenant set refuses unknown ones
POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, max_retries: 0, timeout_s: 10,
          capabilities: {{chat: true, completions: true, n: true}},
          price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  tiny: {{provider: openai, base_url: "{stub}/v1", model: stub, max_retries: 0,
          context_tokens: 50, capabilities: {{chat: true}}}}
verifiers:
  rollouts: {{kind: rollout, model: stub, options: {{k: 1, max_tokens: 4}}}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 32, deadline_s: 1}}
  medium: {{strategy: self_consistency, model: stub, max_tokens: 32, deadline_s: 1,
           params: {{n: 3, adaptive: true, round_size: 1, min_samples: 3}}}}
  hard: {{strategy: greedy, model: tiny, max_tokens: 32}}
  very_hard: {{strategy: beam_search, model: stub, verifier: rollouts, max_tokens: 64,
              params: {{width: 1, expansions: 1, max_depth: 3, step_max_tokens: 64}}}}
tenants:
  default: {{api_key_sha256: ["{open}"], allow_tier_hint: true}}
  tight: {{api_key_sha256: ["{tight}"], daily_usd: 0.0000001}}
anonymous_tenant: default
cache: {{enabled: false}}
"""
ROUTED = ("x-request-id", "x-ttc-tier", "x-ttc-strategy", "x-ttc-confidence", "x-ttc-model",
          "x-ttc-cost-usd", "x-ttc-overhead-ms", "x-ttc-cache", "x-ttc-policy-revision")


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    from router.app import create_app
    from router.settings import Settings

    stub = StubUpstream()
    with ServerThread(stub) as upstream:
        tmp = tmp_path_factory.mktemp("limits")
        policy = tmp / "policy.yaml"
        policy.write_text(
            POLICY.format(stub=upstream.url, tight=sha(TIGHT_KEY), open=sha(OPEN_KEY))
        )
        settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp,
                            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:")
        app = create_app(settings, classifier=FixedClassifier(Tier.EASY))
        with ServerThread(app) as server:
            yield server.url, stub


def _control(served: tuple[str, Any], **cmd: Any) -> None:
    _, stub = served
    stub.fault = cmd.get("fault", "ok")
    stub.fault_count = int(cmd.get("count", 1))
    stub.fault_after = int(cmd.get("after", 0))


def _assert_routed(headers: httpx.Headers | Any, tier: str) -> None:
    for name in ROUTED:
        assert headers.get(name), f"{name} missing: {dict(headers)}"
    assert headers["x-ttc-tier"] == tier


def _chat(url: str, tier: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
        "model": f"ttc-{tier}", "messages": [{"role": "user", "content": "What is 6*7?"}], **extra})


# --- the deadline contract -------------------------------------------------------------------


def test_deadline_before_any_output_is_a_504_not_an_empty_200(served: tuple[str, Any]) -> None:
    url, _ = served
    _control(served, fault="hang", count=1)
    r = _chat(url, "easy")
    assert r.status_code == 504, r.text
    error = r.json()["error"]
    assert error["code"] == "deadline_exceeded" and "tiers.easy.deadline_s" in error["message"]
    _assert_routed(r.headers, "easy")


def test_anthropic_deadline_before_any_output_is_a_504(served: tuple[str, Any]) -> None:
    url, _ = served
    _control(served, fault="hang", count=1)
    client = anthropic.Anthropic(base_url=url, api_key=OPEN_KEY, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="ttc-easy", max_tokens=16,
                               messages=[{"role": "user", "content": "What is 6*7?"}])
    assert caught.value.status_code == 504
    assert "deadline" in str(caught.value)
    _assert_routed(caught.value.response.headers, "easy")


def test_deadline_after_some_output_returns_it_marked(served: tuple[str, Any]) -> None:
    url, stub = served
    _control(served, fault="hang", count=5, after=1)  # the first of three rounds answers
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=OPEN_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="ttc-medium", messages=[{"role": "user", "content": "What is 6*7?"}])
    choice = raw.parse().choices[0]
    assert choice.message.content == stub.answer
    assert str(choice.finish_reason) == "deadline"  # outside the SDK's Literal, on purpose
    assert raw.headers["x-ttc-truncated"] == "deadline"
    ttc = raw.http_response.json()["ttc"]
    assert ttc["anytime"] is True and ttc["stopped"] == "deadline"


def test_anthropic_deadline_after_some_output_says_deadline(served: tuple[str, Any]) -> None:
    url, stub = served
    _control(served, fault="hang", count=5, after=1)
    client = anthropic.Anthropic(base_url=url, api_key=OPEN_KEY, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="ttc-medium", max_tokens=32, messages=[{"role": "user", "content": "6*7?"}])
    message = raw.parse()
    assert message.content[0].text == stub.answer  # type: ignore[union-attr]
    assert str(message.stop_reason) == "deadline"
    assert raw.headers["x-ttc-truncated"] == "deadline"


def _sse(url: str, tier: str) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30, json={
        "model": f"ttc-{tier}", "stream": True,
        "messages": [{"role": "user", "content": "What is 6*7?"}],
    }) as r:
        assert r.status_code == 200
        return [json.loads(line[6:]) for line in r.iter_lines()
                if line.startswith("data: ") and line != "data: [DONE]"]


def test_stream_cut_by_the_deadline_ends_with_finish_reason_deadline(
    served: tuple[str, Any]
) -> None:
    url, _ = served
    _control(served, fault="stall_stream", count=1)  # half the answer, then nothing
    events = _sse(url, "easy")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c["choices"])
    assert text  # what arrived before the deadline
    finishes = [c["choices"][0]["finish_reason"] for c in events if c["choices"]]
    assert finishes[-1] == "deadline"
    assert events[-1]["ttc"]["anytime"] is True and events[-1]["ttc"]["stopped"] == "deadline"
    # the upstream never reported usage: the prompt is billed at the router's estimate, and
    # the client is told
    assert any(n.startswith("usage estimated") for n in events[-1]["ttc"]["notes"]), events[-1]


def test_stream_with_no_output_before_the_deadline_ends_in_an_error_event(
    served: tuple[str, Any]
) -> None:
    url, _ = served
    _control(served, fault="hang", count=1)
    events = _sse(url, "easy")
    assert events[-1]["error"]["code"] == "deadline_exceeded", events
    assert not any(c.get("choices") and c["choices"][0]["finish_reason"] for c in events)


# --- max_tokens reaches step-level strategies -------------------------------------------------


def test_request_max_tokens_bounds_beam_search_steps(served: tuple[str, Any]) -> None:
    url, stub = served
    _control(served, fault="ok", count=0)
    seen = len(stub.bodies)
    r = _chat(url, "very-hard", max_tokens=5)
    assert r.status_code == 200, r.text
    assert r.json()["ttc"]["strategy"] == "beam_search"
    steps = [b for b in stub.bodies[seen:] if b.get("max_tokens") != 4]  # 4: the rollouts
    assert steps and all(b["max_tokens"] <= 5 for b in steps), [b["max_tokens"] for b in steps]


# --- x-ttc-* headers on errors and the dry run ------------------------------------------------


def test_budget_429_carries_the_routing_headers(served: tuple[str, Any]) -> None:
    url, _ = served
    r = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {TIGHT_KEY}"},
                   json={"model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 429, r.text
    _assert_routed(r.headers, "easy")
    assert "x-ttc-budget-remaining" in r.headers  # its own header kept


def test_upstream_502_carries_the_routing_headers(served: tuple[str, Any]) -> None:
    url, _ = served
    _control(served, fault="error500", count=1)
    r = _chat(url, "easy")
    assert r.status_code == 502, r.text
    _assert_routed(r.headers, "easy")
    assert float(r.headers["x-ttc-cost-usd"]) == 0


def test_route_dry_run_carries_every_header(served: tuple[str, Any]) -> None:
    url, _ = served
    r = httpx.post(f"{url}/v1/route", json={
        "model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200
    _assert_routed(r.headers, "easy")
    assert r.headers["x-ttc-cache"] == "bypass"


# --- the prompt against the context window ----------------------------------------------------


def test_prompt_over_the_context_window_is_refused_before_any_call(
    served: tuple[str, Any]
) -> None:
    url, stub = served
    before = stub.requests
    r = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "ttc-hard", "messages": [{"role": "user", "content": "x" * 64 * 51}]})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
    assert "models.tiny.context_tokens" in error["message"]
    assert stub.requests == before  # never sent upstream
    _assert_routed(r.headers, "hard")
    ok = httpx.post(f"{url}/v1/chat/completions", json={
        "model": "ttc-hard", "messages": [{"role": "user", "content": "x" * 64 * 49}]})
    assert ok.status_code == 200, ok.text  # under the bound: the upstream decides


def test_local_model_window_comes_from_the_llama_cpp_settings() -> None:
    from policies.loader import load_policy
    from router.limits import context_window
    from router.settings import Settings

    policy = load_policy(None).policy  # the packaged default: the embedded local model
    window = context_window(policy, "local", Settings(local_ctx_per_slot=1024, local_parallel=4))
    assert window == (4096, "TTC_LOCAL_CTX_PER_SLOT (times TTC_LOCAL_PARALLEL)")
