"""Pieces shared by the OpenAI and Anthropic endpoints: state access, headers, `ttc` object."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from router.headers import decision_headers, routed_headers
from router.outcome import Outcome, Prepared
from router.overrides import parse_latency
from router.state import AppState


def app_state(request: Request) -> AppState:
    """The app's state. The hot endpoints (chat completions, messages) call this instead of
    depending on `StateDep`: FastAPI's dependency solving costs more than the lookup."""
    state: AppState = request.app.state.ttc
    return state


async def get_state(request: Request) -> AppState:
    """Async on purpose: a sync dependency would cost a thread-pool hop per request."""
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


def request_headers(request: Request) -> dict[str, str]:
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["x-request-id"] = request.state.request_id
    return headers


def request_latency(request: Request, metadata: Any) -> str | None:
    """`x-ttc-latency` header, else `metadata.ttc_latency`; unknown values are a 400."""
    header = request.headers.get("x-ttc-latency")
    if header:
        return parse_latency(header, "x-ttc-latency")
    value = metadata.get("ttc_latency") if isinstance(metadata, dict) else None
    return parse_latency(value, "metadata.ttc_latency")


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    h = routed_headers(
        outcome.decision, outcome.request_id, cost_usd=outcome.cost_usd,
        overhead_ms=outcome.overhead_ms, cache=outcome.cache, revision=outcome.revision,
    )
    if outcome.stopped in ("deadline", "tokens"):  # best answer so far, not a finished one
        h["x-ttc-truncated"] = outcome.stopped
    return h


def stream_headers(prepared: Prepared) -> dict[str, str]:
    """Headers go out before the answer: cost is the reserved worst case, overhead so far."""
    d = prepared.decision
    h = decision_headers(d, prepared.request_id)
    h["x-ttc-cost-usd"] = f"{d.worst_usd:.8f}"
    h["x-ttc-cost-estimate"] = "worst-case"
    h["x-ttc-overhead-ms"] = f"{prepared.clock.overhead_ms:.2f}"
    h["x-ttc-cache"] = "miss" if prepared.cache_key else "bypass"
    h["x-ttc-policy-revision"] = prepared.loaded.revision
    h["cache-control"] = "no-cache"
    h["x-accel-buffering"] = "no"
    return h


def ttc_object(outcome: Outcome) -> dict[str, Any]:
    d = outcome.decision
    u = outcome.usage
    return {
        "tier": d.tier_label,
        "classified_tier": d.classified_tier.value if d.classified_tier else None,
        "confidence": round(d.confidence, 4),
        "classifier_source": d.source,
        "probabilities": d.scores.as_dict() if d.scores else None,
        "strategy": d.strategy,
        "model": d.model,
        "calls": u.calls,
        "candidates": outcome.candidates,
        "cost_usd": round(outcome.cost_usd, 8),
        "overhead_ms": round(outcome.overhead_ms, 2),
        "cache": outcome.cache,
        "downgraded_from": d.downgraded_from.value if d.downgraded_from else None,
        "task": d.task,
        "overrides": list(d.overrides),
        "anytime": outcome.anytime,
        "stopped": outcome.stopped,
        "notes": list(outcome.notes),
        "policy_revision": outcome.revision,
        **_extras(outcome),
    }


def _extras(outcome: Outcome) -> dict[str, Any]:
    """Optional `ttc` fields: other models' token usage, and the strategy traces when the
    client sent `x-ttc-trace: 1`."""
    out: dict[str, Any] = {}
    if outcome.model_usage:
        out["model_usage"] = {
            name: {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                   "calls": u.calls}
            for name, u in outcome.model_usage.items()
        }
    if outcome.traces is not None:
        out["trace"] = outcome.traces
        out["call_log"] = [c.as_dict() for c in outcome.calls]  # sums to cost_usd
    return out


def wants_trace(request: Request) -> bool:
    """`x-ttc-trace: 1` (or true/yes) asks for the strategy's trace in the `ttc` object."""
    return request.headers.get("x-ttc-trace", "").strip().lower() in ("1", "true", "yes")


def record_request(state: AppState, endpoint: str, outcome: Outcome, seconds: float) -> None:
    d = outcome.decision
    state.metrics.requests.labels(
        endpoint=endpoint, tier=d.tier_label, strategy=d.strategy, status="ok"
    ).inc()
    state.metrics.overhead.labels(endpoint=endpoint).observe(outcome.overhead_ms / 1000)
    state.metrics.duration.labels(endpoint=endpoint).observe(seconds)
    state.metrics.cache.labels(result=outcome.cache).inc()
