"""An LLM judge as a PRM: a configured model rates each step of a candidate.

For step i the judge sees the question and steps 1..i and is asked whether step i is correct,
answering `yes` or `no`. With logprobs (`Capabilities.logprobs`) the score is P(yes): exp of the
first token's logprob if it says yes, else 1 - that. Without logprobs the reply is parsed: yes ->
1, no -> 0, a number in [0, 10] -> n / 10, anything else -> 0.5. Calls are concurrent (bounded)
and their usage is reported (`score_accounted`). `steps: last` rates only the whole chain.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from router.vocab.upstream import GenerationRequest, Message, Upstream, Usage
from strategies.base import Problem, Scored

PROMPT = (
    "You check solutions step by step.\n\nQuestion:\n{question}\n\nSolution so far:\n{steps}\n\n"
    "Is the last step (step {i}) correct? Answer yes or no.\nAnswer:"
)
CHARS_PER_TOKEN = 3  # the router's conservative prompt estimate
STEP_LABEL_TOKENS = 4  # "Step k: " and the newline around each shown step
_NUMBER = re.compile(r"\b(10|\d(?:\.\d+)?)\b")


def parse_judgement(text: str, logprob: float | None) -> float:
    words = text.strip().lower()
    if logprob is not None and words:
        p = math.exp(logprob)
        if words.startswith("yes"):
            return p
        if words.startswith("no"):
            return 1.0 - p
    if words.startswith("yes"):
        return 1.0
    if words.startswith("no"):
        return 0.0
    m = _NUMBER.search(words)
    return min(1.0, float(m.group(1)) / 10) if m else 0.5


class JudgePRM:
    def __init__(
        self,
        upstream: Upstream,
        *,
        prompt: str = PROMPT,
        per_step: bool = True,
        max_tokens: int = 4,
        max_concurrency: int = 8,
        model: str | None = None,
    ) -> None:
        self.upstream = upstream
        self.model = model  # its policy model name: the pipeline bills the calls at its price
        self.prompt = prompt
        self.per_step = per_step
        self.max_tokens = max_tokens
        self._limit = max_concurrency

    def _request(self, problem: Problem, steps: Sequence[str], i: int) -> GenerationRequest:
        shown = "\n".join(f"Step {k + 1}: {s.strip()}" for k, s in enumerate(steps[: i + 1]))
        text = self.prompt.format(question=problem.question, steps=shown, i=i + 1)
        caps = self.upstream.capabilities
        common: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "logprobs": caps.logprobs,
        }
        if caps.chat:
            return GenerationRequest(messages=(Message("user", text),), **common)
        return GenerationRequest(prompt=text, stop=("\n",), **common)

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored:
        sem = asyncio.Semaphore(self._limit)
        usage = Usage()

        async def judge(steps: Sequence[str], i: int) -> float:
            nonlocal usage
            async with sem:
                gen = await self.upstream.generate(self._request(problem, steps, i))
            usage = usage + gen.usage
            choice = gen.choices[0]
            lps = choice.token_logprobs
            return parse_judgement(choice.text, lps[0] if lps else None)

        async def one(steps: Sequence[str]) -> list[float]:
            idx = range(len(steps)) if self.per_step else [len(steps) - 1]
            return list(await asyncio.gather(*(judge(steps, i) for i in idx)))

        scores = list(await asyncio.gather(*(one(c) for c in candidates)))
        return Scored(scores, usage, model=self.model)

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return (await self.score_accounted(problem, candidates)).scores


def build(options: Mapping[str, Any], upstream: Upstream) -> JudgePRM:
    return JudgePRM(
        upstream,
        prompt=options.get("prompt", PROMPT),
        per_step=options.get("steps", "each") == "each",
        max_tokens=options.get("max_tokens", 4),
        max_concurrency=options.get("max_concurrency", 8),
        model=options.get("model"),
    )


def worst_tokens(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    """Most (input, output) tokens judging one candidate may cost: one call per step (`each`)
    or one (`last`), each showing the prompt template, the question and up to the whole
    candidate, and answering in at most `max_tokens`."""
    calls = max(1, steps) if options.get("steps", "each") == "each" else 1
    template = math.ceil(len(str(options.get("prompt", PROMPT))) / CHARS_PER_TOKEN) + 16
    per_call = template + question + candidate + STEP_LABEL_TOKENS * max(1, steps)
    return calls * per_call, calls * int(options.get("max_tokens", 4))
