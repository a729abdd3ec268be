"""Running the grid: every configuration on every item (x repeats), resumably.

    records = await run_grid(items, configs, StrategyRunner(...), cache, model=..., max_tokens=...)

`run_grid` skips whatever the cache already holds, runs the rest with bounded concurrency and
appends each finished run to the cache at once. The run function is a seam: `StrategyRunner`
runs a registered strategy through a `Generator` and checks the answer; benchmarks and tests
pass their own.

Checking: an item with a `reference` is correct when the run's answer is equivalent to it
(`strategies.answers`); an item with `tests` is correct when the run's program passes them in
the sandbox. For the solve rate every sampled candidate of a reference item is checked the
same way; for a tests item the run itself counts as one candidate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from router.calibrate.cache import TEXT_CHARS, Record, ResultCache
from router.calibrate.data import EvalItem
from router.calibrate.grid import GridConfig
from router.upstreams.base import Price, Usage
from strategies.answers import AnswerMatcher, extract_answer
from strategies.base import Budget, Generator, Result, Strategy, Verifier


@dataclass(frozen=True)
class Outcome:
    correct: bool
    answer: str | None = None
    usage: Usage = field(default_factory=Usage)
    usd: float = 0.0
    latency_s: float = 0.0
    candidates: int = 0
    candidates_correct: int = 0
    anytime: bool = False
    text: str | None = None  # the raw output the answer came from


RunFn = Callable[[GridConfig, EvalItem, int], Awaitable[Outcome]]
OnDone = Callable[[GridConfig, Record | None, BaseException | None], None]


@dataclass
class GridRun:
    records: list[Record]  # every (config, item, repeat) that has a result, cached or new
    ran: int = 0  # runs executed now
    reused: int = 0  # runs found in the cache
    errors: list[str] = field(default_factory=list)  # failed runs (not cached: retried next time)


async def run_grid(
    items: Sequence[EvalItem],
    configs: Sequence[GridConfig],
    run: RunFn,
    cache: ResultCache,
    *,
    model: str,
    max_tokens: int,
    repeats: int = 1,
    concurrency: int = 4,
    on_done: OnDone | None = None,
) -> GridRun:
    sem = asyncio.Semaphore(max(1, concurrency))
    out = GridRun(records=[])
    todo: list[tuple[GridConfig, EvalItem, int, str]] = []
    for config in configs:
        key = config.key(model, max_tokens)
        for item in items:
            for r in range(repeats):
                found = cache.get((key, item.key, r))
                if found is not None:
                    out.records.append(found)
                    out.reused += 1
                else:
                    todo.append((config, item, r, key))

    async def one(config: GridConfig, item: EvalItem, repeat: int, key: str) -> None:
        async with sem:
            try:
                o = await run(config, item, repeat)
            except Exception as exc:  # one failed run must not stop the calibration
                out.errors.append(f"{config.label} on {item.id}: {type(exc).__name__}: {exc}")
                if on_done is not None:
                    on_done(config, None, exc)
                return
        u = o.usage
        record = Record(
            config=key, item=item.key, repeat=repeat, label=config.label, correct=o.correct,
            answer=o.answer, prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, reasoning_tokens=u.reasoning_tokens,
            calls=u.calls, usd=o.usd, latency_s=round(o.latency_s, 4),
            candidates=o.candidates, candidates_correct=o.candidates_correct, anytime=o.anytime,
            text=None if o.text is None else o.text[:TEXT_CHARS],
        )
        cache.add(record)
        out.records.append(record)
        out.ran += 1
        if on_done is not None:
            on_done(config, record, None)

    await asyncio.gather(*(one(*t) for t in todo))
    return out


class Checker:
    """Correctness of answers against an item's reference or tests."""

    def __init__(self, code_verifier: Verifier | None = None) -> None:
        self._matcher = AnswerMatcher()
        self._code = code_verifier

    def matches(self, item: EvalItem, answer: str | None) -> bool:
        return self._matcher.equivalent(answer, item.reference)

    async def check(self, item: EvalItem, result: Result) -> tuple[bool, int, int]:
        """(correct, candidates checked, candidates correct)."""
        if item.reference is not None:
            answer = result.answer
            if answer is None and result.text:
                answer = extract_answer(result.text, item.problem().answer_format)
            correct = self.matches(item, answer)
            cands = [c.answer for c in result.candidates] or [answer]
            good = sum(self.matches(item, a) for a in cands)
            return correct, len(cands), good
        if self._code is None:
            from strategies.verifiers.outcome import build_code_tests

            self._code = build_code_tests({})
        scores = await self._code.score(item.problem(), [[result.text]])
        ok = bool(scores and scores[0] and scores[0][0] >= 1.0)
        return ok, 1, int(ok)


class StrategyRunner:
    """Runs a registered strategy on the configured model and checks its answer."""

    def __init__(
        self,
        generator: Generator,
        verifier_for: Callable[[str | None], Verifier | None],
        *,
        price: Price | None = None,
        budget: Budget | None = None,
        registry: Mapping[str, Strategy] | None = None,
        checker: Checker | None = None,
    ) -> None:
        if registry is None:
            from strategies import REGISTRY

            registry = REGISTRY
        self.generator = generator
        self.verifier_for = verifier_for
        self.price = price or Price()
        self.budget = budget or Budget()
        self.registry = registry
        self.checker = checker or Checker()

    async def __call__(self, config: GridConfig, item: EvalItem, repeat: int) -> Outcome:
        strategy = self.registry[config.strategy]
        verifier = self.verifier_for(config.verifier)
        start = time.perf_counter()
        result = await strategy.run(
            item.problem(), self.generator, verifier, config.params, self.budget
        )
        latency = time.perf_counter() - start
        correct, n, good = await self.checker.check(item, result)
        return Outcome(
            correct=correct, answer=result.answer, usage=result.usage,
            usd=self.price.cost(result.usage), latency_s=latency, candidates=n,
            candidates_correct=good, anytime=result.anytime, text=result.text,
        )
