"""Decompose: plan independent sub-problems, solve each with a sub-strategy, compose the answer.

    params:
      sub: {strategy: self_consistency, params: {n: 4}}   # default: greedy; `model` optional
      max_parts: 4
      prompts: {plan: ..., solve: ..., compose: ..., answer_line: ...}   # override templates

1. **Plan.** One call asks the model to split the question into at most `max_parts`
   independent sub-problems and reply with a JSON list of strings (structured output, parsed
   and validated by `parse_plan`). A reply that is not such a list, or a list of one, means the
   question does not split: it runs as one, through the sub-strategy, with no compose call.
2. **Solve.** Each sub-problem, rendered with the `solve` template, runs through the
   sub-strategy (which may be a search) concurrently with the others. They share what is left
   of the run's token budget and deadline after `compose_reserve` of it is kept for step 3;
   each gets an equal share of the tokens, at most `sub_token_budget`.
3. **Compose.** One call writes the final answer from the question and the sub-answers
   (`compose` template; each sub-answer is one `answer_line`).

Templates exist for chat upstreams and for completion-only ones (base models continue a
few-shot prompt); `prompts` overrides any of them. Placeholders: `{question}`, `{max_parts}`
(plan), `{sub_problem}` (solve, answer_line), `{sub_answer}` and `{index}` (answer_line),
`{sub_answers}` (compose); other braces are left as they are. The usage of every call (plan,
each sub-run, compose) is accounted; the trace holds the plan, each sub-problem with its answer
and sub-trace, and the composition.

The idea of solving sub-problems first and composing their answers is least-to-most prompting
(Zhou et al., 2023); here the sub-problems are independent, so they run in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import TypeAdapter, ValidationError

from router.vocab.errors import PolicyError
from router.vocab.upstream import Message
from strategies.answers import ANSWER_FORMATS, extract_answer
from strategies.base import (
    Budget,
    Candidate,
    Generator,
    MultiModelGenerator,
    Problem,
    Result,
    Stage,
    Strategy,
    Verifier,
)
from strategies.params import Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext, gather_all

CHAT_PROMPTS: dict[str, str] = {
    "plan": (
        "Split the problem below into at most {max_parts} independent sub-problems that can "
        "be solved separately, each stated in full. Reply with only a JSON list of strings. "
        "If the problem does not split, reply with a list holding the problem itself.\n\n"
        "Problem: {question}"
    ),
    "solve": "{sub_problem}",
    "compose": (
        "Problem: {question}\n\nResults of its sub-problems:\n{sub_answers}\n\n"
        "Using these results, solve the problem. End with 'The answer is X.'"
    ),
    "answer_line": "{index}. {sub_problem} -> {sub_answer}",
}
COMPLETION_PROMPTS: dict[str, str] = {
    "plan": (
        "Split each problem into independent sub-problems, as a JSON list.\n\n"
        "Problem: What is 12+5, and what is 3*4? Then add the two results.\n"
        'Sub-problems: ["12+5", "3*4"]\n\n'
        "Problem: What is the capital of France?\n"
        'Sub-problems: ["What is the capital of France?"]\n\n'
        "Problem: {question}\nSub-problems: ["
    ),
    "solve": "Question: {sub_problem}\nAnswer:",
    "compose": "Question: {question}\nKnown results:\n{sub_answers}\nAnswer:",
    "answer_line": "{sub_problem} = {sub_answer}",
}
PROMPT_KEYS = tuple(CHAT_PROMPTS)
REQUIRED = {"plan": ("{question}",), "solve": ("{sub_problem}",), "compose": ("{sub_answers}",)}

SPECS: dict[str, Spec] = {
    "sub": Spec("mapping", {"strategy": "greedy"}),
    "max_parts": Spec("int", 4, 2, 16),
    "prompts": Spec("mapping", {}),
    "plan_max_tokens": Spec("int", 256, 1, 100_000),
    "plan_stop": Spec("str_list", None),  # default: newline on completion-only upstreams
    "compose_max_tokens": Spec("int", None, 1, 1_000_000),  # default: the sample limit
    "compose_reserve": Spec("float", 0.2, 0.0, 0.9),
    "sub_token_budget": Spec("int", None, 1, 10_000_000),  # cap per sub-problem run
    "temperature": Spec("float", 0.0, 0.0, 2.0),  # plan and compose calls
    "stop": Spec("str_list", ()),  # compose call
    "trace": Spec("bool", False),
    "answer_format": Spec("str", None, choices=ANSWER_FORMATS),
}
STAGE_KEYS = frozenset({"strategy", "params", "model"})
_PLAN = TypeAdapter(list[str])


def fill(template: str, **values: Any) -> str:
    """Replace `{name}` placeholders only; other braces (JSON examples) stay as written."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def parse_plan(text: str, max_parts: int) -> tuple[list[str], str | None]:
    """The sub-problems in a planner reply (a JSON list of non-empty strings), or `([], why)`.

    The reply may omit the opening bracket (completion templates end with it) or the closing
    one (a stop sequence cut it); duplicates and blanks are dropped.
    """
    body = text.strip()
    start = body.find("[")
    if start < 0:
        body = "[" + body
        start = 0
    end = body.find("]", start)
    body = body[start : end + 1] if end >= 0 else body[start:] + "]"
    try:
        parts = _PLAN.validate_python(json.loads(body))
    except (ValueError, ValidationError):
        return [], "planner reply is not a JSON list of strings"
    parts = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if len(parts) > max_parts:
        return [], f"planner returned {len(parts)} sub-problems (max_parts {max_parts})"
    if len(parts) < 2:
        return [], "the question does not split"
    return parts, None


