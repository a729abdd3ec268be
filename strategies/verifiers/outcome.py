"""Outcome checkers: one score per candidate (1.0 correct, 0.0 not).

- `MathReference`: the candidate's extracted answer is equivalent (math-verify) to the problem's
  reference answer.
- `CodeTests`: the candidate's program (its last fenced code block, else the whole text) followed
  by the problem's tests runs in the sandbox; exit status 0 within the limits passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from router.errors import InvalidRequest
from strategies.answers import AnswerMatcher, extract_answer
from strategies.base import Problem
from strategies.sandbox import Sandbox, SandboxLimits


class MathReference:
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
    def __init__(self, sandbox: Sandbox, *, max_concurrency: int = 2) -> None:
        self.sandbox = sandbox
        self._limit = max_concurrency

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        if not problem.tests:
            raise InvalidRequest("the code_tests verifier needs tests with the request")
        tests = problem.tests
        sem = asyncio.Semaphore(self._limit)

        async def one(steps: Sequence[str]) -> list[float]:
            text = "".join(steps)
            program = extract_answer(text, "code") or text
            async with sem:
                result = await self.sandbox.run(program + "\n\n" + tests + "\n")
            return [1.0 if result.ok else 0.0]

        return list(await asyncio.gather(*(one(c) for c in candidates)))


def build_code_tests(options: Mapping[str, Any]) -> CodeTests:
    limits = SandboxLimits(
        timeout_s=options.get("timeout_s", 5.0),
        cpu_s=options.get("cpu_s", 5),
        memory_mb=options.get("memory_mb", 512),
        output_bytes=options.get("output_bytes", 64_000),
    )
    return CodeTests(Sandbox(limits), max_concurrency=options.get("max_concurrency", 2))
