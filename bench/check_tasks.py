"""Task families for `bench/allocation_check.py`: questions whose requests carry their own
check over the answer (the `answer_check` verifier), with no reference to compare with.

A task is shapes of graded difficulty (each makes a question and one right answer for the
prompt's worked examples), the check snippet its requests carry, the same predicate in-process
(the bench stops if the sandboxed check ever disagrees), and the answer the vote counts.

- `factor`: `391 =` -> `17 x 23`; right: two whole numbers above 1 whose product is n (12 has
  several: 2 x 6, 3 x 4).
- `sort`: `47 12 88 ->` -> `12 47 88`; right: the same numbers (as a multiset), in
  non-decreasing order. The check decides correctness exactly; it needs no reference.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

Maker = Callable[[random.Random], tuple[str, str]]  # rng -> (question, a right answer)


def ints(text: str) -> list[int]:
    return [int(t) for t in re.findall(r"-?\d+", text)]


@dataclass(frozen=True)
class CheckTask:
    name: str
    shapes: dict[str, Maker]
    separator: str  # between question and answer in the prompt: `391 =`, `47 12 ->`
    max_tokens: int
    check_of: Callable[[str], str]  # question -> the check snippet the request carries
    ok: Callable[[str, str], bool]  # (question, answer text) -> passes the check
    canonical: Callable[[str], str | None]  # the answer the vote counts


def _factor(lo_a: int, hi_a: int, lo_b: int, hi_b: int) -> Maker:
    def make(r: random.Random) -> tuple[str, str]:
        a, b = r.randint(lo_a, hi_a), r.randint(lo_b, hi_b)
        return str(a * b), f"{a} x {b}"
    return make


def _factor_check(question: str) -> str:
    return ("import re\n"
            f"n = {int(question)}\n"
            "parts = [int(t) for t in re.findall(r'\\d+', answer)]\n"
            "assert len(parts) == 2 and min(parts) > 1 and parts[0] * parts[1] == n\n")


def _factor_ok(question: str, text: str) -> bool:
    parts = ints(text.replace("-", " "))
    return len(parts) == 2 and min(parts) > 1 and parts[0] * parts[1] == int(question)


def _factor_canonical(text: str) -> str | None:
    """`a x b` with a <= b (3 x 4 and 4 x 3 are one answer)."""
    parts = ints(text.replace("-", " "))
    return " x ".join(map(str, sorted(parts))) if parts else None


def _sort(count: int, lo: int, hi: int) -> Maker:
    def make(r: random.Random) -> tuple[str, str]:
        xs = [r.randint(lo, hi) for _ in range(count)]
        return " ".join(map(str, xs)), " ".join(map(str, sorted(xs)))
    return make


def _sort_check(question: str) -> str:
    return ("import re\n"
            f"given = {ints(question)!r}\n"
            "got = [int(t) for t in re.findall(r'-?\\d+', answer)]\n"
            "assert sorted(got) == sorted(given) and all(a <= b for a, b in zip(got, got[1:]))\n")


def _sort_ok(question: str, text: str) -> bool:
    got = ints(text)
    return Counter(got) == Counter(ints(question)) and got == sorted(got)


def _sort_canonical(text: str) -> str | None:
    got = ints(text)
    return " ".join(map(str, got)) if got else None


TASKS: dict[str, CheckTask] = {
    "factor": CheckTask(
        "factor",
        {"1dx1d": _factor(2, 9, 2, 12), "1dx2d": _factor(2, 9, 11, 40),
         "2dx2d": _factor(11, 40, 11, 40)},
        " =", 10, _factor_check, _factor_ok, _factor_canonical),
    "sort": CheckTask(
        "sort",
        {"4x1d": _sort(4, 1, 9), "6x2d": _sort(6, 10, 99), "10x2d": _sort(10, 10, 99)},
        " ->", 40, _sort_check, _sort_ok, _sort_canonical),
}

__all__ = ["TASKS", "CheckTask", "ints"]
