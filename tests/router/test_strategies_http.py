"""Every strategy end to end through the router's HTTP API on the real local model.

One router; the policy file is rewritten and hot-reloaded through `POST /admin/policy/reload`
so each of the eight strategies serves a tier once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread

pytestmark = pytest.mark.model

HEAD = """
models:
  local:
    provider: local
    model: gemma3-270m
    capabilities: {chat: false, completions: true, n: true, logprobs: true}
verifiers:
  rollouts: {kind: rollout, model: local, options: {k: 2, max_tokens: 6, stop: ["\\n"]}}
tenants:
  default: {allow_tier_hint: true}
anonymous_tenant: default
cache: {enabled: false}
tiers:
"""
STOP = 'stop: ["\\n"]'
FIRST = (
    HEAD
    + f"""
  easy: {{strategy: greedy, model: local, max_tokens: 6, params: {{{STOP}}}}}
  medium: {{strategy: self_consistency, model: local, max_tokens: 6,
            params: {{n: 3, {STOP}}}}}
  hard: {{strategy: best_of_n, model: local, max_tokens: 6, verifier: rollouts,
          params: {{n: 3, {STOP}}}}}
  very_hard: {{strategy: beam_search, model: local, max_tokens: 6, verifier: rollouts,
               params: {{width: 2, expansions: 2, max_depth: 2, step_max_tokens: 6,
                         step_delimiter: "\\n", terminal: stop}}}}
"""
)
SECOND = (
    HEAD
    + f"""
  easy: {{strategy: thinking, model: local, max_tokens: 6,
          params: {{mode: force, budget_tokens: 8, answer_max_tokens: 6}}}}
  medium: {{strategy: cascade, model: local, max_tokens: 6,
            params: {{draft: {{strategy: greedy, params: {{{STOP}}}}},
                      escalate: {{strategy: self_consistency, params: {{n: 2, {STOP}}}}},
                      threshold: 0.5}}}}
  hard: {{strategy: dvts, model: local, max_tokens: 6, verifier: rollouts,
          params: {{n: 4, width: 2, expansions: 2, max_depth: 2, step_max_tokens: 6,
                    step_delimiter: "\\n", terminal: stop}}}}
  very_hard: {{strategy: mcts, model: local, max_tokens: 6, verifier: rollouts,
               params: {{simulations: 3, branching: 2, max_depth: 2, step_max_tokens: 6,
                         step_delimiter: "\\n", terminal: stop}}}}
"""
)
PROMPT = "3+4=7\n8+1=9\n6+2=8\n5+2="
ADMIN = {"authorization": "Bearer strategies-admin"}


@pytest.fixture(scope="module")
def router(
    redis_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    from router.app import create_app
    from router.settings import Settings

    policy = tmp_path_factory.mktemp("strategies") / "policy.yaml"
    policy.write_text(FIRST)
    settings = Settings(
        policy_path=policy,
        redis_url=redis_url,
        data_dir=model_dir,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        admin_token="strategies-admin",  # type: ignore[arg-type]
        local_parallel=8,
        local_ctx_per_slot=1024,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url, policy


def _ask(url: str, tier: str) -> dict[str, object]:
    r = httpx.post(
        f"{url}/v1/chat/completions",
        timeout=120,
        json={
            "model": f"ttc-{tier.replace('_', '-')}",
            "max_tokens": 6,
            "messages": [{"role": "user", "content": PROMPT}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["completion_tokens"] > 0
    assert body["ttc"]["calls"] >= 1
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("tier", "strategy"),
    [
        ("easy", "greedy"),
        ("medium", "self_consistency"),
        ("hard", "best_of_n"),
        ("very_hard", "beam_search"),
    ],
)
def test_first_four_strategies(router: tuple[str, Path], tier: str, strategy: str) -> None:
    body = _ask(router[0], tier)
    assert body["ttc"]["strategy"] == strategy  # type: ignore[index]


def test_reload_then_other_four_strategies(router: tuple[str, Path]) -> None:
    url, policy = router
    policy.write_text(SECOND)
    r = httpx.post(f"{url}/admin/policy/reload", headers=ADMIN, timeout=30)
    assert r.status_code == 200, r.text
    seen = {}
    for tier in ("easy", "medium", "hard", "very_hard"):
        seen[tier] = _ask(url, tier)["ttc"]["strategy"]  # type: ignore[index]
    assert seen == {"easy": "thinking", "medium": "cascade", "hard": "dvts", "very_hard": "mcts"}
