"""Cascade: answer with a cheap stage first; escalate when the verifier is not convinced.

    params:
      draft:    {strategy: greedy, params: {...}}                 # default: greedy
      escalate: {strategy: best_of_n, params: {n: 8}, model: big}  # model optional
      threshold: 0.5

The draft runs with the request's generator. Its score is the verifier's aggregated score of
the draft answer when a verifier is configured, else the draft result's own `score` (vote share
for self-consistency); with neither, the cascade always escalates. Under `threshold` the
escalation stage runs, on `escalate.model` when given: that name is a model of the policy,
resolved by `generator.with_model(name)` (a `MultiModelGenerator`, such as an
`UpstreamGenerator` built with `resolve=`), else on the same generator (a costlier strategy).
Both stages share the run's budget and deadline; usage is the sum; an escalation cut before
it produced anything falls back to the draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from router.vocab.errors import PolicyError
from strategies.aggregate import AGGREGATIONS, aggregate
from strategies.answers import ANSWER_FORMATS
from strategies.base import (
    Budget,
    Generator,
    MultiModelGenerator,
    Problem,
    Result,
    Stage,
    Strategy,
    Verifier,
)
from strategies.params import Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext

SPECS: dict[str, Spec] = {
    "draft": Spec("mapping", {"strategy": "greedy"}),
    "escalate": Spec("mapping", {"strategy": "best_of_n", "params": {"n": 8}}),
    "threshold": Spec("float", 0.5, 0.0, 1.0),
    "aggregation": Spec("str", "last", choices=AGGREGATIONS),
    "trace": Spec("bool", False),
    "answer_format": Spec("str", None, choices=ANSWER_FORMATS),
}
STAGE_KEYS = frozenset({"strategy", "params", "model"})


class Cascade:
    name = "cascade"
    step_level = False
    requires_verifier = False

    def __init__(self, registry: Mapping[str, Strategy]) -> None:
        self._registry = registry  # the strategies a stage may name (the live REGISTRY)

    def stage(
        self, params: Mapping[str, Any], key: str
    ) -> tuple[Strategy, dict[str, Any], str | None]:
        spec = dict(params.get(key) or SPECS[key].default)
        return self._registry[spec["strategy"]], dict(spec.get("params") or {}), spec.get("model")

    def stages(self, params: Mapping[str, Any]) -> list[Stage]:
        """Each stage, for the loader's checks and the planner's worst case."""
        return [Stage(key, *self.stage(params, key)) for key in ("draft", "escalate")]

    def models(self, params: Mapping[str, Any]) -> list[str]:
        """Policy model names this cascade escalates to (for the loader to check)."""
        esc = params.get("escalate", SPECS["escalate"].default)
        return [esc["model"]] if isinstance(esc, Mapping) and esc.get("model") else []

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        errors = check(params, SPECS)
        for key in ("draft", "escalate"):
            stage = params.get(key)
            if not isinstance(stage, Mapping):
                continue
            errors += [f"{key}: unknown key {k!r}" for k in stage if k not in STAGE_KEYS]
            name = stage.get("strategy")
            if not isinstance(name, str) or name not in self._registry or name == self.name:
                valid = ", ".join(sorted(n for n in self._registry if n != self.name))
                errors.append(f"{key}.strategy must be one of {valid}, got {name!r}")
                continue
            sub = stage.get("params") or {}
            if not isinstance(sub, Mapping):
                errors.append(f"{key}.params must be a mapping")
                continue
            errors += [f"{key}.params: {e}" for e in self._registry[name].check_params(sub)]
            if "model" in stage and not isinstance(stage["model"], str):
                errors.append(f"{key}.model must be a model name")
        return errors

    def max_samples(self, params: Mapping[str, Any]) -> int:
        total = 0
        for key in ("draft", "escalate"):
            strategy, sub, _ = self.stage(params, key)
            total += strategy.max_samples(sub)
        return total

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        p = resolve(params, SPECS)
        ctx = RunContext(self.name, budget, p, problem)
        d_strategy, d_params, _ = self.stage(params, "draft")
        e_strategy, e_params, e_model = self.stage(params, "escalate")
        for sub in (d_params, e_params):
            sub.setdefault("trace", p["trace"])
            if p["answer_format"]:
                sub.setdefault("answer_format", p["answer_format"])
        draft = await d_strategy.run(problem, generator, verifier, d_params, self._rest(ctx))
        ctx.absorb(draft)
        score = draft.score
        if verifier is not None and draft.text:
            try:
                raw = await ctx.score(verifier, [[draft.text]])
                score = aggregate(raw[0], p["aggregation"])
            except OutOfBudget as exc:
                ctx.stopped = exc.reason
        threshold = p["threshold"]
        ctx.note(kind="draft", strategy=d_strategy.name, score=score, answer=draft.answer)
        if ctx.stopped or (score is not None and score >= threshold and draft.text):
            return self._merge(ctx, draft, None, score, f"kept draft (score {score})")
        target = generator
        if e_model:
            if not isinstance(generator, MultiModelGenerator):
                raise PolicyError(
                    f"cascade escalates to {e_model!r} but the generator cannot "
                    "switch models (build it with a model resolver)"
                )
            target = generator.with_model(e_model)
        rest = self._rest(ctx)
        if (rest.max_tokens is not None and rest.max_tokens <= 0) or (
            rest.deadline_s is not None and rest.deadline_s <= 0
        ):
            ctx.stopped = (
                "tokens" if rest.max_tokens is not None and rest.max_tokens <= 0 else "deadline"
            )
            return self._merge(ctx, draft, None, score, "no budget left to escalate")
        escalated = await e_strategy.run(problem, target, verifier, e_params, rest)
        ctx.absorb(escalated, e_model)  # billed at the escalation model's price
        why = f"escalated to {e_strategy.name}" + (f" on {e_model}" if e_model else "")
        why += f": draft score {score} < {threshold}" if score is not None else ": draft unscored"
        return self._merge(ctx, draft, escalated, score, why)

    def _rest(self, ctx: RunContext) -> Budget:
        left = ctx.remaining_tokens()
        left_s = ctx.remaining_s()
        return replace(ctx.budget, max_tokens=left, deadline_s=left_s)

    def _merge(
        self,
        ctx: RunContext,
        draft: Result,
        escalated: Result | None,
        score: float | None,
        why: str,
    ) -> Result:
        final = escalated if escalated is not None and escalated.text else draft
        anytime = ctx.stopped is not None or draft.anytime or bool(escalated and escalated.anytime)
        trace = None
        if ctx.trace_on:
            trace = {
                "events": ctx.events,
                "draft": draft.trace,
                "escalated": escalated.trace if escalated else None,
            }
        return Result(
            text=final.text,
            strategy=self.name,
            answer=final.answer,
            candidates=draft.candidates + (escalated.candidates if escalated else ()),
            usage=ctx.usage,
            anytime=anytime,
            finish_reason=final.finish_reason,
            trace=trace,
            notes=(why, *draft.notes, *(escalated.notes if escalated else ())),
            score=final.score if final is escalated else score,
            model_usage=dict(ctx.model_usage),
            stopped=ctx.stopped or final.stopped or draft.stopped,
        )
