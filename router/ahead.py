"""The reservation sent ahead of classification, so that its Redis round trip overlaps the
classifier pass instead of following it.

In plain order a request classifies (about half a millisecond of CPU), plans, and only then
reserves its plan's worst case: one Redis round trip after the other. When the tenant is far
from its caps, `start()` instead reserves a bound of every plan the request can get, before
classifying: the script runs in Redis while the classifier runs here. After planning,
`take()` gives the plan that reservation when the plan's worst case fits in it; settling then
commits the actual cost and releases the whole reservation, as for any other. When it does not
fit (a plan the bound missed), or the script refused the bound, the reservation made ahead is
released and the plan is reserved in plain order, downgrades included. The result-cache probe
rides along either way: a hit is answered and nothing was reserved.

The bound (`bound()`): the dearest worst case among the plans of every tier, with and without
each task override of the policy, for this request's parameters and its prompt estimate
rounded up to a power of two; memoised in the policy revision's `Runtime`.

Far from its caps: the last remaining this process saw for the tenant (`Budgets.headroom`) is
at least `HEADROOM` times the bound on every cap. A tenant without caps always is; a tenant
with caps is not until this process reserved for it once. Near a cap the plain order runs, so
a bound held for the few milliseconds of planning never takes budget that a concurrent
request needs. Caps hold either way: the script reserves atomically against every cap, and a
plan only ever runs under a reservation at least its worst case.

Never ahead: pass-through models (nothing is classified), policies with an LLM classifier
fallback (its cost joins the worst case, and the cache is read before classifying), requests
with verification hints (they choose verifiers per request) and requests that planning will
refuse (an unknown model or tier).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from classifier.base import TIERS, TierScores
from router.budget_values import BudgetCapExceeded, Reservation
from router.errors import RouterError
from router.planning import Call, Plan, is_passthrough, requested_tier, tier_plan
from router.planning import decide as decide_plan

if TYPE_CHECKING:
    from policies.schema import Policy
    from router.budgets import Budgets
    from router.clock import Clock
    from router.runtime import Runtime
    from router.state import AppState
    from router.tenancy import Tenant

HEADROOM = 100  # remaining >= HEADROOM x the bound on every cap, or the plain order runs
MEMO_SIZE = 4096  # request shapes remembered per policy revision


def bound(
    policy: Policy, call: Call, memo: dict[tuple[object, ...], tuple[float, int]] | None = None
) -> tuple[float, int]:
    """(usd, tokens): no plan of any tier or task override for `call` costs more. `memo`:
    bounds already computed for `policy` (`Runtime.bounds`)."""
    prompt = 1 << max(6, math.ceil(math.log2(max(call.prompt_tokens_estimate, 1))))
    key = (call.model, call.max_tokens, call.n, call.temperature, call.seed, call.stop,
           call.reasoning_effort, call.thinking_budget, call.latency, prompt)
    memo = {} if memo is None else memo
    hit = memo.get(key)
    if hit is not None:
        return hit
    usd, tokens = 0.0, 0
    for task in (None, *policy.tasks):
        for tier in TIERS:
            probs = tuple(1.0 if t is tier else 0.0 for t in TIERS)
            scores = TierScores(probs, tier, 1.0, task=task, task_confidence=1.0)
            p = tier_plan(policy, tier, call, scores, 0.0, prompt_tokens=prompt)
            usd, tokens = max(usd, p.worst_usd), max(tokens, p.worst_tokens)
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = (usd, tokens)
    return usd, tokens


@dataclass
class Ahead:
    """A reservation on its way, made before classification."""

    task: asyncio.Task[Reservation]
    usd: float
    tokens: int
    budgets: Budgets

    async def take(self, decision: Plan) -> Reservation | None:
        """The reservation made ahead when `decision`'s worst case fits in it (or it found
        the cache entry: `cached`); None when the plain order must run (refused, or the
        plan needs more), after releasing what it holds. Raises what the script raised for
        an unreachable store (`StoreUnavailable`), as the plain order would."""
        try:
            reservation = await self.task
        except BudgetCapExceeded:
            return None
        if reservation.cached is not None or not reservation.checked:
            return reservation
        if decision.worst_usd <= self.usd and decision.worst_tokens <= self.tokens:
            return reservation
        self.drop()
        return None

    def drop(self) -> None:
        """Release whatever the reservation holds, in the background (an error on the way
        between `start` and `take`, or a plan that did not fit)."""
        self.task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[Reservation]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:  # retrieved: nothing was reserved
            return
        reservation = task.result()
        if reservation.cached is None and reservation.checked:
            self.budgets.release_later(reservation)


def start(
    state: AppState, runtime: Runtime, tenant: Tenant, call: Call, probe: str | None
) -> Ahead | None:
    """Send the bound's reservation now when the request and its tenant allow (see the
    module docstring); None: reserve in plain order after planning."""
    policy = runtime.policy
    if (runtime.fallback is not None or call.verification is not None
            or is_passthrough(policy, call)):
        return None
    try:
        requested_tier(policy, call)
    except RouterError:  # classifying refuses it: nothing to reserve
        return None
    usd, tokens = bound(policy, call, runtime.bounds)
    if not state.budgets.far_from_caps(tenant.name, tenant.spec, usd, tokens, HEADROOM):
        return None
    budgets = policy.budgets
    task = asyncio.get_running_loop().create_task(state.budgets.reserve_first_fit(
        tenant.name, tenant.spec, [(usd, tokens)], budgets.reservation_ttl_s,
        fail_open=budgets.fail_open, probe=probe,
    ))
    return Ahead(task, usd, tokens, state.budgets)


async def decide(state: AppState, runtime: Runtime, tenant: Tenant, call: Call, clock: Clock,
                 ahead: Ahead | None) -> Plan:
    """`router.planning.decide` (classify, then plan); an error on the way releases the
    reservation sent ahead."""
    try:
        return await decide_plan(state, runtime, tenant, call, clock)
    except BaseException:
        if ahead is not None:
            ahead.drop()
        raise
