"""Over HTTP: a strategy that calls a second policy model is billed at each model's price, and
`x-ttc-trace: 1` puts the strategy trace in `ttc`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier

POLICY = """
models:
  big:
    provider: openai
    base_url: {base}/v1
    model: stub
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 10.0, output_per_mtok: 20.0}}
  small:
    provider: openai
    base_url: {base}/v1
    model: stub
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
tiers:
  easy: {{strategy: greedy, model: big, max_tokens: 32}}
  medium:
    strategy: decompose
    model: big
    max_tokens: 32
    params: {{sub: {{strategy: self_consistency, model: small, params: {{n: 3}}}}}}
  hard: {{strategy: greedy, model: big, max_tokens: 32}}
  very_hard: {{strategy: greedy, model: big, max_tokens: 32}}
cache: {{enabled: false}}
"""


@pytest.fixture(scope="module")
def router(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from router.app import create_app
    from router.settings import Settings

    with ServerThread(StubUpstream()) as stub:
        tmp = tmp_path_factory.mktemp("billing")
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY.format(base=stub.url))
        settings = Settings(
            policy_path=policy,
            redis_url=redis_url,
            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
            data_dir=tmp,
        )
        app = create_app(settings, classifier=FixedClassifier(Tier.MEDIUM))
        with ServerThread(app) as server:
            yield server.url


def test_other_model_usage_is_billed_at_its_own_price(router: str) -> None:
    r = httpx.post(
        f"{router}/v1/chat/completions",
        headers={"x-ttc-trace": "1"},
        json={"model": "ttc-auto", "messages": [{"role": "user", "content": "What is 6*7?"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    ttc, usage = body["ttc"], body["usage"]
    # the stub's reply is no JSON list: the question runs as one, self-consistency on `small`
    small = ttc["model_usage"]["small"]
    assert small["calls"] >= 1 and ttc["calls"] == small["calls"] + 1  # + the planner on `big`
    big_prompt = usage["prompt_tokens"] - small["prompt_tokens"]
    big_completion = usage["completion_tokens"] - small["completion_tokens"]
    small_cost = small["prompt_tokens"] * 1 + small["completion_tokens"] * 2
    expected = (big_prompt * 10 + big_completion * 20 + small_cost) / 1e6
    assert ttc["cost_usd"] == pytest.approx(expected, abs=1e-8)
    assert float(r.headers["x-ttc-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    assert expected < (usage["prompt_tokens"] * 10 + usage["completion_tokens"] * 20) / 1e6
    (trace,) = ttc["trace"]
    plan = trace["events"][0]
    assert plan["kind"] == "plan" and plan["split"] is False


def test_no_trace_unless_asked(router: str) -> None:
    r = httpx.post(
        f"{router}/v1/chat/completions",
        json={"model": "ttc-auto", "messages": [{"role": "user", "content": "What is 6*7?"}]},
        timeout=30,
    )
    assert r.status_code == 200 and "trace" not in r.json()["ttc"]
