"""A check the request carries over the answer itself (not a program): the `answer_check`
verifier.

Some requests can say what a right answer looks like without knowing it, the way a code request
carries tests: "sort these numbers" (the answer holds the same numbers, in order), "factor 391"
(two numbers above 1 whose product is 391), "a word of 7 letters starting with b". The request
sends a Python snippet (`ttc.check`) that runs with two names bound:

- `answer`: the candidate's final answer as a string (the verifier's `answer_format` extracts
  it; `text` by default: the whole candidate, stripped),
- `text`: the whole candidate text.

Top-level `assert` statements are one test each and the score is the share that pass; a snippet
without asserts is one test that passes when it runs without an exception. The snippet sees the
request (it is part of it), never a reference answer.

All of one scoring call's distinct answers are checked in one sandbox process (the candidates
are data, not code, so they need no isolation from each other; the snippet is the untrusted
part, and the sandbox contains it). The harness prints `<nonce> index passed planned` after
each candidate, so a snippet that hangs on one candidate keeps the scores of those before it
and scores the rest 0.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from router.vocab.errors import InvalidRequest
from strategies.answers import extract_answer
from strategies.base import Problem, Scored
from strategies.sandbox import Sandbox, SandboxLimits

CHECK_HARNESS = r"""
import ast, contextlib, io, json, sys
job = json.loads(sys.stdin.readline())
NONCE = job["nonce"]
try:
    tree = ast.parse(job["check"])
except SyntaxError:
    tree = None
if tree is None:
    units = []
else:
    asserts = [s for s in tree.body if isinstance(s, ast.Assert)]
    setup = [s for s in tree.body if not isinstance(s, ast.Assert)]
    if asserts:
        units = [compile(ast.Module([s], []), "check.py", "exec") for s in asserts]
        setup = compile(ast.Module(setup, []), "check.py", "exec")
    else:
        units = [compile(tree, "check.py", "exec")]
        setup = None
for index, (answer, text) in enumerate(job["candidates"]):
    passed = 0
    env = {"__name__": "__check__", "answer": answer, "text": text}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        ready = True
        if setup is not None:
            try:
                exec(setup, env)
            except BaseException:
                ready = False
        for unit in units:
            if not ready:
                break
            try:
                exec(unit, env)
                passed += 1
            except BaseException:
                pass
    sys.__stdout__.write("%s %d %d %d\n" % (NONCE, index, passed, len(units)))
    sys.__stdout__.flush()
"""

_LINE = re.compile(r"^(\S+) (\d+) (\d+) (\d+)$", re.M)


def parse_scores(stdout: str, nonce: str, count: int) -> list[float]:
    """Each candidate's pass rate from the harness's lines (0 for candidates it never reached,
    and for a snippet without a test)."""
    scores = [0.0] * count
    for m in _LINE.finditer(stdout):
        if m.group(1) != nonce:
            continue
        index, passed, planned = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if 0 <= index < count and planned:
            scores[index] = passed / planned
    return scores


class AnswerCheck:
    """Scores candidates by the request's `check` snippet: the share of its asserts that hold
    for the candidate's answer. An outcome checker (`outcome = True`)."""

    outcome = True

    def __init__(self, sandbox: Sandbox, *, answer_format: str = "text") -> None:
        self.sandbox = sandbox
        self.answer_format = answer_format

    def answer_of(self, text: str) -> str:
        return extract_answer(text, self.answer_format) or ""

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored:
        if not problem.check:
            raise InvalidRequest("the answer_check verifier needs a check with the request")
        texts = ["".join(c) for c in candidates]
        distinct = sorted({(self.answer_of(t), t) for t in texts})
        nonce = secrets.token_hex(8)
        job = {"nonce": nonce, "check": problem.check, "candidates": distinct}
        result = await self.sandbox.run(CHECK_HARNESS, stdin=json.dumps(job) + "\n")
        by_candidate = dict(zip(distinct, parse_scores(result.stdout, nonce, len(distinct)),
                                strict=True))
        notes: tuple[str, ...] = ()
        if result.violation:
            notes = (f"answer check stopped ({result.violation}): unchecked candidates score 0",)
        return Scored([[by_candidate[(self.answer_of(t), t)]] for t in texts], notes=notes)

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return (await self.score_accounted(problem, candidates)).scores


def build_answer_check(options: Mapping[str, Any]) -> AnswerCheck:
    limits = SandboxLimits(
        timeout_s=options.get("timeout_s", 5.0),
        cpu_s=options.get("cpu_s", 5),
        memory_mb=options.get("memory_mb", 256),
        output_bytes=options.get("output_bytes", 64_000),
    )
    return AnswerCheck(Sandbox(limits), answer_format=options.get("answer_format", "text"))


__all__ = ["CHECK_HARNESS", "AnswerCheck", "build_answer_check", "parse_scores"]
