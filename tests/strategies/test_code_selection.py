"""Code tests as the selector: pass rates from the sandboxed harness, best-of-N and
self-consistency picking by pass rate with ties broken by the vote."""

from __future__ import annotations

from dataclasses import replace

import pytest

from strategies import REGISTRY, Budget, Problem
from strategies.sandbox import Sandbox, SandboxLimits
from strategies.select import pick_outcome
from strategies.verifiers.outcome import CodeTests
from tests.strategies.fakes import ScriptedGenerator, problem

GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
HALF = "```python\ndef add(a, b):\n    return a + b if a else 0\n```"  # fails when a == 0
BAD = "```python\ndef add(a, b):\n    return a - b\n```"
BROKEN = "```python\ndef add(a, b)\n    return a + b\n```"
HANG = "```python\ndef add(a, b):\n    while True:\n        pass\n```"
TESTS = "assert add(1, 2) == 3\nassert add(0, 5) == 5\n"
B = Budget(max_tokens_per_sample=256)


def _checker(timeout_s: float = 3.0, total_s: float | None = None) -> CodeTests:
    limits = SandboxLimits(timeout_s=timeout_s, cpu_s=2, memory_mb=256)
    return CodeTests(Sandbox(limits), max_concurrency=2, total_s=total_s)


def _problem(tests: str = TESTS) -> Problem:
    return replace(problem("write add"), tests=tests, answer_format="code")


async def test_pass_rates_of_asserts_io_cases_and_humaneval_check() -> None:
    checker = _checker()
    scores = await checker.score(_problem(), [[GOOD], [HALF], [BAD], [BROKEN]])
    assert scores == [[1.0], [0.5], [0.0], [0.0]]
    echo = "```python\nprint(int(input()) * 2)\n```"
    io = replace(problem("double"), io_tests=(("2\n", "4"), ("5\n", "10"), ("1\n", "3")))
    assert await checker.score(io, [[echo]]) == [[pytest.approx(2 / 3)]]
    check = (
        "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 5) == 5\n"
    )
    human = replace(problem("add"), tests=check, entry_point="add")
    assert await checker.score(human, [[GOOD], [HALF]]) == [[1.0], [0.5]]


async def test_a_candidate_cannot_forge_the_report_or_escape_the_timeout() -> None:
    forge = "```python\nprint('x 99 99')\ndef add(a, b):\n    return 0\n```"
    checker = _checker(timeout_s=1.5)
    scores = await checker.score(_problem(), [[forge], [HANG]])
    assert scores == [[0.0], [0.0]]


async def test_total_sandbox_time_per_request_is_capped_and_noted() -> None:
    checker = _checker(timeout_s=1.0, total_s=0.5)
    checker._limit = 1  # one at a time: the second starts after the first spent its second
    scored = await checker.score_accounted(_problem(), [[HANG], [GOOD]])
    assert scored.scores == [[0.0], [0.0]]
    assert scored.notes and "1 candidate(s) not tested" in scored.notes[0]


def test_pick_outcome_breaks_ties_by_the_vote() -> None:
    assert pick_outcome(["a", "b", "b", "c"], [1.0, 1.0, 1.0, 0.5]) == 1
    assert pick_outcome(["a", "b", "b"], [1.0, 0.5, 0.5]) == 0  # the score comes first
    assert pick_outcome(["a", "b"], [0.0, 0.0]) == 0


async def test_best_of_n_selects_the_passing_program() -> None:
    gen = ScriptedGenerator({"": [BAD, BAD, HALF, GOOD]})
    result = await REGISTRY["best_of_n"].run(_problem(), gen, _checker(), {"n": 4}, B)
    assert result.text == GOOD and result.score == 1.0
    assert [c.score for c in result.candidates] == [0.0, 0.0, 0.5, 1.0]
    # weighted mode would have let the two identical wrong programs outvote nothing here;
    # with an outcome checker the vote only breaks ties:
    gen = ScriptedGenerator({"": [HALF, GOOD, GOOD, BAD]})
    result = await REGISTRY["best_of_n"].run(_problem(), gen, _checker(), {"n": 4}, B)
    assert result.text == GOOD


async def test_self_consistency_checks_every_sample_not_just_the_vote() -> None:
    gen = ScriptedGenerator({"": [BAD, BAD, GOOD]})
    params = {"n": 3, "round_size": 3}
    result = await REGISTRY["self_consistency"].run(_problem(), gen, _checker(), params, B)
    assert result.text == GOOD  # the vote alone picks BAD (2 of 3)
    assert "selected by the verifier" in result.notes[0]
    without = await REGISTRY["self_consistency"].run(
        _problem(), ScriptedGenerator({"": [BAD, BAD, GOOD]}), None, params, B
    )
    assert without.text == BAD
