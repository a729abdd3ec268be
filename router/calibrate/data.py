"""The labelled evaluation file `ttc-router calibrate` reads: one JSON object per line.

    {"question": "What is 17*3?", "reference": "51"}
    {"id": "p7", "question": "...", "tests": "assert f(2) == 4", "tier": "hard"}
    {"question": "23*4", "prompt": "12*3=36\\n...\\n23*4=", "reference": "92",
     "answer_format": "number"}

Fields: `question` (or `text`): the query as users send it, the text the classifier sees and the
solve-rate file carries; `reference` (or `answer`) and/or `tests`: what a run is checked
against (at least one); `id` (default: a hash of the question); `tier` (optional: easy, medium,
hard, very_hard; without it the tier comes from the measured solve rate); `prompt` (optional:
the raw text sent to the model instead of the question) or `messages` (a chat conversation);
`answer_format` (auto, boxed, answer_line, number, code, text; default auto); `answer_from`
(`first_line` or `all`; default `first_line` for a `prompt`, which the model continues: a base
model answers on the first line and then writes the next example, so "7\n4+5=11" answers 7;
`all` otherwise).

An example file: `docs/examples/eval.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.base import Tier
from router.upstreams.base import Message
from strategies.answers import ANSWER_FORMATS, FIRST_LINE
from strategies.base import Problem

ANSWER_FROM = ("first_line", "all")

_ROLES = ("system", "user", "assistant")


class EvalFileError(ValueError):
    """A malformed evaluation file; the message names the line."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    messages: tuple[Message, ...]
    reference: str | None = None
    tests: str | None = None
    tier: Tier | None = None
    answer_format: str = "auto"
    answer_from: str = "all"  # "first_line": only the output's first line holds the answer

    @property
    def key(self) -> str:
        """Cache key: the id plus a digest of everything that changes a run's outcome."""
        content = json.dumps(
            [[m.role, m.content] for m in self.messages]
            + [self.reference, self.tests, self.answer_format]
            + ([self.answer_from] if self.answer_from != "all" else []),
            ensure_ascii=False,
        )
        return f"{self.id}#{hashlib.sha256(content.encode()).hexdigest()[:10]}"

    def problem(self) -> Problem:
        return Problem(
            messages=self.messages,
            reference=self.reference,
            tests=self.tests,
            answer_format=(FIRST_LINE + self.answer_format if self.answer_from == "first_line"
                           else self.answer_format),
        )


def _text(row: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and str(value).strip():
            return str(value)
    return None


def parse_item(row: Any, where: str = "<row>", answer_from_default: str = "auto") -> EvalItem:
    if not isinstance(row, dict):
        raise EvalFileError(f"{where}: expected a JSON object")
    question = _text(row, "question", "text")
    if question is None:
        raise EvalFileError(f"{where}: missing 'question'")
    reference = _text(row, "reference", "answer")
    tests = _text(row, "tests")
    if reference is None and tests is None:
        raise EvalFileError(f"{where}: needs 'reference' (or 'answer') or 'tests'")
    tier = None
    if row.get("tier") is not None:
        try:
            tier = Tier(str(row["tier"]).strip().lower())
        except ValueError:
            raise EvalFileError(f"{where}: unknown tier {row['tier']!r}") from None
    fmt = str(row.get("answer_format") or ("code" if tests and not reference else "auto"))
    if fmt not in ANSWER_FORMATS:
        raise EvalFileError(f"{where}: answer_format must be one of {', '.join(ANSWER_FORMATS)}")
    messages = _messages(row, question, where)
    item_id = str(row.get("id") or hashlib.sha256(question.encode()).hexdigest()[:12])
    answer_from = row.get("answer_from") or answer_from_default
    if answer_from == "auto":
        answer_from = "first_line" if _text(row, "prompt") and "messages" not in row else "all"
    if answer_from not in ANSWER_FROM:
        raise EvalFileError(f"{where}: answer_from must be first_line or all")
    return EvalItem(item_id, question, messages, reference, tests, tier, fmt, answer_from)


def _messages(row: dict[str, Any], question: str, where: str) -> tuple[Message, ...]:
    raw = row.get("messages")
    if raw is None:
        return (Message("user", _text(row, "prompt") or question),)
    if not isinstance(raw, list) or not raw:
        raise EvalFileError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise EvalFileError(f"{where}: each message needs a role in {', '.join(_ROLES)}")
        out.append(Message(m["role"], str(m.get("content") or "")))
    return tuple(out)


def parse_items(
    lines: Iterable[str], source: str = "<eval>", answer_from: str = "auto"
) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: set[str] = set()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalFileError(f"{source}:{i}: invalid JSON ({exc})") from None
        item = parse_item(row, f"{source}:{i}", answer_from)
        if item.id in seen:
            raise EvalFileError(f"{source}:{i}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise EvalFileError(f"{source}: no evaluation items")
    return items


def load_items(path: Path, answer_from: str = "auto") -> list[EvalItem]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{path}: cannot read ({exc})") from None
    return parse_items(text.splitlines(), str(path), answer_from)


def write_items(items: Iterable[EvalItem], path: Path) -> None:
    """The inverse of `load_items` (benchmarks build evaluation files with it)."""
    with path.open("w", encoding="utf-8") as f:
        for it in items:
            row: dict[str, Any] = {"id": it.id, "question": it.question}
            if it.reference is not None:
                row["reference"] = it.reference
            if it.tests is not None:
                row["tests"] = it.tests
            if it.tier is not None:
                row["tier"] = it.tier.value
            if it.answer_format != "auto":
                row["answer_format"] = it.answer_format
            row["answer_from"] = it.answer_from
            if it.messages != (Message("user", it.question),):
                if len(it.messages) == 1 and it.messages[0].role == "user":
                    row["prompt"] = it.messages[0].content
                else:
                    row["messages"] = [{"role": m.role, "content": m.content} for m in it.messages]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
