"""The one planner: plans, downgrades, worst cases per strategy (thinking, n, verifiers, other
models), and the CLI and `/v1/route` views of the same plan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from classifier.base import TIERS, Tier, TierScores
from policies.loader import load_policy
from policies.schema import Policy
from router.errors import InvalidRequest, NotFound
from router.planning import Call, Plan, describe, plan
from router.policy_cli import explain_plan
from router.tenancy import Tenant
from router.upstreams.base import Message, Usage
from router.verification import Verification
from router.worstcase import worst_case
from tests.policies.samples import base_doc, ladder_doc, load_doc

HOSTED = Path(__file__).parents[2] / "policies" / "examples" / "hosted.yaml"


def scores(tier: Tier, task: str | None = None) -> TierScores:
    s = TierScores.from_probabilities([1.0 if t is tier else 0.0 for t in TIERS], "fixed")
    return s if task is None else TierScores(s.probabilities, s.tier, 1.0, "fixed", None, task, 1.0)


def call(text: str = "", **kw: Any) -> Call:
    return Call(endpoint="chat", model=kw.pop("model", "ttc-auto"),
                messages=(Message("user", text),) if text else (), **kw)


def anon(policy: Policy, name: str = "anon") -> Tenant:
    return Tenant(name, policy.tenant(name))


def test_worst_case_per_sampling_strategy() -> None:
    policy = load_doc(base_doc()).policy
    c = call("x" * 200)  # (200 + 8) / 3 -> 70 + 16 = 86 prompt tokens
    p = plan(policy, anon(policy), c, scores(Tier.EASY))
    assert p.prompt_tokens == 86
    # greedy on "chat": 1 sample x (86 prompt x $1 + 64 out x $2) / 1e6
    assert (p.worst_usd, p.worst_tokens) == (pytest.approx(0.000214), 86 + 64)
    p = plan(policy, anon(policy), c, scores(Tier.HARD))  # best_of_n n=4: 4 x the same
    assert (p.worst_usd, p.worst_tokens) == (pytest.approx(4 * 0.000214), 4 * (86 + 64))
    p = plan(policy, anon(policy), c, scores(Tier.MEDIUM))  # self_consistency n=3
    assert p.worst_tokens == 3 * (86 + 64)


def test_worst_case_of_a_search_counts_steps_resent_and_its_verifier() -> None:
    policy = load_doc(base_doc()).policy
    p = plan(policy, anon(policy), call(), scores(Tier.VERY_HARD))
    # beam 2 x 2 x depth 3 = 12 samples; a step may be step_max_tokens (256) long, more than
    # the tier's 32: each call re-sends up to 3 steps of 256 and writes up to 256
    generation = 12 * (16 + 3 * 256 + 256)
    # rollout verifier (k=2, 256 tokens) on every one of them: 2 x (prompt + chain + 16) + 2 x 256
    rollouts = 12 * (2 * (16 + 4 * 256 + 16) + 2 * 256)
    assert p.worst_tokens == generation + rollouts and p.worst_usd == 0.0  # "raw" is free
    doc = base_doc()
    doc["tiers"]["very_hard"]["params"]["step_max_tokens"] = 16  # steps shorter than 32
    p = plan(load_doc(doc).policy, anon(policy), call(), scores(Tier.VERY_HARD))
    assert p.worst_tokens == 12 * (16 + 3 * 32 + 32) + 12 * (2 * (16 + 4 * 32 + 16) + 2 * 256)


def test_worst_case_counts_n_and_rounds_up_to_micro_dollars() -> None:
    doc = ladder_doc()
    doc["models"]["m"]["price"] = {"input_per_mtok": 0.3, "output_per_mtok": 0.0}
    policy = load_doc(doc).policy
    one = worst_case(policy, strategy="greedy", params={}, model="m", max_tokens=10,
                     prompt_tokens=1)
    assert one.usd == 1e-6  # $3e-7 -> one micro-dollar
    three = plan(policy, anon(policy), call("hi", n=3), scores(Tier.EASY))
    single = plan(policy, anon(policy), call("hi"), scores(Tier.EASY))
    assert three.worst_tokens == 3 * single.worst_tokens


def test_thinking_budget_is_in_the_worst_case_and_explain_shows_it() -> None:
    loaded = load_policy(HOSTED)
    policy = loaded.policy
    p = plan(policy, anon(policy), call("hard question"), scores(Tier.VERY_HARD))
    assert p.strategy == "thinking" and p.params["budget_tokens"] == 8000
    prompt = p.prompt_tokens
    # 2 calls (thinking, then the answer), each re-sending up to the 8000 thinking tokens and
    # writing up to max(12000, 8000 + 256) at sonnet's $3 / $15
    tokens_in, tokens_out = 2 * (prompt + 8000), 2 * 12000
    assert p.worst_tokens == tokens_in + tokens_out
    assert p.worst_usd == pytest.approx((tokens_in * 3 + tokens_out * 15) / 1e6)
    out = explain_plan(loaded, "anon", "hard question", Tier.VERY_HARD)
    assert out["worst_case_tokens"] == p.worst_tokens and out["worst_case_usd"] == p.worst_usd
    # the client may lower the thinking budget, never raise it
    less = plan(policy, anon(policy), call("hard question", thinking_budget=1000),
                scores(Tier.VERY_HARD))
    more = plan(policy, anon(policy), call("hard question", thinking_budget=50_000),
                scores(Tier.VERY_HARD))
    assert less.params["budget_tokens"] == 1000 and less.worst_tokens < p.worst_tokens
    assert more.params["budget_tokens"] == 8000 and more.worst_tokens == p.worst_tokens


def test_thinking_without_a_budget_in_the_policy_is_capped_at_the_default() -> None:
    doc = ladder_doc()
    doc["tiers"]["hard"] = {"strategy": "thinking", "model": "m", "max_tokens": 100,
                            "deadline_s": 5, "params": {"mode": "force"}}
    doc["models"]["m"]["capabilities"] = {"chat": True, "prefill": True}
    policy = load_doc(doc).policy
    p = plan(policy, anon(policy), call(thinking_budget=10**6), scores(Tier.HARD))
    assert p.params["budget_tokens"] == 1024  # the strategy's default is the policy's cap
    assert p.worst_tokens == 2 * (16 + 1024 + 1024 + 256)


def test_judge_on_a_dearer_model_is_reserved_at_its_price() -> None:
    doc = base_doc()
    doc["models"]["judge"] = {**doc["models"]["chat"],
                              "price": {"input_per_mtok": 10.0, "output_per_mtok": 100.0}}
    doc["verifiers"]["j"] = {"kind": "llm_judge", "model": "judge", "options": {"steps": "last"}}
    doc["tiers"]["hard"]["verifier"] = "j"
    policy = load_doc(doc).policy
    p = plan(policy, anon(policy), call(), scores(Tier.HARD))
    no_judge = plan(load_doc(base_doc()).policy, anon(policy), call(), scores(Tier.HARD))
    # 4 candidates x one call: the template (~60 tokens), the question, the candidate and a
    # label per step it may hold (64 one-token steps); 4 tokens out
    per_call_in = p.worst_tokens - no_judge.worst_tokens - 4 * 4
    assert per_call_in % 4 == 0 and 16 + 64 + 4 * 64 < per_call_in // 4 < 16 + 64 + 4 * 64 + 100
    judge_usd = (per_call_in * 10 + 4 * 4 * 100) / 1e6
    assert p.worst_usd == pytest.approx(no_judge.worst_usd + judge_usd, abs=2e-6)


def test_cascade_escalation_is_priced_at_the_dearest_model() -> None:
    doc = ladder_doc()
    doc["models"]["big"] = {**doc["models"]["m"],
                            "price": {"input_per_mtok": 0.0, "output_per_mtok": 50.0}}
    doc["tiers"]["medium"] = {
        "strategy": "cascade", "model": "m", "max_tokens": 10, "deadline_s": 5,
        "params": {"draft": {"strategy": "greedy"},
                   "escalate": {"strategy": "best_of_n", "params": {"n": 3}, "model": "big"}}}
    policy = load_doc(doc).policy
    p = plan(policy, anon(policy), call(), scores(Tier.MEDIUM))
    assert p.worst_tokens == 4 * (16 + 10)
    assert p.worst_usd == pytest.approx(4 * 10 * 50 / 1e6)


def test_downgrades_are_the_lower_tiers_most_capable_first() -> None:
    policy = load_doc(ladder_doc()).policy
    p = plan(policy, anon(policy), call(), scores(Tier.VERY_HARD))
    assert [d.tier for d in p.downgrades] == [Tier.HARD, Tier.MEDIUM, Tier.EASY]
    assert [d.worst_usd for d in p.options] == pytest.approx([1e-2, 1e-3, 1e-4, 1e-5])
    assert all(d.downgraded_from is Tier.VERY_HARD and not d.downgrades for d in p.downgrades)
    assert p.downgraded_from is None
    rejecting = load_doc(ladder_doc("reject")).policy
    assert plan(rejecting, anon(rejecting), call(), scores(Tier.VERY_HARD)).downgrades == ()


def test_tenant_rules_hints_and_passthrough() -> None:
    policy = load_doc(base_doc()).policy
    acme = anon(policy, "acme")  # remap easy -> medium, max tier hard, hints allowed
    assert plan(policy, acme, call(), scores(Tier.EASY)).tier is Tier.MEDIUM
    assert plan(policy, acme, call(), scores(Tier.VERY_HARD)).tier is Tier.HARD
    assert plan(policy, acme, call(tier_hint="easy"), scores(Tier.HARD)).tier is Tier.EASY
    assert plan(policy, acme, call(model="ttc-easy"), scores(Tier.HARD)).tier is Tier.EASY
    with pytest.raises(InvalidRequest):
        plan(policy, acme, call(tier_hint="extreme"), scores(Tier.HARD))
    with pytest.raises(NotFound):
        plan(policy, acme, call(model="gpt-17"), scores(Tier.HARD))
    direct = plan(policy, acme, call("hi", model="chat", max_tokens=100, temperature=0.5), None)
    assert direct.passthrough and direct.tier is None and direct.params["temperature"] == 0.5
    assert direct.worst_tokens == direct.prompt_tokens + 100


def test_client_knobs_reach_greedy_only() -> None:
    policy = load_doc(base_doc()).policy
    c = call(temperature=0.3, seed=7, stop=("END",))
    easy = plan(policy, anon(policy), c, scores(Tier.EASY))
    assert dict(easy.params) == {"temperature": 0.3, "seed": 7, "stop": ["END"]}
    hard = plan(policy, anon(policy), c, scores(Tier.HARD))
    assert dict(hard.params) == {"n": 4}


def test_client_max_tokens_lowers_the_plan_and_its_worst_case() -> None:
    policy = load_doc(base_doc()).policy
    full = plan(policy, anon(policy), call(), scores(Tier.HARD))
    short = plan(policy, anon(policy), call(max_tokens=8), scores(Tier.HARD))
    assert short.max_tokens == 8 and short.worst_tokens == 4 * (16 + 8) < full.worst_tokens


def test_a_fallback_verifier_plan_is_priced_as_it_runs() -> None:
    doc = base_doc()
    doc["verifiers"]["ref"] = {"kind": "math_reference"}
    doc["tiers"]["hard"].update(verifier="ref", fallback={"strategy": "self_consistency",
                                                          "params": {"n": 2}})
    policy = load_doc(doc).policy
    without = plan(policy, anon(policy), call(), scores(Tier.HARD))
    assert without.strategy == "self_consistency" and without.worst_tokens == 2 * (16 + 64)
    carried = call(verification=Verification(reference="4"))
    with_ref = plan(policy, anon(policy), carried, scores(Tier.HARD))
    assert with_ref.strategy == "best_of_n" and with_ref.worst_tokens == 4 * (16 + 64)


def test_task_override_is_planned_and_priced() -> None:
    policy = load_policy().policy  # default: creative tasks are greedy whatever the tier
    p = plan(policy, anon(policy, "default"), call(), scores(Tier.HARD, task="creative"))
    assert p.strategy == "greedy" and p.overrides and p.worst_tokens == 16 + 64


def test_route_view_and_explain_are_the_plan() -> None:
    loaded = load_policy(HOSTED)
    policy = loaded.policy
    p = plan(policy, anon(policy), call("hello"), scores(Tier.HARD))
    view = describe(p, tenant="anon", revision=loaded.revision, latency=None)
    assert view["estimated_worst_case_tokens"] == p.worst_tokens
    assert view["strategy"] == "best_of_n" and view["verifier"] == "judge"
    out = explain_plan(loaded, "anon", "hello", Tier.HARD)
    assert out["plan"]["strategy"] == view["strategy"]
    assert out["worst_case_usd"] == p.worst_usd and out["downgrade_order"] == []


def test_plan_is_frozen() -> None:
    policy = load_doc(base_doc()).policy
    p = plan(policy, anon(policy), call(), scores(Tier.EASY))
    assert isinstance(p, Plan) and p.options == (p,)
    with pytest.raises(AttributeError):
        p.worst_usd = 0.0  # type: ignore[misc]


def test_a_fallback_call_is_in_the_worst_case_and_a_prm_service_is_priced() -> None:
    doc = base_doc()
    doc["classifier"] = {"fallback_model": "chat"}
    doc["verifiers"]["prm"] = {"kind": "prm_http", "options": {"url": "http://p", "model": "m"},
                               "price": {"input_per_mtok": 50.0}}
    doc["tiers"]["hard"]["verifier"] = "prm"
    policy = load_doc(doc).policy
    plain = plan(policy, anon(policy), call("2+2?"), scores(Tier.EASY))
    asked = replace(scores(Tier.EASY), fallback_usage=Usage(1000, 10))
    with_call = plan(policy, anon(policy), call("2+2?"), asked)
    # the fallback's 1000 input x $1 + 10 output x $2 per Mtok, on top of the same plan
    assert with_call.worst_usd == pytest.approx(plain.worst_usd + 0.00102, abs=1e-9)
    assert with_call.worst_tokens == plain.worst_tokens
    # best-of-4 scored by a PRM: 4 requests, priced at $50 per Mtok of what it reads (the
    # bound takes the dearer of that and the generation price: $1 when the PRM is free)
    priced = plan(policy, anon(policy), call("2+2?"), scores(Tier.HARD))
    doc["verifiers"]["prm"]["price"] = {"input_per_mtok": 0.0}
    free = load_doc(doc).policy
    unpriced = plan(free, anon(free), call("2+2?"), scores(Tier.HARD))
    generation = 4 * (priced.prompt_tokens + 64)
    assert priced.worst_tokens == unpriced.worst_tokens > generation
    prm_in = priced.worst_tokens - generation
    assert priced.worst_usd == pytest.approx(unpriced.worst_usd + prm_in * 49e-6, abs=2e-6)
