"""Classify and plan: a normalised `Call` becomes a `Plan` under the serving policy.

`plan()` is the one planner: the request path (`decide`), streaming, `/v1/route`,
`ttc-router route` and `ttc-router policy explain` all call it, and the budget reservation
tries the options it returns (`Plan.options`). Worst cases come from `router.worstcase`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from classifier import classification_text
from classifier.base import TIERS, Tier, TierScores
from policies.schema import Policy
from router.clock import Clock
from router.errors import InvalidRequest, NotFound
from router.overrides import effective_plan
from router.tenancy import Tenant, effective_tier
from router.upstreams.base import Message
from router.verification import Verification, choose
from router.worstcase import fallback_cost, worst_case
from strategies import REGISTRY, Strategy, TakesClientParams, implements

if TYPE_CHECKING:
    from router.runtime import Runtime
    from router.state import AppState

TIER_MODELS = {f"ttc-{t.value.replace('_', '-')}": t for t in TIERS}
CHARS_PER_TOKEN = 3  # conservative estimate for the reservation (real usage settles it)


@dataclass(frozen=True)
class Call:
    """A request normalised from either API schema."""

    endpoint: str
    model: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_tokens_param: str = "max_tokens"
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    stream: bool = False
    include_usage: bool = False
    tier_hint: str | None = None
    trace: bool = False  # the client asked for the strategy's trace in `ttc` (x-ttc-trace)
    verification: Verification | None = None  # reference / tests / verifier hint (not logged)
    include_reasoning: bool = False  # the client asked for the thinking too
    latency: str | None = None  # "interactive" caps the plan (router.overrides)

    @property
    def deterministic(self) -> bool:
        return not self.temperature

    @property
    def prompt_tokens_estimate(self) -> int:
        chars = sum(len(m.content) + 8 for m in self.messages)
        return math.ceil(chars / CHARS_PER_TOKEN) + 16

    def cache_params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "n": self.n,
            "stop": list(self.stop),
            "seed": self.seed,
            "reasoning_effort": self.reasoning_effort,
            "thinking": self.thinking_budget,
            "tier_hint": self.tier_hint,
            "latency": self.latency,
            "endpoint": self.endpoint,
            "verification": self.verification.digest() if self.verification else None,
        }


@dataclass(frozen=True)
class Plan:
    """What the router will run for one request, and the most it may cost.

    `worst_usd` / `worst_tokens` bound every call the plan may make (`router.worstcase`);
    `downgrades` are the plans of the lower tiers, most capable first, that the budget
    reservation falls back to under `on_exceeded: downgrade` (empty otherwise)."""

    tier: Tier | None  # None: pass-through to a named upstream model
    scores: TierScores | None
    strategy: str
    params: Mapping[str, Any]
    model: str
    verifier: str | None
    max_tokens: int
    token_budget: int | None
    deadline_s: float
    worst_usd: float
    worst_tokens: int
    classified_tier: Tier | None = None
    downgraded_from: Tier | None = None
    classify_ms: float = 0.0
    notes: tuple[str, ...] = ()  # what planning changed for this request (ttc.notes)
    overrides: tuple[str, ...] = ()  # task / latency changes to the tier's plan (also in notes)
    prompt_tokens: int = 0  # the prompt estimate the worst case was computed for
    downgrades: tuple[Plan, ...] = ()

    @property
    def passthrough(self) -> bool:
        return self.tier is None

    @property
    def task(self) -> str | None:
        return self.scores.task if self.scores is not None else None

    @property
    def strategy_impl(self) -> Strategy:
        return REGISTRY[self.strategy]

    @property
    def tier_label(self) -> str:
        return self.tier.value if self.tier is not None else "passthrough"

    @property
    def confidence(self) -> float:
        return self.scores.confidence if self.scores is not None else 1.0

    @property
    def source(self) -> str:
        return self.scores.source if self.scores is not None else "fixed"

    @property
    def options(self) -> tuple[Plan, ...]:
        """This plan, then its downgrades: what the reservation tries, in order."""
        return (self, *self.downgrades)

    @classmethod
    def from_cache(cls, hit: Mapping[str, Any], scores: TierScores | None) -> Plan:
        return cls(
            tier=scores.tier if scores else None,
            scores=scores,
            strategy=hit["strategy"],
            params={},
            model=hit["model"],
            verifier=None,
            max_tokens=0,
            token_budget=None,
            deadline_s=0.0,
            worst_usd=0.0,
            worst_tokens=0,
        )


def requested_tier(policy: Policy, call: Call) -> str | None:
    """The tier the request asks for (a `ttc-<tier>` model or the x-ttc-tier hint), checked;
    raises `NotFound` for a model the policy does not serve. None for a pass-through model."""
    if is_passthrough(policy, call):
        return None
    if call.model not in policy.logical_models and call.model not in TIER_MODELS:
        valid = ", ".join([*policy.logical_models, *TIER_MODELS, *policy.models])
        raise NotFound(f"model {call.model!r} does not exist; available: {valid}", param="model")
    pinned = TIER_MODELS.get(call.model)
    hint = call.tier_hint or (pinned.value if pinned else None)
    if hint is not None and hint not in {t.value for t in TIERS}:
        raise InvalidRequest(
            f"unknown tier hint {hint!r}; valid: {', '.join(t.value for t in TIERS)}",
            param="x-ttc-tier",
        )
    return hint


def serving_model(policy: Policy) -> str:
    """The model name a classified request asks for (the policy's first logical model)."""
    return policy.logical_models[0]


def is_passthrough(policy: Policy, call: Call) -> bool:
    """The request names one of the policy's upstream models: no classification, no tiers."""
    return call.model in policy.models and call.model not in policy.logical_models


def plan(
    policy: Policy,
    tenant: Tenant,
    call: Call,
    scores: TierScores | None,
    *,
    classify_ms: float = 0.0,
) -> Plan:
    """The one planner: (policy, tenant, classifier scores, request) -> the `Plan`, with its
    worst case and downgrade candidates. The service, `/v1/route`, `ttc-router route` and
    `ttc-router policy explain` all call it. `scores` may be None only for a pass-through."""
    if is_passthrough(policy, call):
        return _passthrough(policy, call)
    hint = requested_tier(policy, call)
    if scores is None:
        raise ValueError("a tier plan needs the classifier's scores")
    tier = effective_tier(tenant, scores.tier, hint)
    main = tier_plan(policy, tier, call, scores, classify_ms)
    if policy.budgets.on_exceeded != "downgrade":
        return main
    lower = tuple(
        replace(tier_plan(policy, t, call, scores, classify_ms), downgraded_from=tier)
        for t in reversed(TIERS)
        if t.rank < tier.rank
    )
    return replace(main, downgrades=lower)


def tier_plan(
    policy: Policy, tier: Tier, call: Call, scores: TierScores, classify_ms: float, *,
    prompt_tokens: int | None = None,
) -> Plan:
    """The policy's plan for `tier` (task and latency overrides applied: `router.overrides`;
    the verifier the request can feed: `router.verification`), with the client's sampling
    knobs where the strategy takes them. `prompt_tokens`: the prompt size to bound (default:
    the call's estimate)."""
    tp, overrides = effective_plan(policy, tier, call.latency, scores)
    chosen = choose(policy, tp, call.verification)
    params = _client_params(chosen.strategy, dict(chosen.params), call)
    max_tokens = min(call.max_tokens or tp.max_tokens, tp.max_tokens)
    prompt = call.prompt_tokens_estimate if prompt_tokens is None else prompt_tokens
    worst = worst_case(
        policy, strategy=chosen.strategy, params=params, model=tp.model, max_tokens=max_tokens,
        prompt_tokens=prompt, verifier=chosen.verifier, n=call.n,
    )
    return Plan(
        tier=tier,
        scores=scores,
        strategy=chosen.strategy,
        params=params,
        model=tp.model,
        verifier=chosen.verifier,
        notes=(*overrides, *chosen.notes),
        overrides=overrides,
        max_tokens=max_tokens,
        token_budget=tp.token_budget,
        deadline_s=tp.deadline_s,
        worst_usd=math.ceil(round((worst.usd + fallback_cost(policy, scores)) * 1e6, 6)) / 1e6,
        worst_tokens=worst.tokens,
        classified_tier=scores.tier,
        classify_ms=classify_ms,
        prompt_tokens=prompt,
    )


def _client_params(strategy: str, params: dict[str, Any], call: Call) -> dict[str, Any]:
    """The client's sampling knobs the strategy honours (`TakesClientParams`)."""
    impl = REGISTRY[strategy]
    if not implements(impl, TakesClientParams):
        return params
    return cast(TakesClientParams, impl).client_params(params, client_knobs(call))


def client_knobs(call: Call) -> dict[str, Any]:
    """What the client set that a strategy may take over (unset knobs are left out)."""
    knobs: dict[str, Any] = {}
    if call.temperature is not None:
        knobs["temperature"] = call.temperature
    if call.seed is not None:
        knobs["seed"] = call.seed
    if call.stop:
        knobs["stop"] = list(call.stop)
    if call.thinking_budget is not None:
        knobs["budget_tokens"] = call.thinking_budget
    if call.reasoning_effort is not None:
        knobs["reasoning_effort"] = call.reasoning_effort
    return knobs


async def classify(
    state: AppState, runtime: Runtime, messages: tuple[Message, ...]
) -> TierScores:
    """Embedding classifier, then the LLM fallback when confidence is under the threshold."""
    text = classification_text(messages)
    began = time.perf_counter()
    scores = (await state.classifier.classify([text]))[0]
    state.metrics.classifier_latency.observe(time.perf_counter() - began)
    threshold = runtime.policy.classifier.confidence_threshold
    # the LLM backend has asked already; other scores go to it when unsure
    fallback = runtime.fallback
    if scores.source != "llm" and scores.confidence < threshold and fallback is not None:
        scores = await fallback.refine(text, scores)
    return scores


async def decide(
    state: AppState, runtime: Runtime, tenant: Tenant, call: Call, clock: Clock
) -> Plan:
    """Steps 3-4: classify (the embedding classifier, then the LLM fallback when unsure),
    then `plan()`. A pass-through model and a bad tier request skip the classifier."""
    policy = runtime.policy
    if is_passthrough(policy, call):
        return plan(policy, tenant, call, None)
    requested_tier(policy, call)  # a request for a model or tier that does not exist: 4xx now
    began = time.perf_counter()
    before_upstream = clock.upstream_s
    scores = await classify(state, runtime, call.messages)
    classify_ms = (time.perf_counter() - began) * 1000
    if scores.source == "llm":
        clock.upstream_s = before_upstream + classify_ms / 1000  # fallback is upstream time
    result = plan(policy, tenant, call, scores, classify_ms=classify_ms)
    state.metrics.classifications.labels(tier=result.tier_label, source=scores.source).inc()
    return result


PASSTHROUGH_MAX_TOKENS = 1024
PASSTHROUGH_DEADLINE_S = 300.0


def _passthrough(policy: Policy, call: Call) -> Plan:
    params: dict[str, Any] = {"temperature": call.temperature or 0.0}
    if call.seed is not None:
        params["seed"] = call.seed
    if call.stop:
        params["stop"] = list(call.stop)
    max_tokens = call.max_tokens or PASSTHROUGH_MAX_TOKENS
    prompt = call.prompt_tokens_estimate
    worst = worst_case(policy, strategy="greedy", params=params, model=call.model,
                       max_tokens=max_tokens, prompt_tokens=prompt, n=call.n)
    return Plan(
        tier=None,
        scores=None,
        strategy="greedy",
        params=params,
        model=call.model,
        verifier=None,
        max_tokens=max_tokens,
        token_budget=None,
        deadline_s=PASSTHROUGH_DEADLINE_S,
        worst_usd=worst.usd,
        worst_tokens=worst.tokens,
        prompt_tokens=prompt,
    )


def describe(plan: Plan, *, tenant: str, revision: str, latency: str | None) -> dict[str, Any]:
    """The plan as `/v1/route` and `ttc-router route` print it."""
    s = plan.scores
    return {
        "tier": plan.tier_label,
        "classified_tier": plan.classified_tier.value if plan.classified_tier else None,
        "confidence": round(plan.confidence, 4),
        "classifier_source": plan.source,
        "probabilities": s.as_dict() if s else None,
        "fallback_note": s.fallback_note if s else None,
        "strategy": plan.strategy,
        "params": dict(plan.params),
        "model": plan.model,
        "verifier": plan.verifier,
        "max_tokens": plan.max_tokens,
        "deadline_s": plan.deadline_s,
        "estimated_worst_case_usd": round(plan.worst_usd, 8),
        "estimated_worst_case_tokens": plan.worst_tokens,
        "tenant": tenant,
        "policy_revision": revision,
        "classify_ms": round(plan.classify_ms, 3),
        "task": plan.task,
        "task_confidence": _round(s.task_confidence if s else None),
        "latency": latency,
        "overrides": list(plan.overrides),
        "downgrades": [
            {"tier": d.tier_label, "strategy": d.strategy, "model": d.model,
             "estimated_worst_case_usd": round(d.worst_usd, 8),
             "estimated_worst_case_tokens": d.worst_tokens}
            for d in plan.downgrades
        ],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
