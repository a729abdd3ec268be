"""Outcome checkers: one score per candidate (1.0 correct, 0.0 not).

- `MathReference`: the candidate's extracted answer is equivalent (math-verify) to the problem's
  reference answer.
- `CodeTests`: the candidate's program (its last fenced code block, else the whole text) runs
  in the sandbox under `code_harness`, which counts the problem's tests it passes: the score
  is the pass rate (1.0 all pass). Per-candidate wall timeout, CPU seconds and memory are the
  sandbox limits; `total_s` caps the sandbox time of one scoring call.

Both are outcome checkers (`outcome = True`): strategies select by their score first and break
ties by the vote (`strategies.select.pick_outcome`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from router.vocab.errors import InvalidRequest
from strategies.answers import AnswerMatcher, extract_answer
from strategies.base import Problem, Scored
from strategies.sandbox import Sandbox, SandboxLimits
from strategies.verifiers.code_harness import HARNESS, parse_report


class MathReference:
    outcome = True

    def __init__(self, answer_format: str | None = None) -> None:
        self.answer_format = answer_format

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        if problem.reference is None:
            raise InvalidRequest("the math_reference verifier needs a reference answer")
        fmt = self.answer_format or problem.answer_format
        matcher = AnswerMatcher()
        return [
            [1.0 if matcher.equivalent(extract_answer("".join(c), fmt), problem.reference) else 0.0]
            for c in candidates
        ]


class CodeTests:
    """Pass rate of each candidate on the problem's tests (`code_harness`), one sandbox run per
    candidate. `total_s` caps the summed sandbox wall time of one scoring call: candidates
    not started by then score 0 (`skipped` counts them, `notes` says so)."""

    outcome = True

    def __init__(
        self, sandbox: Sandbox, *, max_concurrency: int = 2, total_s: float | None = None
    ) -> None:
        self.sandbox = sandbox
        self._limit = max_concurrency
        self.total_s = total_s

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored:
        if not problem.has_tests:
            raise InvalidRequest("the code_tests verifier needs tests with the request")
        sem = asyncio.Semaphore(self._limit)
        spent = 0.0
        skipped = 0

        async def one(steps: Sequence[str]) -> list[float]:
            nonlocal spent, skipped
            text = "".join(steps)
            program = extract_answer(text, "code") or text
            nonce = secrets.token_hex(8)
            job = {
                "nonce": nonce,
                "program": program,
                "tests": problem.tests or "",
                "cases": [list(c) for c in problem.io_tests],
                "entry_point": problem.entry_point,
            }
            async with sem:
                if self.total_s is not None and spent >= self.total_s:
                    skipped += 1
                    return [0.0]
                result = await self.sandbox.run(HARNESS, stdin=json.dumps(job) + "\n")
                spent += result.wall_s
            passed, planned = parse_report(result.stdout, nonce)
            return [passed / planned if planned else 0.0]

        scores = list(await asyncio.gather(*(one(c) for c in candidates)))
        notes: tuple[str, ...] = ()
        if skipped:
            notes = (
                f"sandbox time limit ({self.total_s:g}s) reached: {skipped} candidate(s) "
                "not tested",
            )
        return Scored(scores, notes=notes)

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return (await self.score_accounted(problem, candidates)).scores


def build_code_tests(options: Mapping[str, Any]) -> CodeTests:
    limits = SandboxLimits(
        timeout_s=options.get("timeout_s", 5.0),
        cpu_s=options.get("cpu_s", 5),
        memory_mb=options.get("memory_mb", 512),
        output_bytes=options.get("output_bytes", 64_000),
    )
    return CodeTests(
        Sandbox(limits),
        max_concurrency=options.get("max_concurrency", 2),
        total_s=options.get("total_s", 30.0),
    )