class Decompose:
    name = "decompose"
    step_level = False
    requires_verifier = False

    def __init__(self, registry: Mapping[str, Strategy]) -> None:
        self._registry = registry

    def sub_stage(self, params: Mapping[str, Any]) -> tuple[Strategy, dict[str, Any], str | None]:
        spec = dict(params.get("sub") or SPECS["sub"].default)
        return self._registry[spec["strategy"]], dict(spec.get("params") or {}), spec.get("model")

    def stages(self, params: Mapping[str, Any]) -> list[Stage]:
        return [Stage("sub", *self.sub_stage(params))]

    def models(self, params: Mapping[str, Any]) -> list[str]:
        _, _, model = self.sub_stage(params)
        return [model] if model else []

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        errors = check(params, SPECS)
        stage = params.get("sub")
        if isinstance(stage, Mapping):
            errors += [f"sub: unknown key {k!r}" for k in stage if k not in STAGE_KEYS]
            name = stage.get("strategy")
            valid = sorted(n for n in self._registry if n != self.name)
            if name not in valid:
                errors.append(f"sub.strategy must be one of {', '.join(valid)}, got {name!r}")
            elif not isinstance(stage.get("params") or {}, Mapping):
                errors.append("sub.params must be a mapping")
            else:
                sub_errors = self._registry[name].check_params(stage.get("params") or {})
                errors += [f"sub.params: {e}" for e in sub_errors]
            if "model" in stage and not isinstance(stage["model"], str):
                errors.append("sub.model must be a model name")
        prompts = params.get("prompts")
        if isinstance(prompts, Mapping):
            for key, text in prompts.items():
                if key not in PROMPT_KEYS:
                    errors.append(f"prompts: unknown template {key!r} (valid: "
                                  f"{', '.join(PROMPT_KEYS)})")
                elif not isinstance(text, str):
                    errors.append(f"prompts.{key} must be a string")
                else:
                    errors += [f"prompts.{key} must contain {ph}"
                               for ph in REQUIRED.get(key, ()) if ph not in text]
        return errors

    def max_samples(self, params: Mapping[str, Any]) -> int:
        sub, sub_params, _ = self.sub_stage(params)
        parts = int(params.get("max_parts", SPECS["max_parts"].default))
        return 2 + parts * sub.max_samples(sub_params)

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
        sub, sub_params, sub_model = self.sub_stage(params)
        sub_params.setdefault("trace", p["trace"])
        sub_params.setdefault("answer_format", ctx.fmt)
        chat = generator.capabilities.chat
        prompts = {**(CHAT_PROMPTS if chat else COMPLETION_PROMPTS), **p["prompts"]}
        solver = generator
        if sub_model:
            if not isinstance(generator, MultiModelGenerator):
                raise PolicyError(f"decompose solves on {sub_model!r} but the generator "
                                  "cannot switch models (build it with a model resolver)")
            solver = generator.with_model(sub_model)
        question = problem.question

        # 1. plan
        plan_stop = p["plan_stop"] if p["plan_stop"] is not None else ([] if chat else ["\n"])
        plan_prompt = fill(prompts["plan"], question=question, max_parts=p["max_parts"])
        try:
            plan = await self._ask(ctx, generator, plan_prompt, p["plan_max_tokens"],
                                   p["temperature"], plan_stop)
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
            return ctx.result(None, ())
        parts, why = parse_plan(plan, p["max_parts"])
        ctx.note(kind="plan", reply=plan[:2000], parts=parts, split=bool(parts), why=why)
        if not parts:  # runs as one: the sub-strategy on the question itself
            whole = await sub.run(problem, solver, verifier, sub_params, self._rest(ctx, 1.0))
            ctx.absorb(whole, sub_model)
            return self._finish(ctx, whole.text, whole.finish_reason, [whole], whole, why)

        # 2. solve the sub-problems concurrently, sharing what the compose call does not need
        share = self._rest(ctx, 1.0 - p["compose_reserve"], len(parts))
        if p["sub_token_budget"] is not None:
            cap = p["sub_token_budget"]
            left = share.max_tokens
            share = replace(share, max_tokens=cap if left is None else min(cap, left))
        problems = [
            Problem(messages=(Message("user", fill(prompts["solve"], sub_problem=part)),),
                    answer_format=ctx.fmt)
            for part in parts
        ]
        subs = await gather_all(
            [sub.run(sp, solver, verifier, sub_params, share) for sp in problems]
        )
        lines = []
        for i, (part, r) in enumerate(zip(parts, subs, strict=True), 1):
            ctx.absorb(r, sub_model)
            answer = r.answer if r.answer is not None else r.text.strip()
            lines.append(fill(prompts["answer_line"], index=i, sub_problem=part,
                              sub_answer=answer or "(no answer)"))
            ctx.note(kind="sub_problem", index=i, problem=part, answer=answer,
                     strategy=sub.name, tokens=r.usage.total_tokens, anytime=r.anytime,
                     trace=r.trace)

        # 3. compose
        compose_prompt = fill(prompts["compose"], question=question, sub_answers="\n".join(lines))
        try:
            text = await self._ask(ctx, generator, compose_prompt,
                                   p["compose_max_tokens"] or ctx.sample_tokens,
                                   p["temperature"], p["stop"])
        except OutOfBudget as exc:  # no room left to compose: the sub-answers are the answer
            ctx.stopped = exc.reason
            text = "\n".join(lines)
        ctx.note(kind="compose", prompt_chars=len(compose_prompt), text=text[:2000])
        return self._finish(ctx, text, "stop", subs, None, f"{len(parts)} sub-problems")

    async def _ask(
        self, ctx: RunContext, generator: Generator, prompt: str, max_tokens: int,
        temperature: float, stop: list[str],
    ) -> str:
        one = Problem(messages=(Message("user", prompt),), answer_format=ctx.fmt)
        batch = await ctx.call(
            lambda k, mt: generator.sample(
                one, k, temperature=temperature, max_tokens=mt, stop=tuple(stop)
            ),
            1,
            max_tokens,
        )
        return batch.samples[0].text if batch.samples else ""

    @staticmethod
    def _rest(ctx: RunContext, fraction: float, parts: int = 1) -> Budget:
        left = ctx.remaining_tokens()
        left_s = ctx.remaining_s()
        return replace(
            ctx.budget,
            max_tokens=None if left is None else max(int(left * fraction) // parts, 0),
            deadline_s=None if left_s is None else max(left_s * fraction, 0.0),
        )

    def _finish(
        self,
        ctx: RunContext,
        text: str,
        finish_reason: str,
        subs: list[Result],
        whole: Result | None,
        why: str | None,
    ) -> Result:
        best = Candidate(text=text, answer=extract_answer(text, ctx.fmt)) if text else None
        notes = [f"decompose: {why}"] if why else []
        notes += [n for r in subs for n in r.notes]
        result = ctx.result(best, [best] if best else [], finish_reason=finish_reason,
                            notes=notes)
        result = replace(result, anytime=result.anytime or any(r.anytime for r in subs))
        if whole is not None:  # ran as one: keep the sub-run's candidates and its score
            return replace(result, candidates=whole.candidates, score=whole.score)
        return result
