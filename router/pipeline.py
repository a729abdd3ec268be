"""The request path, top to bottom:

    tenant -> cache -> classify -> plan -> reserve -> run -> settle -> respond

The cache read rides in the reservation script (one round trip for both) unless classifying
may call a model (an LLM fallback or backend): then it is read first, so a hit calls none.

`handle()` is the whole flow for a non-streaming request on one screen. Streaming requests
share `prepare()` (tenant .. reserve) and `finish()` (settle, cache, metrics) with it; see
`router.streaming`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from classifier.base import TIERS, Tier, TierScores
from router import calllog
from router.ahead import Ahead, decide
from router.ahead import start as reserve_ahead
from router.billing import service_calls, spend
from router.budget_values import CacheWrite
from router.cache import should_cache
from router.clock import Clock
from router.errors import RouterError, StoreUnavailable, UpstreamTimeout
from router.ids import new_id
from router.limits import annotate, check_context, check_limits, no_answer
from router.logging import log_request
from router.outcome import Outcome, Prepared
from router.planning import Call, Plan
from router.state import AppState
from router.tenancy import resolve_tenant
from router.upstreams.base import Usage
from router.verification import problem_for
from strategies import Budget, Result
from strategies.generator import UpstreamGenerator
from strategies.think import split_thinking

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy
    from router.budgets import Reservation
    from router.runtime import Runtime
    from router.tenancy import Tenant

log = structlog.get_logger(__name__)


async def handle(state: AppState, call: Call, headers: Mapping[str, str]) -> Outcome:
    """Serve one non-streaming request: the whole request path, top to bottom."""
    clock = Clock()
    calls = calllog.start()  # every upstream call from here on, with its cost
    request_id = headers.get("x-request-id") or new_id()
    runtime = state.runtime  # one policy revision's runtime from start to end
    loaded = runtime.loaded
    tenant = resolve_tenant(loaded.policy, headers, state.settings)  # 1 tenant
    admit(state, call, tenant.name)
    cache_key, probe, hit = await lookup(  # 2 cache (or its probe, read in 5)
        state, runtime, key_of(state, loaded, tenant.name, call))
    if hit is not None:
        return _from_cache(request_id, hit, clock, loaded.revision)
    ahead = reserve_ahead(state, runtime, tenant, call, probe)  # 5 goes out now: router.ahead
    decision = await decide(state, runtime, tenant, call, clock, ahead)  # 3 classify + 4 plan
    try:  # from here on an error carries the decision's x-ttc-* headers
        decision, reservation, hit = await reserve(  # 5 reserve (+ the cache probe)
            state, loaded, tenant, call, decision, probe, ahead)
        if hit is not None:
            return _from_cache(request_id, hit, clock, loaded.revision)
        prepared = Prepared(request_id, call, runtime, tenant, decision, reservation, cache_key,
                            clock, calls)
        try:
            results = await run(state, prepared)  # 6 run the strategy
        except BaseException:
            await release(state, prepared)
            raise
        return await finish(state, prepared, results)  # 7 settle + 8 cache, metrics, respond
    except RouterError as exc:
        _routed_error(exc, decision, request_id, loaded.revision, clock, cache_key)
        raise


async def prepare(state: AppState, call: Call, headers: Mapping[str, str]) -> Prepared | Outcome:
    """Steps 1-5 of `handle()` for streaming requests; a cache hit comes back as an Outcome."""
    clock = Clock()
    calls = calllog.start()
    request_id = headers.get("x-request-id") or new_id()
    runtime = state.runtime
    loaded = runtime.loaded
    tenant = resolve_tenant(loaded.policy, headers, state.settings)
    admit(state, call, tenant.name)
    cache_key, probe, hit = await lookup(state, runtime, key_of(state, loaded, tenant.name, call))
    if hit is not None:
        return _from_cache(request_id, hit, clock, loaded.revision)
    ahead = reserve_ahead(state, runtime, tenant, call, probe)
    decision = await decide(state, runtime, tenant, call, clock, ahead)
    try:
        decision, reservation, hit = await reserve(state, loaded, tenant, call, decision, probe,
                                                   ahead)
        if hit is not None:
            return _from_cache(request_id, hit, clock, loaded.revision)
    except RouterError as exc:
        _routed_error(exc, decision, request_id, loaded.revision, clock, cache_key)
        raise
    return Prepared(request_id, call, runtime, tenant, decision, reservation, cache_key, clock,
                    calls)


def _routed_error(
    exc: RouterError, d: Plan, request_id: str, revision: str, clock: Clock,
    cache_key: str | None,
) -> None:
    annotate(exc, d, request_id, revision=revision, overhead_ms=clock.overhead_ms,
             cache="miss" if cache_key else "bypass")


def admit(state: AppState, call: Call, tenant: str) -> None:
    """Bind the tenant to the log context, apply request limits, log the request."""
    structlog.contextvars.bind_contextvars(tenant=tenant)
    check_limits(state.settings, call)
    log_request(call, log_prompts=state.settings.log_prompts)


def key_of(state: AppState, loaded: LoadedPolicy, tenant: str, call: Call) -> str | None:
    """The result-cache key of this request; None when it is not cacheable."""
    if call.trace:  # a traced run is never served from (or stored as) a plain cached answer
        return None
    if not should_cache(loaded.policy.cache, call.temperature, call.n):
        return None
    return state.cache.key(tenant, call.model, call.messages, call.cache_params(), loaded.revision)


async def lookup(
    state: AppState, runtime: Runtime, key: str | None
) -> tuple[str | None, str | None, Mapping[str, Any] | None]:
    """Step 2: (key, probe, hit). `key` None: not cacheable, or the cache cools down after an
    error (the request is a `bypass`). When classifying may call a model (the policy has an
    LLM fallback, which the `llm` backend also asks), the entry is read now: a hit then
    costs no model call. Otherwise `probe` is the key, read by the reservation script of
    step 5: one round trip for both."""
    if key is None or not await state.cache.ready(key):
        return None, None, None
    if runtime.fallback is not None:
        return key, None, await state.cache.get(key)
    return key, key, None


async def reserve(
    state: AppState, loaded: LoadedPolicy, tenant: Tenant, call: Call, decision: Plan,
    probe: str | None = None, ahead: Ahead | None = None,
) -> tuple[Plan, Reservation | None, Mapping[str, Any] | None]:
    """Check the plan against the context window, then reserve its worst case; on
    `downgrade`, fall back to cheaper tiers that fit. With `probe`, the same script reads the
    result cache first: (plan, None, entry) on a hit, where nothing was reserved. `ahead`:
    the reservation sent before classifying (`router.ahead`), taken when the plan fits it."""
    budgets = loaded.policy.budgets
    # Always reserve, caps or not: settling records spend per tenant x tier x period.
    try:
        try:
            check_context(state.settings, loaded.policy, call, decision)
            taken = None if ahead is None else await ahead.take(decision)
        except BaseException:
            if ahead is not None:
                ahead.drop()
            raise
        if taken is not None:
            option, reservation = decision, taken
        else:
            option, reservation = await state.budgets.reserve_with_downgrade(
                tenant.name, tenant.spec, decision.options, budgets.reservation_ttl_s,
                fail_open=budgets.fail_open, probe=probe,
            )
    except StoreUnavailable:
        if probe is not None:  # the probe did not run
            state.cache.failed_read()
        raise
    if probe is not None:
        if not reservation.checked:  # Redis unreachable, served fail-open: no probe ran
            state.cache.failed_read()
        elif reservation.cached is not None:
            hit = state.cache.read(reservation.cached)
            if hit is not None:
                return decision, None, hit
            # an unreadable entry (counted as an error): reserve for real, without the probe
            return await reserve(state, loaded, tenant, call, decision)
    state.metrics.budget.labels(outcome="ok" if option is decision else "downgrade").inc()
    return option, reservation, None


async def run(state: AppState, prepared: Prepared) -> list[Result]:
    """Step 6: the strategy, `n` times when the client asks for several choices."""
    d = prepared.decision
    strategy = d.strategy_impl
    rt = prepared.runtime
    generator = UpstreamGenerator(rt.upstream(d.model), resolve=rt.upstream)
    verifier = rt.verifier(d.verifier)
    problem = problem_for(prepared.call)
    params = {**d.params, "trace": True} if prepared.call.trace else d.params
    budget = Budget(
        max_tokens=d.token_budget, deadline_s=d.deadline_s, max_tokens_per_sample=d.max_tokens,
        max_answer_tokens=prepared.call.max_tokens,
    )
    hard_limit = d.deadline_s * 1.5 + 5.0
    began = time.perf_counter()
    runs = [strategy.run(problem, generator, verifier, params, budget)
            for _ in range(prepared.call.n)]
    try:
        async with asyncio.timeout(hard_limit):
            # one choice (nearly every request) runs in this task: `gather` would wrap it in
            # a task of its own, started a loop iteration later
            results = [await runs[0]] if len(runs) == 1 else await asyncio.gather(*runs)
    except TimeoutError:
        raise UpstreamTimeout(
            f"strategy {d.strategy!r} exceeded its deadline ({d.deadline_s:g}s)"
        ) from None
    finally:
        prepared.clock.upstream_s += time.perf_counter() - began
    return list(results)


async def finish(state: AppState, prepared: Prepared, results: list[Result]) -> Outcome:
    """Steps 7-8: settle the actual cost, cache, record metrics. The client gets the answers
    only: thinking (inline `<think>` tags or a separate field) goes to `reasonings`."""
    split = [(r.reasoning, r.text) if r.reasoning else split_thinking(r.text) for r in results]
    usage = Usage()
    for r in results:
        usage = usage + r.usage
    outcome = Outcome(
        request_id=prepared.request_id,
        decision=prepared.decision,
        texts=[answer for _, answer in split],
        reasonings=[reasoning for reasoning, _ in split],
        finish_reasons=[r.finish_reason for r in results],
        usage=usage,
        cost_usd=0.0,
        cache="miss" if prepared.cache_key else "bypass",
        overhead_ms=0.0,
        candidates=sum(len(r.candidates) for r in results),
        anytime=any(r.anytime for r in results),
        notes=prepared.decision.notes + tuple(n for r in results for n in r.notes),
        revision=prepared.loaded.revision,
        traces=[r.trace for r in results] if prepared.call.trace else None,
        stopped=next((r.stopped for r in results if r.stopped), None),
    )
    for r in results:
        for name, u in r.model_usage.items():
            outcome.model_usage[name] = outcome.model_usage.get(name, Usage()) + u
    outcome = await settle(state, prepared, outcome)
    if (error := no_answer(outcome.texts, outcome.stopped, prepared.decision)) is not None:
        error.headers["x-ttc-cost-usd"] = f"{outcome.cost_usd:.8f}"  # what it spent, settled
        raise error
    return outcome


async def settle(state: AppState, prepared: Prepared, outcome: Outcome) -> Outcome:
    entry = bill(state, prepared, outcome)
    if entry is not None:  # no reservation to carry the cache write
        cache = prepared.loaded.policy.cache
        await state.cache.set(entry[0], _cache_value(outcome), cache.ttl_s, cache.max_entry_bytes)
    record_outcome(state, prepared, outcome)
    outcome.overhead_ms = prepared.clock.overhead_ms
    return outcome


def bill(state: AppState, prepared: Prepared, outcome: Outcome) -> CacheWrite | None:
    """Price the outcome and commit it against the reservation in the background (the cache
    write rides along). Never suspends, so it runs even in a task being cancelled. Returns
    the cache write left to do when there is no reservation to carry it."""
    d = prepared.decision
    policy = prepared.loaded.policy
    outcome.cost_usd = spend(policy, d, outcome.usage, outcome.model_usage)
    outcome.calls = [*prepared.calls, *service_calls(policy, outcome.model_usage)]
    cut = [c for c in outcome.calls if c.estimated]  # calls cut before they reported usage
    cut_tokens = sum(c.prompt_tokens + c.completion_tokens for c in cut)
    if cut:
        outcome.cost_usd += sum(c.cost_usd for c in cut)
        outcome.notes = (*outcome.notes, calllog.CUT_NOTE)
    cache = policy.cache
    entry = None  # the cache write rides in the settle script: one round trip for both
    if prepared.cache_key is not None and outcome.finish_reasons and not outcome.anytime:
        data = state.cache.encode(_cache_value(outcome), cache.max_entry_bytes)
        entry = None if data is None else (prepared.cache_key, data, cache.ttl_s)
    if prepared.reservation is not None:
        # In the background: the answer does not wait for this round trip (Budgets.settle_later)
        settling = state.budgets.settle_later(
            prepared.reservation,
            outcome.cost_usd,
            outcome.usage.total_tokens + cut_tokens,
            d.tier_label,
            d.strategy,
            also_set=entry,
        )
        if entry is not None:
            state.cache.writing(entry[0], settling)
        return None
    return entry


async def release(state: AppState, prepared: Prepared) -> None:
    if prepared.reservation is not None:
        try:
            await state.budgets.release(prepared.reservation)
        except Exception:  # the reservation expires on its own
            log.warning("reservation_release_failed", exc_info=True)


def record_outcome(state: AppState, prepared: Prepared, outcome: Outcome) -> None:
    """The outcome's tokens and spend in the metrics."""
    d = prepared.decision
    m = state.metrics
    u = outcome.usage
    for kind, value in (
        ("prompt", u.prompt_tokens),
        ("completion", u.completion_tokens),
        ("reasoning", u.reasoning_tokens),
    ):
        if value:
            m.tokens.labels(tier=d.tier_label, strategy=d.strategy, kind=kind).inc(value)
    if outcome.cost_usd:
        m.spend.labels(tenant=prepared.tenant.name, tier=d.tier_label).inc(outcome.cost_usd)
    spec = prepared.tenant.spec
    if spec is not None:
        for period, cap in (("day", spec.daily_usd), ("month", spec.monthly_usd)):
            if cap is not None:
                m.tenant_cap.labels(tenant=prepared.tenant.name, period=period).set(cap)
    m.candidates.labels(strategy=d.strategy).observe(max(outcome.candidates, 1))


