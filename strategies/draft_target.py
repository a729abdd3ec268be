"""Draft/target: speculative decoding applied to reasoning steps.

    params:
      draft_model: small        # a policy model; default: the tier's own model (draft settings)
      scorer: logprob           # logprob | verifier
      threshold: 0.6

Step by step, a cheap draft model proposes the next step (one call, stopping at
`step_delimiter`); a scorer rates it; a step scoring at least `threshold` is accepted, a step
below it is thrown away and the target model (the tier's model) writes that step instead. The
next step is drafted again from the chain so far, whoever wrote it. Scorers:

  logprob   the draft's own confidence: the geometric mean of its token probabilities,
            exp(mean token log-probability) (the draft upstream must return log-probabilities)
  verifier  the tier's verifier (a PRM, a judge, rollouts) on the chain with the new step,
            combined by `aggregation` (default `last`: the new step's score)

The trace records which model wrote each step and its score; the draft model's usage is
reported under its name in `Result.model_usage`, so the pipeline bills it at its own price and
the target's at the tier's. Without `draft_model`, both roles run on the tier's model with
different settings (`draft_temperature`, `target_temperature`); that is what the local-model
tests and benchmark do on a machine with one model.

The step-level counterpart of speculative decoding (Leviathan et al., 2023), in the spirit of
reward-guided speculative decoding for reasoning (Liao et al., 2025).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from router.vocab.errors import PolicyError
from router.vocab.upstream import Capabilities
from strategies.aggregate import aggregate
from strategies.base import (
    Budget,
    Generator,
    LogprobGenerator,
    MultiModelGenerator,
    Problem,
    Result,
    Sample,
    Stage,
    Verifier,
)
from strategies.params import COMMON, STEP, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext
from strategies.steps import Chain, grow, need_verifier

SPECS: dict[str, Spec] = {
    **COMMON,
    **{k: STEP[k] for k in ("step_delimiter", "max_depth", "step_max_tokens", "terminal")},
    "aggregation": Spec("str", "last", choices=STEP["aggregation"].choices),
    "draft_model": Spec("str", None),
    "scorer": Spec("str", "logprob", choices=("logprob", "verifier")),
    "threshold": Spec("float", 0.5, 0.0, 1.0),
    "draft_temperature": Spec("float", 0.0, 0.0, 2.0),
    "target_temperature": Spec("float", 0.0, 0.0, 2.0),
}


def logprob_score(sample: Sample) -> float | None:
    """Geometric-mean token probability of a sample; None without log-probabilities."""
    lps = sample.token_logprobs
    if not lps:
        return None
    return math.exp(sum(lps) / len(lps))


class DraftTarget:
    name = "draft_target"
    step_level = True
    requires_verifier = False  # only with `scorer: verifier`

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def check_capabilities(
        self,
        params: Mapping[str, Any],
        capabilities_for: Callable[[str | None], Capabilities | None],
        has_verifier: bool,
    ) -> list[str]:
        """Load-time checks: the logprob scorer needs a draft upstream that returns
        log-probabilities; the verifier scorer needs a verifier."""
        if params.get("scorer", "logprob") == "verifier":
            return [] if has_verifier else ["scorer: verifier needs a verifier on the tier"]
        model = params.get("draft_model")
        caps = capabilities_for(model)
        if caps is not None and not caps.logprobs:
            where = f"model {model!r}" if model else "the tier's model"
            return [f"scorer: logprob needs log-probabilities; {where} does not return them "
                    "(capabilities.logprobs)"]
        return []

    def stages(self, params: Mapping[str, Any]) -> list[Stage]:
        model = params.get("draft_model")
        return [Stage("draft", self, params, model)] if model else []

    def models(self, params: Mapping[str, Any]) -> list[str]:
        model = params.get("draft_model")
        return [model] if model else []

    def max_samples(self, params: Mapping[str, Any]) -> int:
        return 2 * int(params.get("max_depth", STEP["max_depth"].default))

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
        model: str | None = p["draft_model"]
        draft = self._draft_generator(generator, model, p["scorer"])
        v = need_verifier(self.name, verifier) if p["scorer"] == "verifier" else None
        delim: str = p["step_delimiter"]
        stop = (delim, *p["stop"]) if delim else tuple(p["stop"])
        chain = Chain()
        steps: list[dict[str, Any]] = []
        tokens = {"draft": 0, "target": 0}
        try:
            while not chain.done and len(chain.steps) < p["max_depth"]:
                left = ctx.answer_tokens_left(chain.tokens)  # the client's max_tokens
                if left is not None and left <= 0:
                    break
                step_tokens = p["step_max_tokens"] if left is None else min(
                    p["step_max_tokens"], left)
                batch = await ctx.extend(
                    draft, chain.text, 1, temperature=p["draft_temperature"],
                    max_tokens=step_tokens, stop=stop, model=model,
                )
                tokens["draft"] += batch.usage.total_tokens
                proposal = grow(chain, batch.samples[0], p, ctx.fmt, left)
                if proposal.steps == chain.steps:  # the draft has nothing more to say
                    chain = proposal
                    break
                score = await self._score(ctx, v, p, batch.samples[0], proposal)
                if score is not None and score >= p["threshold"]:
                    writer, chain = "draft", proposal
                else:
                    batch = await ctx.extend(
                        generator, chain.text, 1, temperature=p["target_temperature"],
                        max_tokens=step_tokens, stop=stop,
                    )
                    tokens["target"] += batch.usage.total_tokens
                    writer, chain = "target", grow(chain, batch.samples[0], p, ctx.fmt, left)
                steps.append({"writer": writer, "score": None if score is None else
                              round(score, 4), "step": chain.steps[-1][:200] if chain.steps
                              else ""})
                ctx.note(kind="step", depth=len(chain.steps), **steps[-1])
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
        accepted = sum(s["writer"] == "draft" for s in steps)
        if ctx.trace_on:
            ctx.note(kind="summary", accepted=accepted, regenerated=len(steps) - accepted,
                     draft_tokens=tokens["draft"], target_tokens=tokens["target"],
                     writers=[s["writer"] for s in steps])
        best = chain.candidate(ctx.fmt) if chain.steps else None
        return ctx.result(
            best, [best] if best else [],
            notes=(f"draft/target: {accepted} of {len(steps)} steps accepted from the draft"
                   + (f" ({model})" if model else ""),),
        )

    @staticmethod
    def _draft_generator(generator: Generator, model: str | None, scorer: str) -> Generator:
        draft = generator
        if model:
            if not isinstance(generator, MultiModelGenerator):
                raise PolicyError(f"draft_target drafts on {model!r} but the generator cannot "
                                  "switch models (build it with a model resolver)")
            draft = generator.with_model(model)
        if scorer == "logprob":
            if not draft.capabilities.logprobs or not isinstance(draft, LogprobGenerator):
                raise PolicyError("draft_target with scorer: logprob needs a draft model whose "
                                  "upstream returns log-probabilities (capabilities.logprobs)")
            draft = draft.with_logprobs()
        return draft

    @staticmethod
    async def _score(
        ctx: RunContext, v: Verifier | None, p: dict[str, Any], sample: Sample, proposal: Chain
    ) -> float | None:
        if v is None:
            return logprob_score(sample)
        raw = await ctx.score(v, [proposal.steps])
        return aggregate(raw[0], p["aggregation"])
