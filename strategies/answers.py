"""Final-answer extraction and equivalence.

`extract_answer(text, fmt)` with `fmt` one of `ANSWER_FORMATS`:
  boxed        the last `\\boxed{...}` (nested braces allowed)
  answer_line  the last `Answer: ...` / `Final answer: ...` / `The answer is ...`
  number       the last number (integers, decimals, fractions; thousands commas dropped)
  code         the last fenced code block (or None)
  text         the whole text, stripped
  auto         boxed, then an answer line, then the last number, then the last non-empty line

A format prefixed `first_line:` (e.g. `first_line:number`) reads only the first non-empty line:
a base model continuing a few-shot prompt answers on that line and then writes the next example.

`answers_equivalent(a, b)`: equal after normalisation, or mathematically equal by `math-verify`
(checked both ways, so the relation is symmetric). math-verify is imported lazily.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

ANSWER_FORMATS: tuple[str, ...] = ("auto", "boxed", "answer_line", "number", "code", "text")
_MAX_MATH_CHARS = 300  # longer strings are compared as strings (math parsing can be slow)

_ANSWER_LINE = re.compile(
    r"(?:final answer|answer|the answer is)\s*(?:is)?\s*[:：]?\s*(.+?)\s*$", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_CODE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def _boxed(text: str) -> str | None:
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip()
    return None


def _answer_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        m = _ANSWER_LINE.search(line)
        if m and m.group(1).strip():
            return m.group(1).strip().rstrip(".").strip()
    return None


def _number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def _code(text: str) -> str | None:
    blocks = _CODE.findall(text)
    return blocks[-1] if blocks else None


FIRST_LINE = "first_line:"


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def extract_answer(text: str, fmt: str = "auto") -> str | None:
    if fmt.startswith(FIRST_LINE):
        return extract_answer(first_line(text), fmt.removeprefix(FIRST_LINE))
    if fmt not in ANSWER_FORMATS:
        raise ValueError(
            f"unknown answer format {fmt!r}; expected one of {', '.join(ANSWER_FORMATS)}"
        )
    if fmt == "boxed":
        return _boxed(text)
    if fmt == "answer_line":
        return _answer_line(text)
    if fmt == "number":
        return _number(text)
    if fmt == "code":
        return _code(text)
    if fmt == "text":
        return text.strip() or None
    for found in (_boxed(text), _answer_line(text), _number(text)):
        if found:
            return found
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def has_final_answer(text: str, fmt: str = "auto") -> bool:
    """A step-level terminal test: an explicit marker (a code block for `code`, else a boxed
    answer or an answer line), never a stray number in a reasoning step."""
    if fmt == "code":
        return _code(text) is not None
    return _boxed(text) is not None or _answer_line(text) is not None


def normalize_answer(answer: str) -> str:
    s = answer.strip().strip("$").strip()
    s = re.sub(r"\\text\{([^}]*)\}", r"\1", s)
    s = re.sub(r"\s+", " ", s).lower().rstrip(".").strip()
    return s


def _parse(s: str) -> list[Any]:
    from math_verify import parse

    main = threading.current_thread() is threading.main_thread()
    # math-verify's timeout uses SIGALRM, which only works in the main thread.
    result: list[Any] = parse(s, parsing_timeout=5 if main else None)
    return result


def _verify(a: list[Any], b: list[Any]) -> bool:
    from math_verify import verify

    main = threading.current_thread() is threading.main_thread()
    return bool(verify(a, b, timeout_seconds=5 if main else None))


class AnswerMatcher:
    """Caches math-verify parses, so grouping n answers parses each answer once."""

    def __init__(self) -> None:
        self._parsed: dict[str, list[Any]] = {}

    def parsed(self, s: str) -> list[Any]:
        if s not in self._parsed:
            self._parsed[s] = _parse(s) if len(s) <= _MAX_MATH_CHARS else []
        return self._parsed[s]

    def equivalent(self, a: str | None, b: str | None) -> bool:
        if a is None or b is None:
            return False
        if normalize_answer(a) == normalize_answer(b):
            return True
        pa, pb = self.parsed(a), self.parsed(b)
        if not pa or not pb:
            return False
        return _verify(pa, pb) or _verify(pb, pa)


def answers_equivalent(a: str | None, b: str | None) -> bool:
    return AnswerMatcher().equivalent(a, b)


def group_answers(
    answers: Sequence[str | None], matcher: AnswerMatcher | None = None
) -> list[list[int]]:
    """Indices grouped by equivalent answer, in order of first appearance; None answers are
    left out. Each answer joins the first group whose first member it matches."""
    m = matcher or AnswerMatcher()
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if m.equivalent(answers[g[0]], a):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups
