"""Settled <= reserved, for every strategy: over HTTP, on scripted upstreams that always write
as much as they are allowed (every call returns its full `max_tokens`, answers that never
agree, so no vote stops early), the cost and tokens a request settles never exceed the
worst case the planner reserved for it. Prices differ per model (a dear judge, a dear
escalation model, a priced PRM service), so a call billed at the wrong price shows up too."""

from __future__ import annotations

import itertools
import json
import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import TIERS, FixedClassifier, Tier, TierScores
from policies.loader import load_policy
from router.planning import Call, plan
from router.tenancy import Tenant
from router.upstreams.base import Capabilities, GenerationRequest, Message
from router.upstreams.scripted import ScriptedUpstream

MODELS = """
models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: s
    capabilities: {chat: true, completions: true, n: true, prefill: true, logprobs: true}
    price: {input_per_mtok: 1.0, output_per_mtok: 2.0}
  big:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: b
    capabilities: {chat: true, completions: true, n: true, prefill: true, thinking: true}
    price: {input_per_mtok: 10.0, output_per_mtok: 40.0}
  judge:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: j
    capabilities: {chat: true, completions: true, n: true}
    price: {input_per_mtok: 5.0, output_per_mtok: 80.0}
verifiers:
  judge: {kind: llm_judge, model: judge}
  roll: {kind: rollout, options: {model: judge, k: 2, max_tokens: 12}}
  prm: {kind: prm_http, options: {url: "PRM_URL", model: prm},
        price: {input_per_mtok: 30.0, output_per_mtok: 0.0}}
tenants:
  default: {allow_tier_hint: true}
anonymous_tenant: default
cache: {enabled: false}
budgets: {on_exceeded: reject, reservation_ttl_s: 300}
"""
SAMPLING = """
tiers:
  easy: {strategy: greedy, model: big, max_tokens: 24, deadline_s: 20}
  medium: {strategy: self_consistency, model: small, verifier: judge, max_tokens: 16,
           deadline_s: 20, params: {n: 4, round_size: 2, temperature: 0.7}}
  hard: {strategy: best_of_n, model: small, verifier: judge, max_tokens: 16, deadline_s: 20,
         params: {n: 3, temperature: 0.7}}
  very_hard: {strategy: thinking, model: big, max_tokens: 32, deadline_s: 20,
              params: {budget_tokens: 20, mode: native}}
"""
SEARCH = """
tiers:
  easy: {strategy: beam_search, model: small, verifier: roll, max_tokens: 16, deadline_s: 20,
         params: {width: 2, expansions: 2, max_depth: 3, step_max_tokens: 8}}
  medium: {strategy: dvts, model: small, verifier: judge, max_tokens: 16, deadline_s: 20,
           params: {n: 4, width: 2, expansions: 2, max_depth: 3, step_max_tokens: 8}}
  hard: {strategy: mcts, model: small, verifier: judge, max_tokens: 16, deadline_s: 20,
         params: {simulations: 4, branching: 2, max_depth: 3, step_max_tokens: 8}}
  very_hard: {strategy: thinking, model: small, max_tokens: 16, deadline_s: 20,
              params: {budget_tokens: 24, mode: force, answer_max_tokens: 8}}
"""
COMPOSITE = """
tiers:
  easy: {strategy: draft_target, model: big, max_tokens: 16, deadline_s: 20,
         params: {draft_model: small, max_depth: 3, step_max_tokens: 8}}
  medium: {strategy: cascade, model: small, verifier: judge, max_tokens: 16, deadline_s: 20,
           params: {threshold: 1.0, draft: {strategy: greedy},
                    escalate: {strategy: best_of_n, model: big, params: {n: 3}}}}
  hard: {strategy: decompose, model: big, max_tokens: 16, deadline_s: 20,
         params: {max_parts: 3, plan_max_tokens: 24,
                  sub: {strategy: self_consistency, model: small, params: {n: 3}}}}
  very_hard: {strategy: greedy, model: small, max_tokens: 16, deadline_s: 20}
"""
PRM = """
tiers:
  easy: {strategy: best_of_n, model: small, verifier: prm, max_tokens: 16, deadline_s: 20,
         params: {n: 3, temperature: 0.7}}
  medium: {strategy: beam_search, model: small, verifier: prm, max_tokens: 16, deadline_s: 20,
           params: {width: 2, expansions: 2, max_depth: 3, step_max_tokens: 8}}
  hard: {strategy: dvts, model: big, verifier: prm, max_tokens: 16, deadline_s: 20,
         params: {n: 4, width: 2, expansions: 2, max_depth: 3, step_max_tokens: 8}}
  very_hard: {strategy: mcts, model: small, verifier: prm, max_tokens: 16, deadline_s: 20,
              params: {simulations: 4, branching: 2, max_depth: 3, step_max_tokens: 8}}
"""
POLICIES = {"sampling": SAMPLING, "search": SEARCH, "composite": COMPOSITE, "prm": PRM}
PRICES = {"small": (1.0, 2.0), "big": (10.0, 40.0), "judge": (5.0, 80.0)}  # in, out per Mtok
PRM_PRICE = 30.0  # per Mtok of what the PRM reads


