"""Classify and plan: a normalised `Call` becomes a `Decision` under the serving policy."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from classifier.base import TIERS, Tier, TierScores
from router.errors import InvalidRequest, NotFound
from router.upstreams.base import Message
from strategies import REGISTRY, Strategy

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy
    from policies.schema import Policy
    from router.pipeline import Clock
    from router.state import AppState
    from router.tenancy import Tenant
    from router.verification import Verification

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
class Decision:
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
    passthrough: bool = False
    classify_ms: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what planning changed for this request (ttc.notes)
    overrides: tuple[str, ...] = ()  # task / latency changes to the tier's plan (also in notes)

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

    @classmethod
    def from_cache(cls, hit: Mapping[str, Any], scores: TierScores | None) -> Decision:
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
            passthrough=scores is None,
        )


def worst_case(
    policy: Policy,
    tier_or_model: Tier | str,
    call: Call,
    max_tokens: int,
    strategy: str,
    params: Mapping[str, Any],
) -> tuple[float, int]:
    """Upper bound of a plan's cost, for the budget reservation.

    A tier uses the policy's bound (`policies.loader.worst_case`: every possible sample pays the
    prompt, re-sent partial solutions and its token limit at the dearest model it may call),
    plus any thinking budget, times the `n` choices asked for. A pass-through model pays one
    sample of `max_tokens`.
    """
    from policies.loader import worst_case as tier_worst_case

    prompt = call.prompt_tokens_estimate
    thinking = int(params.get("budget_tokens", 0) or 0)
    if isinstance(tier_or_model, Tier):
        usd, tokens = tier_worst_case(policy, tier_or_model, prompt)
        samples = max(1, REGISTRY[strategy].max_samples(params))
        price = policy.models[policy.tiers[tier_or_model].model].price
    else:
        samples = REGISTRY[strategy].max_samples(params)
        price = policy.models[tier_or_model].price
        usd = samples * (prompt * price.input_per_mtok + max_tokens * price.output_per_mtok) / 1e6
        tokens = samples * (prompt + max_tokens)
    usd += samples * thinking * price.output_per_mtok / 1e6
    tokens += samples * thinking
    return usd * call.n, tokens * call.n


def plan_tier(policy: Policy, tier: Tier, call: Call, base: Decision | None = None) -> Decision:
    """The policy's plan for `tier` (task and latency overrides applied: `router.overrides`),
    with the client's sampling knobs where they apply."""
    from router.overrides import effective_plan
    from router.verification import choose

    tp, overrides = effective_plan(policy, tier, call.latency, base.scores if base else None)
    if overrides:  # the reservation prices the plan that runs
        policy = policy.model_copy(update={"tiers": {**policy.tiers, tier: tp}})
    chosen = choose(policy, tp, call.verification)  # the verifier the request can feed
    strategy, params = chosen.strategy, dict(chosen.params)
    if strategy == "greedy":
        # A single sample honours the client's sampling parameters.
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.seed is not None:
            params["seed"] = call.seed
        if call.stop:
            params["stop"] = list(call.stop)
    elif strategy == "thinking":
        # The client may ask for less thinking than the policy allows, never more.
        if call.thinking_budget is not None:
            cap = int(params.get("budget_tokens", call.thinking_budget))
            params["budget_tokens"] = min(call.thinking_budget, cap)
        if call.reasoning_effort is not None and "reasoning_effort" not in params:
            params["reasoning_effort"] = call.reasoning_effort
    max_tokens = min(call.max_tokens or tp.max_tokens, tp.max_tokens)
    usd, tokens = worst_case(policy, tier, call, max_tokens, tp.strategy, params)
    if strategy != tp.strategy:  # a fallback strategy: the dearer of the two bounds
        fb_usd, fb_tokens = worst_case(policy, tp.model, call, max_tokens, strategy, params)
        usd, tokens = max(usd, fb_usd), max(tokens, fb_tokens)
    return Decision(
        tier=tier,
        scores=base.scores if base else None,
        strategy=strategy,
        params=params,
        model=tp.model,
        verifier=chosen.verifier,
        notes=(*overrides, *chosen.notes),
        overrides=overrides,
        max_tokens=max_tokens,
        token_budget=tp.token_budget,
        deadline_s=tp.deadline_s,
        worst_usd=usd,
        worst_tokens=tokens,
        classified_tier=base.classified_tier if base else tier,
        classify_ms=base.classify_ms if base else 0.0,
    )


async def classify(
    state: AppState, loaded: LoadedPolicy, messages: tuple[Message, ...]
) -> TierScores:
    """Embedding classifier, then the LLM fallback when confidence is under the threshold."""
    from classifier import classification_text

    text = classification_text(messages)
    began = time.perf_counter()
    scores = (await state.classifier.classify([text]))[0]
    state.metrics.classifier_latency.observe(time.perf_counter() - began)
    cp = loaded.policy.classifier
    # the LLM backend has asked already; other scores go to it when unsure
    if scores.source != "llm" and scores.confidence < cp.confidence_threshold and cp.fallback_model:
        fallback = fallback_for(state, cp.fallback_model, cp.fallback_timeout_s)
        scores = await fallback.refine(text, scores)
    return scores


def fallback_for(state: AppState, model: str, timeout_s: float) -> Any:
    from classifier import LLMFallback

    key = f"{model}:{timeout_s}:{id(state.upstreams.get(model))}"
    fb = state.fallbacks.get(key)
    if fb is None:
        fb = LLMFallback(state.upstreams.get(model), timeout_s=timeout_s, metrics=state.metrics)
        state.fallbacks.clear()  # one live entry per policy generation
        state.fallbacks[key] = fb
    return fb


async def decide(
    state: AppState, loaded: LoadedPolicy, tenant: Tenant, call: Call, clock: Clock
) -> Decision:
    """Steps 3-4: which tier (classifier, fallback, hints, tenant rules), then the plan."""
    from router.tenancy import effective_tier

    policy = loaded.policy
    if call.model in policy.models and call.model not in policy.logical_models:
        return _passthrough(policy, call)
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
    began = time.perf_counter()
    before_upstream = clock.upstream_s
    scores = await classify(state, loaded, call.messages)
    classify_ms = (time.perf_counter() - began) * 1000
    if scores.source == "llm":
        clock.upstream_s = before_upstream + classify_ms / 1000  # fallback is upstream time
    tier = effective_tier(tenant, scores.tier, hint)
    state.metrics.classifications.labels(tier=tier.value, source=scores.source).inc()
    base = Decision(
        tier=tier,
        scores=scores,
        strategy="greedy",
        params={},
        model="",
        verifier=None,
        max_tokens=0,
        token_budget=None,
        deadline_s=0.0,
        worst_usd=0.0,
        worst_tokens=0,
        classified_tier=scores.tier,
        classify_ms=classify_ms,
    )
    return plan_tier(policy, tier, call, base)


def _passthrough(policy: Policy, call: Call) -> Decision:
    params: dict[str, Any] = {"temperature": call.temperature or 0.0}
    if call.seed is not None:
        params["seed"] = call.seed
    if call.stop:
        params["stop"] = list(call.stop)
    max_tokens = call.max_tokens or 1024
    usd, tokens = worst_case(policy, call.model, call, max_tokens, "greedy", params)
    return Decision(
        tier=None,
        scores=None,
        strategy="greedy",
        params=params,
        model=call.model,
        verifier=None,
        max_tokens=max_tokens,
        token_budget=None,
        deadline_s=300.0,
        worst_usd=usd,
        worst_tokens=tokens,
        passthrough=True,
    )
