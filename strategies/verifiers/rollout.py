"""Monte Carlo rollout value: the value of a partial chain is the share of `k` sampled
completions that reach the agreed answer (the most common answer among them), or, when the
problem carries a reference answer and `use_reference` is on, the share that are correct.
The estimate is `strategies.montecarlo.estimate`, the same one `ttc-router prm-labels` labels
PRM training steps with.

Completions come from the configured model (`model`, a policy model name) through an
`UpstreamGenerator`; usage is reported. The score is one number per candidate (`last`, `min`
and the others all read it the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from router.vocab.upstream import Usage
from strategies.base import Generator, Problem, Scored
from strategies.montecarlo import count_hits, estimate

PROMPT_SLACK_TOKENS = 16  # what a prompt format wraps around the conversation and prefix


class RolloutValue:
    def __init__(
        self,
        generator: Generator,
        *,
        k: int = 4,
        temperature: float = 0.7,
        max_tokens: int = 256,
        stop: Sequence[str] = (),
        answer_format: str | None = None,
        use_reference: bool = True,
        model: str | None = None,
    ) -> None:
        self.generator = generator
        self.model = model  # its policy model name: the pipeline bills the calls at its price
        self.k = k
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.stop = tuple(stop)
        self.answer_format = answer_format
        self.use_reference = use_reference

    def value(self, problem: Problem, answers: list[str | None]) -> float:
        hits = count_hits(problem, answers, use_reference=self.use_reference)
        return hits / len(answers) if answers else 0.0

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored:
        async def one(steps: Sequence[str]) -> tuple[float, Usage]:
            v = await estimate(
                self.generator,
                problem,
                "".join(steps),
                self.k,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                stop=self.stop,
                answer_format=self.answer_format,
                use_reference=self.use_reference,
            )
            return v.soft, v.usage

        results = await asyncio.gather(*(one(c) for c in candidates))
        usage = Usage()
        for _, u in results:
            usage = usage + u
        return Scored([[v] for v, _ in results], usage, model=self.model)

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return (await self.score_accounted(problem, candidates)).scores


def build(options: Mapping[str, Any], generator: Generator) -> RolloutValue:
    return RolloutValue(
        generator,
        k=options.get("k", 4),
        temperature=options.get("temperature", 0.7),
        max_tokens=options.get("max_tokens", 256),
        stop=tuple(options.get("stop", ())),
        answer_format=options.get("answer_format"),
        use_reference=options.get("use_reference", True),
        model=options.get("model"),
    )


def worst_tokens(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    """Most (input, output) tokens one candidate's value may cost: `k` completions of the
    conversation plus the candidate (each charged the whole prompt, as upstreams without `n`
    are called once per completion), each up to `max_tokens`."""
    k = int(options.get("k", 4))
    prompt = question + candidate + PROMPT_SLACK_TOKENS
    return k * prompt, k * int(options.get("max_tokens", 256))
