"""Three replicas, one Redis, one tenant cap: with a judge on a dear model and an escalation to
a dearer one in the plans, the tenant's committed spend never passes the cap, and it is exactly
what the upstreams of every replica reported, each model at its own price (verifier calls and
escalations are part of the spend the cap holds)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.upstreams.base import Capabilities, GenerationRequest
from router.upstreams.scripted import ScriptedUpstream

CAP_USD = 0.5
PRICES = {"small": (1.0, 2.0), "big": (10.0, 40.0), "judge": (5.0, 80.0)}
POLICY = f"""
models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: s
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
  big:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: b
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 10.0, output_per_mtok: 40.0}}
  judge:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: j
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 5.0, output_per_mtok: 80.0}}
verifiers:
  judge: {{kind: llm_judge, model: judge}}
tiers:
  easy: {{strategy: best_of_n, model: small, verifier: judge, max_tokens: 16,
          params: {{n: 3}}}}
  medium: {{strategy: cascade, model: small, verifier: judge, max_tokens: 16,
            params: {{threshold: 1.0, draft: {{strategy: greedy}},
                     escalate: {{strategy: best_of_n, model: big, params: {{n: 2}}}}}}}}
  hard: {{strategy: greedy, model: small, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: small, max_tokens: 16}}
tenants:
  default: {{allow_tier_hint: true, daily_usd: {CAP_USD}}}
anonymous_tenant: default
budgets: {{on_exceeded: reject, reservation_ttl_s: 60}}
cache: {{enabled: false}}
"""


def handler(counter: Iterator[int]) -> object:
    def reply(request: GenerationRequest) -> str:  # every call writes its full limit
        return "\n\n".join(f"s{next(counter)}" for _ in range(max(1, request.max_tokens)))

    return reply


@pytest.fixture()
def replicas(
    redis_url: str, tmp_path: Path
) -> Iterator[tuple[list[str], list[dict[str, ScriptedUpstream]]]]:
    from router.app import create_app
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    prefix = f"ttc-test-{uuid.uuid4().hex[:8]}:"  # one Redis namespace: the replicas share it
    counter = itertools.count()
    caps = Capabilities(chat=True, completions=True, n=True)
    upstreams = [{name: ScriptedUpstream(handler(counter), capabilities=caps)  # type: ignore[arg-type]
                  for name in PRICES} for _ in range(3)]
    servers = []
    try:
        for i, ups in enumerate(upstreams):
            settings = Settings(policy_path=policy, redis_url=redis_url, redis_prefix=prefix,
                                data_dir=tmp_path / f"r{i}", admin_token="secret")
            app = create_app(settings, upstreams=ups, classifier=FixedClassifier(Tier.EASY))
            servers.append(ServerThread(app).__enter__())
        yield [s.url for s in servers], upstreams
    finally:
        for s in servers:
            s.__exit__(None, None, None)


def test_cap_holds_across_replicas_with_verifier_and_escalation_spend(
    replicas: tuple[list[str], list[dict[str, ScriptedUpstream]]],
) -> None:
    urls, upstreams = replicas

    def one(i: int) -> httpx.Response:
        return httpx.post(
            f"{urls[i % 3]}/v1/chat/completions", timeout=60,
            headers={"x-ttc-tier": "easy" if i % 2 else "medium"},
            json={"model": "ttc-auto", "messages": [{"role": "user", "content": f"q{i}: 6*7?"}]},
        )

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(60)))
    ok = [r for r in answers if r.status_code == 200]
    assert ok and any(r.status_code == 429 for r in answers), [r.status_code for r in answers]
    assert all(r.status_code in (200, 429) for r in answers)
    spend = httpx.get(f"{urls[0]}/admin/spend", params={"tenant": "default"},
                      headers={"authorization": "Bearer secret"}, timeout=30).json()
    assert spend["usd"] <= CAP_USD and spend["reserved_usd"] == 0
    reported = sum(
        (up.usage.prompt_tokens * PRICES[name][0] + up.usage.completion_tokens * PRICES[name][1])
        / 1e6 for ups in upstreams for name, up in ups.items())
    judged = sum(ups["judge"].usage.completion_tokens for ups in upstreams)
    escalated = sum(ups["big"].usage.completion_tokens for ups in upstreams)
    assert judged > 0 and escalated > 0  # verifier calls and escalations were made and billed
    # settle rounds each request up to the micro-dollar (1e-9: the float sum's own slop)
    assert reported - 1e-9 <= spend["usd"] <= reported + len(ok) * 1e-6
    assert spend["usd"] == pytest.approx(sum(r.json()["ttc"]["cost_usd"] for r in ok), abs=1e-4)
