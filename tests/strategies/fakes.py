"""Scripted implementations of the Generator and Verifier protocols (deterministic per prompt)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from router.upstreams.base import Capabilities, Usage
from strategies.base import Batch, Problem, Sample

STEP_CAPS = Capabilities(chat=False, completions=True, n=True)


@dataclass
class Call:
    prefix: str
    n: int
    max_tokens: int
    stop: tuple[str, ...]
    temperature: float


@dataclass
class ScriptedGenerator:
    """`script[prefix]` lists continuations handed out in order (cycling) for that prefix.
    A continuation is text, or (text, finish_reason). One token per character."""

    script: Mapping[str, Sequence[str | tuple[str, str]]]
    capabilities: Capabilities = STEP_CAPS
    delay_s: float = 0.0
    calls: list[Call] = field(default_factory=list)
    _cursor: dict[str, int] = field(default_factory=dict)

    async def _gen(
        self, prefix: str, n: int, max_tokens: int, stop: Sequence[str], t: float
    ) -> Batch:
        self.calls.append(Call(prefix, n, max_tokens, tuple(stop), t))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        options = self.script.get(prefix) or [("", "stop")]
        samples = []
        for _ in range(n):
            i = self._cursor.get(prefix, 0)
            self._cursor[prefix] = i + 1
            item = options[i % len(options)]
            text, finish = (item, "stop") if isinstance(item, str) else item
            if len(text) > max_tokens:
                text, finish = text[:max_tokens], "length"
            samples.append(Sample(text=text, tokens=len(text), finish_reason=finish))
        usage = Usage(len(prefix) + 10, sum(s.tokens for s in samples), calls=1)
        return Batch(samples=tuple(samples), usage=usage)

    async def sample(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch:
        return await self._gen("", n, max_tokens, stop, temperature)

    async def extend(
        self,
        problem: Problem,
        prefix: str,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
    ) -> Batch:
        return await self._gen(prefix, n, max_tokens, stop, temperature)


@dataclass
class ScriptedPRM:
    """Per-step score looked up by the step's text (stripped); `default` otherwise."""

    scores: Mapping[str, float] = field(default_factory=dict)
    default: float = 0.5
    rule: Callable[[str], float] | None = None
    calls: list[list[list[str]]] = field(default_factory=list)

    def step_score(self, step: str) -> float:
        if self.rule is not None:
            return self.rule(step)
        return self.scores.get(step.strip(), self.default)

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        self.calls.append([list(c) for c in candidates])
        return [[self.step_score(s) for s in c] for c in candidates]


def problem(question: str = "q", reference: str | None = None, fmt: str = "auto") -> Problem:
    from router.upstreams.base import Message

    return Problem(messages=(Message("user", question),), reference=reference, answer_format=fmt)
