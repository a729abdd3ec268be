"""Extended-thinking budgets.

- native: the upstream takes a thinking budget itself (Anthropic `thinking.budget_tokens`,
  OpenAI `reasoning_effort`), through a `ThinkingGenerator`.
- force (budget forcing, for local reasoning models that emit `<think>...</think>`): generate up
  to `budget_tokens` stopping at the end tag; if the budget cut the thinking, close it with the
  end tag; then continue the chain for at most `answer_max_tokens` to get the answer. The
  thinking tokens are accounted as reasoning tokens. A model that answers without a `<think>`
  block keeps its answer.
- auto: native when the generator supports it, else force when it can continue a partial
  solution, else one plain sample with room for budget + answer (noted in the result).

In every mode the result's text is the answer only; the thinking goes to `Result.reasoning`,
whatever shape it came in (`strategies.think`). `system_prompt` adds a system message asking
for thinking between the tags ("default": ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace as dc_replace
from typing import Any

from router.vocab.errors import PolicyError
from router.vocab.upstream import Message, Usage
from strategies.answers import extract_answer
from strategies.base import (
    Budget,
    Candidate,
    Generator,
    Problem,
    Result,
    ThinkingGenerator,
    Verifier,
)
from strategies.params import COMMON, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext
from strategies.think import THINKING_PROMPT, split_thinking

SPECS: dict[str, Spec] = {
    **COMMON,
    "temperature": Spec("float", 0.6, 0.0, 2.0),
    "budget_tokens": Spec("int", 1024, 1, 1_000_000),
    "reasoning_effort": Spec("str", None, choices=("minimal", "low", "medium", "high")),
    "mode": Spec("str", "auto", choices=("auto", "native", "force")),
    "answer_max_tokens": Spec("int", 256, 1, 100_000),
    "think_start": Spec("str", "<think>"),
    "think_end": Spec("str", "</think>"),
    # a system message asking for thinking between the tags: "default" (ours,
    # `strategies.think.THINKING_PROMPT`) or your own text ({start} and {end} are filled in)
    "system_prompt": Spec("str", None),
}


class Thinking:
    name = "thinking"
    step_level = False
    requires_verifier = False

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def max_samples(self, params: Mapping[str, Any]) -> int:
        return 2  # thinking, then the answer (budget forcing)

    def client_params(
        self, params: Mapping[str, Any], client: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The client may ask for less thinking than the policy allows, never more; its
        reasoning effort applies where the policy sets none."""
        out = dict(params)
        if "budget_tokens" in client:
            cap = int(params.get("budget_tokens") or SPECS["budget_tokens"].default)
            out["budget_tokens"] = min(int(client["budget_tokens"]), cap)
        if "reasoning_effort" in client and "reasoning_effort" not in params:
            out["reasoning_effort"] = client["reasoning_effort"]
        return out

    def sample_bound(self, params: Mapping[str, Any], max_tokens: int) -> tuple[int, int]:
        """A call generates up to the thinking budget plus the answer (native, plain); budget
        forcing re-sends the thinking before the answer."""
        think = int(params.get("budget_tokens") or SPECS["budget_tokens"].default)
        answer = int(params.get("answer_max_tokens") or SPECS["answer_max_tokens"].default)
        return think, max(max_tokens, think + answer)

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        p = resolve(params, SPECS)
        if p["system_prompt"]:
            text = THINKING_PROMPT if p["system_prompt"] == "default" else p["system_prompt"]
            system = Message("system", text.format(start=p["think_start"], end=p["think_end"]))
            problem = dc_replace(problem, messages=(system, *problem.messages))
        ctx = RunContext(self.name, budget, p, problem)
        caps = generator.capabilities
        mode = p["mode"]
        if mode == "auto":
            native = caps.thinking and isinstance(generator, ThinkingGenerator)
            mode = "native" if native else ("force" if caps.continues_partial else "plain")
        try:
            if mode == "native":
                return _answer_only(await self._native(ctx, generator, p), p)
            if mode == "force":
                return _answer_only(await self._force(ctx, generator, p), p)
            batch = await ctx.sample(
                generator,
                1,
                temperature=p["temperature"],
                stop=tuple(p["stop"]),
                seed=p["seed"],
                max_tokens=p["budget_tokens"] + p["answer_max_tokens"],
            )
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
            return ctx.result(None, ())
        s = batch.samples[0]
        best = Candidate(s.text, extract_answer(s.text, ctx.fmt), tokens=s.tokens)
        result = ctx.result(
            best,
            (best,),
            finish_reason=s.finish_reason,
            notes=("upstream has no thinking control: plain sample",),
        )
        return _answer_only(dc_replace(result, reasoning=s.reasoning), p)

    async def _native(self, ctx: RunContext, generator: Generator, p: dict[str, Any]) -> Result:
        if not isinstance(generator, ThinkingGenerator):
            raise PolicyError("thinking mode 'native' needs an upstream with a thinking budget")
        gen = generator
        batch = await ctx.call(
            lambda n, mt: gen.think(
                ctx.problem,
                n,
                temperature=p["temperature"],
                max_tokens=mt,
                budget_tokens=p["budget_tokens"],
                reasoning_effort=p["reasoning_effort"],
            ),
            1,
            p["budget_tokens"] + p["answer_max_tokens"],
        )
        s = batch.samples[0]
        best = Candidate(s.text, extract_answer(s.text, ctx.fmt), tokens=s.tokens)
        result = ctx.result(best, (best,), finish_reason=s.finish_reason)
        return dc_replace(result, reasoning=s.reasoning)

    async def _force(self, ctx: RunContext, generator: Generator, p: dict[str, Any]) -> Result:
        start, end = p["think_start"], p["think_end"]
        think = await ctx.call(
            lambda n, mt: generator.sample(
                ctx.problem,
                n,
                temperature=p["temperature"],
                max_tokens=mt,
                stop=(end,),
                seed=p["seed"],
            ),
            1,
            p["budget_tokens"],
        )
        s = think.samples[0]
        opened = start in s.text or generator.capabilities.think_tags  # template opened it
        if not opened and s.finish_reason == "stop":  # its tokens are the answer's, not thinking
            best = Candidate(s.text, extract_answer(s.text, ctx.fmt), tokens=s.tokens)
            return ctx.result(best, (best,), notes=("answered without thinking",))
        ctx.usage = _reclassify(ctx.usage, think.usage)
        cut = s.finish_reason == "length"
        prefix = s.text.rstrip() + "\n" + end + "\n\n"
        ctx.note(kind="thinking", tokens=s.tokens, cut=cut)
        answer = await ctx.extend(
            generator,
            prefix,
            1,
            temperature=p["temperature"],
            max_tokens=p["answer_max_tokens"],
            stop=tuple(p["stop"]),
        )
        a = answer.samples[0]
        best = Candidate(a.text, extract_answer(a.text, ctx.fmt), tokens=s.tokens + a.tokens)
        notes = ("thinking cut at the budget" if cut else "thinking ended within the budget",)
        result = ctx.result(best, (best,), finish_reason=a.finish_reason, notes=notes)
        return dc_replace(result, reasoning=s.text.replace(start, "", 1).strip())


def _answer_only(result: Result, p: dict[str, Any]) -> Result:
    """The answer without its thinking, whichever shape it came in (`split_thinking`);
    thinking that came apart from the text (Anthropic blocks, `reasoning_content`) is kept."""
    reasoning, answer = split_thinking(result.text, p["think_start"], p["think_end"])
    if reasoning is None:
        return result
    return dc_replace(result, text=answer, reasoning=result.reasoning or reasoning)


def _reclassify(total: Usage, thinking: Usage) -> Usage:
    """Move the thinking call's completion tokens to reasoning tokens in the running total."""
    return Usage(
        total.prompt_tokens,
        total.completion_tokens - thinking.completion_tokens,
        total.reasoning_tokens + thinking.completion_tokens,
        total.calls,
        total.upstream_seconds,
    )