def _cache_value(outcome: Outcome) -> dict[str, Any]:
    d = outcome.decision
    u = outcome.usage
    return {
        "texts": outcome.texts,
        "finish_reasons": outcome.finish_reasons,
        "usage": [u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.calls],
        "tier": d.tier_label,
        "strategy": d.strategy,
        "model": d.model,
        "confidence": d.confidence,
        "source": d.source,
        "task": d.task,
        "candidates": outcome.candidates,
    }


def _from_cache(request_id: str, hit: Mapping[str, Any], clock: Clock, revision: str) -> Outcome:
    prompt, completion, reasoning, calls = hit["usage"]
    tier = hit["tier"]
    probs = tuple(1.0 if t.value == tier else 0.0 for t in TIERS)
    scores = (
        TierScores(probs, Tier(tier), float(hit["confidence"]), source=hit["source"],
                   task=hit.get("task"))
        if tier in {t.value for t in TIERS}
        else None
    )
    decision = Plan.from_cache(hit, scores)
    return Outcome(
        request_id=request_id,
        decision=decision,
        texts=list(hit["texts"]),
        finish_reasons=list(hit["finish_reasons"]),
        usage=Usage(prompt, completion, reasoning, calls),
        cost_usd=0.0,
        cache="hit",
        overhead_ms=clock.overhead_ms,
        candidates=int(hit.get("candidates", 0)),
        revision=revision,
    )
