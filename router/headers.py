"""The `x-ttc-*` response headers of a routed request, in one place: successful answers, error
responses raised after the routing decision (429, 502, 504) and the dry run all carry them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.planning import Plan


def decision_headers(decision: Plan, request_id: str) -> dict[str, str]:
    h = {
        "x-request-id": request_id,
        "x-ttc-tier": decision.tier_label,
        "x-ttc-strategy": decision.strategy,
        "x-ttc-confidence": f"{decision.confidence:.4f}",
        "x-ttc-model": decision.model,
    }
    if decision.downgraded_from is not None:
        h["x-ttc-downgraded-from"] = decision.downgraded_from.value
    if decision.task is not None:
        h["x-ttc-task"] = decision.task
    return h


def routed_headers(
    decision: Plan,
    request_id: str,
    *,
    cost_usd: float,
    overhead_ms: float,
    cache: str,
    revision: str,
) -> dict[str, str]:
    """Every header the README promises on a response: the decision's, cost, overhead, cache
    and policy revision."""
    h = decision_headers(decision, request_id)
    h["x-ttc-cost-usd"] = f"{cost_usd:.8f}"
    h["x-ttc-overhead-ms"] = f"{overhead_ms:.2f}"
    h["x-ttc-cache"] = cache
    if revision:
        h["x-ttc-policy-revision"] = revision
    return h


__all__ = ["decision_headers", "routed_headers"]
