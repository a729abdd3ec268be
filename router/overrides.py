"""Task-type and latency-class overrides of a tier's plan.

Applied by the planner (`router.planning.plan`) after the tier is chosen (classifier, hint, tenant
rules) and before the budget reservation, so the reservation prices the plan that runs; a
budget downgrade re-plans the lower tier with the same overrides.

1. Task type (`policy.tasks`): the classifier's task head names the kind of query (maths, code,
   logic, planning, factual, creative, rewrite, chat, other); `tasks.<task>` replaces parts of
   the tier's plan (strategy, params, model, verifier, max_tokens) when the task head is at
   least `min_confidence` sure. A new strategy without `params` starts from `{}`, and drops
   the tier's verifier unless the override names one.
2. Latency class: a request marked interactive (`x-ttc-latency: interactive` or
   `metadata.ttc_latency`) keeps its plan only when the strategy is listed in
   `latency.interactive.strategies` (the strategies whose worst case fits an interactive
   reply on this deployment; default greedy); otherwise it becomes greedy on the same model.
   `latency.interactive.deadline_s` and `max_tokens` cap the plan.

Each change is a note on the decision (`Plan.overrides`), shown in `/v1/route`, `ttc.notes`
and the logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.errors import InvalidRequest

if TYPE_CHECKING:
    from classifier.base import Tier, TierScores
    from policies.schema import Policy, TierPolicy

LATENCY_CLASSES = ("interactive", "standard")


def parse_latency(value: object, param: str) -> str | None:
    """The request's latency class, or None; an unknown value is a 400 naming `param`."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text not in LATENCY_CLASSES:
        raise InvalidRequest(
            f"unknown latency class {value!r}; valid: {', '.join(LATENCY_CLASSES)}", param=param
        )
    return text


def effective_plan(
    policy: Policy, tier: Tier, latency: str | None, scores: TierScores | None
) -> tuple[TierPolicy, tuple[str, ...]]:
    """The tier's plan with the task and latency overrides applied, and what changed."""
    tp = policy.tiers[tier]
    notes: list[str] = []
    task = scores.task if scores is not None else None
    override = policy.tasks.get(task) if task else None  # type: ignore[call-overload]
    confident = scores is not None and (scores.task_confidence or 0.0) >= (
        override.min_confidence if override is not None else 1.0
    )
    if override is not None and confident:
        changed = override.strategy is not None and override.strategy != tp.strategy
        if override.params is not None:
            params = dict(override.params)
        else:
            params = {} if changed else dict(tp.params)
        verifier = tp.verifier
        if "verifier" in override.model_fields_set:
            verifier = override.verifier
        elif changed:
            verifier = None
        new = tp.model_copy(update={
            "strategy": override.strategy or tp.strategy,
            "params": params,
            "model": override.model or tp.model,
            "verifier": verifier,
            "max_tokens": override.max_tokens or tp.max_tokens,
        })
        if new != tp:
            notes.append(f"task {task}: {_describe(tp)} -> {_describe(new)}")
            tp = new
    if latency == "interactive":
        cap = policy.latency.interactive
        update: dict[str, object] = {"deadline_s": min(tp.deadline_s, cap.deadline_s)}
        if tp.strategy not in cap.strategies:
            update.update(strategy="greedy", params={}, verifier=None, token_budget=None)
        if cap.max_tokens is not None:
            update["max_tokens"] = min(tp.max_tokens, cap.max_tokens)
        new = tp.model_copy(update=update)
        if new != tp:
            notes.append(f"latency interactive: {_describe(tp)} -> {_describe(new)} "
                         f"(allowed: {', '.join(cap.strategies)}; deadline {cap.deadline_s:g}s)")
            tp = new
    return tp, tuple(notes)


def _describe(tp: TierPolicy) -> str:
    extra = f"+{tp.verifier}" if tp.verifier else ""
    return f"{tp.strategy}{extra}@{tp.model}/{tp.max_tokens}tok/{tp.deadline_s:g}s"
