"""`RunContext`: what every strategy run shares: budget and deadline enforcement, usage
accounting of every generator and verifier call, the compact trace, and `Result` assembly.

A budget or deadline that runs out raises `OutOfBudget` from the next call; strategies catch it
and return their best answer so far with `anytime=True`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from router.vocab.errors import UpstreamError, UpstreamTimeout
from router.vocab.upstream import Usage
from strategies.base import (
    AccountedVerifier,
    Batch,
    Budget,
    Candidate,
    Generator,
    Problem,
    Result,
    Verifier,
)

T = TypeVar("T")
MAX_TRACE_EVENTS = 2000


class OutOfBudget(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "tokens" | "deadline"


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def gather_all(aws: Sequence[Awaitable[T]]) -> list[T]:
    """Run concurrently; if any raises, cancel the rest. A failure made only of `OutOfBudget`
    comes out as one plain `OutOfBudget`; anything else re-raises the first real error."""

    async def run(aw: Awaitable[T]) -> T:
        return await aw

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(run(aw)) for aw in aws]
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        others = [e for e in leaves if not isinstance(e, OutOfBudget)]
        if others:
            raise others[0] from group
        first = leaves[0]
        raise OutOfBudget(first.reason if isinstance(first, OutOfBudget) else "deadline") from None
    return [t.result() for t in tasks]


class RunContext:
    def __init__(self, strategy: str, budget: Budget, params: Mapping[str, Any], problem: Problem):
        self.strategy = strategy
        self.budget = budget
        self.problem = problem
        self.started = time.monotonic()
        self.usage = Usage()
        self.model_usage: dict[str, Usage] = {}  # calls on other policy models, by name
        self.stopped: str | None = None
        self.samples_seen = 0
        self.samples_lost = 0
        self.trace_on = bool(params.get("trace", False))
        self.events: list[dict[str, Any]] = []
        self.verifier_notes: list[str] = []
        self.fmt: str = params.get("answer_format") or problem.answer_format
        cap = params.get("max_tokens")
        self.sample_tokens = (
            min(int(cap), budget.max_tokens_per_sample) if cap else (budget.max_tokens_per_sample)
        )

    # -- limits -------------------------------------------------------------------------
    def remaining_s(self) -> float | None:
        if self.budget.deadline_s is None:
            return None
        return self.budget.deadline_s - (time.monotonic() - self.started)

    def answer_tokens_left(self, used: int) -> int | None:
        """What the client's `max_tokens` leaves for a chain that holds `used` tokens."""
        cap = self.budget.max_answer_tokens
        return None if cap is None else cap - used

    def remaining_tokens(self) -> int | None:
        if self.budget.max_tokens is None:
            return None
        return self.budget.max_tokens - self.usage.total_tokens

    def _admit(self, n: int, max_tokens: int) -> tuple[int, int]:
        left_s = self.remaining_s()
        if left_s is not None and left_s <= 0:
            raise OutOfBudget("deadline")
        left = self.remaining_tokens()
        if left is None:
            return n, max_tokens
        if left <= 0:
            raise OutOfBudget("tokens")
        if left // n >= 1:
            return n, min(max_tokens, left // n)
        return left, 1

    async def _timed(self, aw: Awaitable[T]) -> T:
        left_s = self.remaining_s()
        if left_s is None:
            return await aw
        try:
            # a timeout scope, not `wait_for`: on Python 3.11 that wraps every call in a task
            # of its own, started a loop iteration later
            async with asyncio.timeout(max(left_s, 0.0)):
                return await aw
        except TimeoutError:
            raise OutOfBudget("deadline") from None

    def account(self, usage: Usage, model: str | None = None) -> None:
        """Add `usage` to the run's; `model` names another policy model that spent it (billed
        at that model's price)."""
        self.usage = self.usage + usage
        if model is not None:
            self.model_usage[model] = self.model_usage.get(model, Usage()) + usage

    def absorb(self, result: Result, model: str | None = None) -> None:
        """Account a sub-run's result (composite strategies): its usage, each share it billed
        to a named model (a verifier's, a draft model's) under that name, and, when `model` is
        given (the sub-run ran on another policy model), the rest under `model`."""
        self.usage = self.usage + result.usage
        named = Usage()
        for name, usage in result.model_usage.items():
            self.model_usage[name] = self.model_usage.get(name, Usage()) + usage
            named = named + usage
        if model is not None:
            rest = Usage(
                result.usage.prompt_tokens - named.prompt_tokens,
                result.usage.completion_tokens - named.completion_tokens,
                result.usage.reasoning_tokens - named.reasoning_tokens,
                result.usage.calls - named.calls,
                result.usage.upstream_seconds - named.upstream_seconds,
            )
            self.model_usage[model] = self.model_usage.get(model, Usage()) + rest

    # -- calls --------------------------------------------------------------------------
    async def call(
        self,
        make: Callable[[int, int], Awaitable[Batch]],
        n: int,
        max_tokens: int,
        model: str | None = None,
    ) -> Batch:
        """Run one generator call `make(n, max_tokens)` within the budget (which may lower
        both), under the deadline, and account its usage (to `model` when another policy model
        ran it)."""
        n, mt = self._admit(n, max_tokens)
        try:
            batch = await self._timed(make(n, mt))
        except (UpstreamError, UpstreamTimeout):
            if self.samples_seen == 0:
                raise  # nothing to answer from: the request fails cleanly
            # Some samples are in hand: stop searching and answer from them (anytime).
            self.samples_lost += n
            raise OutOfBudget("upstream") from None
        self.account(batch.usage, model)
        self.samples_seen += len(batch.samples)
        self.samples_lost += batch.failed
        return batch

    async def sample(
        self,
        generator: Generator,
        n: int,
        *,
        temperature: float,
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch:
        return await self.call(
            lambda k, mt: generator.sample(
                self.problem, k, temperature=temperature, max_tokens=mt, stop=stop, seed=seed
            ),
            n,
            max_tokens or self.sample_tokens,
        )

    async def extend(
        self,
        generator: Generator,
        prefix: str,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        model: str | None = None,
    ) -> Batch:
        return await self.call(
            lambda k, mt: generator.extend(
                self.problem, prefix, k, temperature=temperature, max_tokens=mt, stop=stop
            ),
            n,
            max_tokens,
            model,
        )

    async def score(
        self, verifier: Verifier, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Per-step scores for each candidate (a list of steps); accounted when the verifier
        reports its usage."""
        if not candidates:
            return []
        self._admit(1, 1)
        if isinstance(verifier, AccountedVerifier):
            scored = await self._timed(verifier.score_accounted(self.problem, candidates))
            self.account(scored.usage, scored.model)
            self.verifier_notes.extend(n for n in scored.notes if n not in self.verifier_notes)
            scores = scored.scores
        else:
            scores = await self._timed(verifier.score(self.problem, candidates))
        if len(scores) != len(candidates):
            raise UpstreamError(
                f"verifier returned {len(scores)} score lists for {len(candidates)} candidates"
            )
        return scores

    # -- trace and result -----------------------------------------------------------------
    def note(self, **event: Any) -> None:
        if self.trace_on and len(self.events) < MAX_TRACE_EVENTS:
            self.events.append(event)

    def result(
        self,
        best: Candidate | None,
        candidates: Sequence[Candidate],
        *,
        finish_reason: str | None = None,
        tree: Any = None,
        notes: Sequence[str] = (),
    ) -> Result:
        trace: dict[str, Any] | None = None
        if self.trace_on:
            trace = {"events": self.events}
            if tree is not None:
                trace["tree"] = tree
        cut = self.stopped is not None and self.stopped != "upstream"
        reason = finish_reason or ("length" if cut else "stop")
        left = self.answer_tokens_left(best.tokens) if best else None
        if left is not None and left <= 0:
            reason = "length"  # the client's max_tokens ended the answer
        if self.stopped == "deadline":
            reason = "deadline"  # the best answer so far, never mistaken for a finished one
        extra: list[str] = []
        if self.samples_lost:
            extra.append(
                f"{self.samples_lost} sample(s) lost to upstream errors; "
                f"answered from the {self.samples_seen} that arrived"
            )
        if self.stopped and self.stopped != "upstream":
            extra.append(f"stopped early: {self.stopped} budget")
        all_notes = tuple(notes) + tuple(self.verifier_notes) + tuple(extra)
        return Result(
            text=best.text if best else "",
            strategy=self.strategy,
            answer=best.answer if best else None,
            candidates=tuple(candidates),
            usage=self.usage,
            anytime=self.stopped is not None,
            finish_reason=reason,
            trace=trace,
            notes=all_notes,
            score=best.score if best else None,
            model_usage=dict(self.model_usage),
            stopped=self.stopped,
        )
