"""What a run cost: every call at the price of what served it, and the call-log entries of
verifier services. The pipeline's settle step bills with these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from policies.schema import VERIFIER_BILLING, Policy
from router.calllog import CallRecord
from router.upstreams.base import Usage
from router.worstcase import fallback_cost

if TYPE_CHECKING:
    from router.planning import Plan


def spend(policy: Policy, d: Plan, usage: Usage, model_usage: Mapping[str, Usage]) -> float:
    """What a run cost: every call at the price of what served it. `usage` is priced at the
    plan's model, then each share spent elsewhere (another policy model, a verifier service:
    `Policy.price_of`) is re-priced at its own; the LLM classifier fallback's call is added at
    its model's price (`worstcase.fallback_cost`)."""
    own = policy.models[d.model].price.to_price()
    cost = own.cost(usage)
    for name, u in model_usage.items():
        price = policy.price_of(name)
        if price is not None and name != d.model:
            cost += price.cost(u) - own.cost(u)
    return cost + fallback_cost(policy, d.scores)


def service_calls(policy: Policy, model_usage: Mapping[str, Usage]) -> list[CallRecord]:
    """Call-log entries of verifier services (a PRM over HTTP): not upstream calls, so the
    strategy's accounted usage under `verifier:<name>` stands for them."""
    out = []
    for name, u in model_usage.items():
        price = policy.price_of(name)
        if name.startswith(VERIFIER_BILLING) and price is not None:
            out.append(CallRecord(name, name, u.prompt_tokens,
                                  u.completion_tokens + u.reasoning_tokens, price.cost(u)))
    return out


__all__ = ["service_calls", "spend"]