class PRMApp:
    """vLLM's pooling API: a neutral score per step tag, and `usage.prompt_tokens` at 3
    characters a token of the text it read (the planner's own estimate rate)."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        messages = json.loads(body)["messages"]
        tokens = math.ceil(sum(len(m["content"]) for m in messages) / 3)
        with self.lock:
            self.prompt_tokens += tokens
        steps = messages[-1]["content"].count("<extra_0>")
        reply = {"data": [{"index": 0, "data": [[0.5, 0.5]] * max(1, steps)}],
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})
QUESTION = "A train leaves at 3 pm at 60 km/h; another at 4 pm at 80 km/h. When do they meet?"


def full_length(counter: Iterator[int]) -> Any:
    """Every reply uses all the tokens the call allows, each token a step of its own (a judge
    rating each step makes a call per token), with no final-answer marker (a search runs to
    its full depth) and never the same answer twice (no vote stops early). A planning call
    (decompose) gets a list of parts, so the composite path runs in full."""

    def handler(request: GenerationRequest) -> str:
        size = max(1, request.max_tokens)
        text = " ".join(m.content for m in request.messages) + (request.prompt or "")
        if "sub-problems" in text.lower() or "json" in text.lower():
            parts = '["part one", "part two", "part three"]'
            return " ".join([parts] + ["x"] * (size - 1))
        return "\n\n".join(f"s{next(counter)}" for _ in range(size))

    return handler


def scripted(caps: Capabilities, counter: Iterator[int]) -> ScriptedUpstream:
    # prompt tokens at 3 characters a token: exactly the planner's own estimate rate
    return ScriptedUpstream(full_length(counter), capabilities=caps, chars_per_token=3.0)


Service = tuple[str, Path, dict[str, ScriptedUpstream], PRMApp]


@pytest.fixture(scope="module", params=sorted(POLICIES))
def service(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    from router.app import create_app
    from router.settings import Settings

    prm = PRMApp()
    tmp = tmp_path_factory.mktemp(f"bound-{request.param}")
    policy = tmp / "policy.yaml"
    counter = itertools.count()
    upstreams = {
        "small": scripted(Capabilities(chat=True, completions=True, n=True, prefill=True,
                                       logprobs=True), counter),
        "big": scripted(Capabilities(chat=True, completions=True, n=True, prefill=True,
                                     thinking=True), counter),
        "judge": scripted(Capabilities(chat=True, completions=True, n=True), counter),
    }
    settings = Settings(policy_path=policy, redis_url=redis_url,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:", data_dir=tmp)
    with ServerThread(prm) as prm_server:
        policy.write_text((MODELS + POLICIES[request.param]).replace("PRM_URL", prm_server.url))
        app = create_app(settings, upstreams=upstreams, classifier=FixedClassifier(Tier.EASY))
        with ServerThread(app) as server:
            yield server.url, policy, upstreams, prm


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("tier", [t.value for t in TIERS])
def test_settled_never_exceeds_reserved(
    service: Service, tier: str, n: int
) -> None:
    url, policy_path, upstreams, prm = service
    before = {name: up.usage for name, up in upstreams.items()}
    prm_before = prm.prompt_tokens
    body = {"model": "ttc-auto", "n": n, "messages": [{"role": "user", "content": QUESTION}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body,
                   headers={"x-ttc-tier": tier, "x-ttc-trace": "1"}, timeout=60)
    assert r.status_code == 200, r.text
    ttc, usage = r.json()["ttc"], r.json()["usage"]
    policy = load_policy(policy_path).policy
    call = Call(endpoint="chat", model="ttc-auto", messages=(Message("user", QUESTION),), n=n,
                tier_hint=tier)
    scores = TierScores.from_probabilities([1.0, 0.0, 0.0, 0.0])
    reserved = plan(policy, Tenant("default", policy.tenant("default")), call, scores)
    assert reserved.strategy == ttc["strategy"]
    if n == 1:  # the dry run prices the same plan
        dry = httpx.post(f"{url}/v1/route", json={"messages": body["messages"]},
                         headers={"x-ttc-tier": tier}, timeout=30).json()
        assert dry["estimated_worst_case_usd"] == pytest.approx(reserved.worst_usd)
        assert dry["estimated_worst_case_tokens"] == reserved.worst_tokens
    what = f"{ttc['strategy']}: settled {ttc['cost_usd']} USD / {usage['total_tokens']} tokens, " \
           f"reserved {reserved.worst_usd} / {reserved.worst_tokens}"
    assert usage["total_tokens"] > 0, what
    assert ttc["cost_usd"] <= reserved.worst_usd, what
    assert usage["total_tokens"] <= reserved.worst_tokens, what
    # every call billed at the price of the model that served it (judge, escalation, draft),
    # from what each upstream reported for this request
    expected = 0.0
    for name, up in upstreams.items():
        spent = [after - was for after, was in zip(
            (up.usage.prompt_tokens, up.usage.completion_tokens),
            (before[name].prompt_tokens, before[name].completion_tokens), strict=True)]
        expected += (spent[0] * PRICES[name][0] + spent[1] * PRICES[name][1]) / 1e6
    prm_tokens = prm.prompt_tokens - prm_before  # the PRM service, at its policy price
    assert (prm_tokens > 0) == (reserved.verifier == "prm"), what
    expected += prm_tokens * PRM_PRICE / 1e6
    # the call log: every call, at its price, sums to what was billed, and holds exactly the
    # tokens each upstream (and the PRM) reported for this request
    log = ttc["call_log"]
    assert ttc["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in log), abs=1e-8), what
    for name, up in upstreams.items():
        logged = [c for c in log if c["model"] == name]
        assert sum(c["prompt_tokens"] for c in logged) == (
            up.usage.prompt_tokens - before[name].prompt_tokens), (name, what)
        assert sum(c["completion_tokens"] for c in logged) == (
            up.usage.completion_tokens - before[name].completion_tokens), (name, what)
        assert all(c["stage"] in ("generation", "verifier:judge", "verifier:roll")
                   for c in logged), what
    assert sum(c["prompt_tokens"] for c in log if c["model"] == "verifier:prm") == prm_tokens
    assert ttc["cost_usd"] == pytest.approx(expected, abs=2e-6), what
