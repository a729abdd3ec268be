"""The `answer_check` verifier: the request's own check over the answer, run in the sandbox."""

from __future__ import annotations

import pytest

from router.errors import InvalidRequest
from router.upstreams.base import Message
from strategies import VERIFIERS, Problem, build_verifier, check_verifier_options
from strategies.verifiers.answer_check import AnswerCheck, build_answer_check, parse_scores

# "sort 30 7 12": what a right answer is, stated without computing it
SORT_CHECK = """
given = [30, 7, 12]
got = [int(t) for t in answer.replace(",", " ").split()]
assert sorted(got) == sorted(given)
assert all(a <= b for a, b in zip(got, got[1:]))
"""


def asked(check: str | None) -> Problem:
    return Problem(messages=(Message("user", "30 7 12 -> "),), check=check)


async def test_scores_are_the_share_of_asserts_that_hold() -> None:
    verifier = build_answer_check({"timeout_s": 10.0})
    candidates = [["7 12 30"], ["7, 12, 30"], ["30 12 7"], ["7 12"], ["seven"], ["7 12 30"]]
    scores = await verifier.score(asked(SORT_CHECK), candidates)
    # right (twice, checked once); right with commas; a permutation out of order (1 of 2);
    # a number missing (the order assert still holds); not numbers (the setup raises, so
    # every assert fails)
    assert scores == [[1.0], [1.0], [0.5], [0.5], [0.0], [1.0]]


async def test_a_snippet_without_asserts_is_one_test_and_sees_the_whole_text() -> None:
    verifier = build_answer_check({"answer_format": "number"})
    check = "if int(answer) % 7:\n    raise ValueError(text)"
    scores = await verifier.score(asked(check), [["so it is 49"], ["it is 50"], ["none"]])
    assert scores == [[1.0], [0.0], [0.0]]


async def test_a_check_that_hangs_keeps_earlier_scores_and_says_so() -> None:
    verifier = build_answer_check({"timeout_s": 2.0, "cpu_s": 1})
    check = "assert answer != 'b'\nwhile answer == 'c':\n    pass"
    scored = await verifier.score_accounted(asked(check), [["a"], ["b"], ["c"], ["d"]])
    # distinct answers run in sorted order: a passes, b fails, c hangs, d is never reached
    assert scored.scores == [[1.0], [0.0], [0.0], [0.0]]
    assert scored.notes and "answer check stopped" in scored.notes[0]


async def test_the_sandbox_contains_the_check() -> None:
    verifier = build_answer_check({})
    check = "import socket\nsocket.socket()\nassert True"
    assert await verifier.score(asked(check), [["x"]]) == [[0.0]]
    write = "open('/tmp/ttc-answer-check-escape', 'w').write(answer)\nassert True"
    assert await verifier.score(asked(write), [["x"]]) == [[0.0]]


async def test_without_a_check_it_refuses() -> None:
    with pytest.raises(InvalidRequest):
        await build_answer_check({}).score(asked(None), [["x"]])


def test_parse_scores_ignores_other_nonces_and_missing_lines() -> None:
    out = "n1 0 2 2\nzz 1 1 1\nn1 2 1 4\n"
    assert parse_scores(out, "n1", 3) == [1.0, 0.0, 0.25]


def test_registered_with_what_it_needs() -> None:
    factory = VERIFIERS["answer_check"]
    assert factory.needs == ("check",)
    assert check_verifier_options("answer_check", {"answer_format": "number"}) == []
    assert check_verifier_options("answer_check", {"answer_format": "roman"})
    built = build_verifier("answer_check", {"answer_format": "number"}, lambda n: None)  # type: ignore[arg-type,return-value]
    assert isinstance(built, AnswerCheck) and built.answer_format == "number"
