"""Recorded samples: the JSONL `ttc-router calibrate --samples FILE` replays.

One question a line:

    {"id": "q1", "problem": "What is 17*3?", "reference": "51", "tier": "medium",
     "prompt_tokens": 42,
     "samples": [{"answer": "51", "correct": true, "completion_tokens": 120, "score": 0.91},
                 {"answer": "41", "correct": false, "completion_tokens": 131, "score": 0.35,
                  "greedy": false}]}

`id` (default: a hash of the problem), `problem` (or `question`; the text the classifier sees),
`reference` and `tier` optional, `prompt_tokens` (default 0), and `samples`: independent
samples of the same model on the same prompt, each with its extracted `answer` (null when none
was found), `correct` (checked against the reference by the operator's own checker),
`completion_tokens`, optionally a serve-time verifier `score` (a PRM or reward model that did
not see the reference) and `greedy: true` on at most one sample drawn at temperature 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.base import Tier
from router.calibrate.data import EvalFileError, EvalItem
from router.upstreams.base import Message


@dataclass(frozen=True)
class RecordedSample:
    answer: str | None
    correct: bool
    tokens: int
    score: float | None = None
    greedy: bool = False


@dataclass(frozen=True)
class RecordedItem:
    id: str
    problem: str
    samples: tuple[RecordedSample, ...]
    reference: str | None = None
    tier: Tier | None = None
    prompt_tokens: int = 0

    def eval_item(self) -> EvalItem:
        return EvalItem(self.id, self.problem, (Message("user", self.problem),),
                        self.reference or "(recorded)", None, self.tier)

    @property
    def has_scores(self) -> bool:
        return all(s.score is not None for s in self.samples)


def _int(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EvalFileError(f"{where}: '{name}' must be a non-negative number")
    return int(value)


def _sample(raw: Any, where: str) -> RecordedSample:
    if not isinstance(raw, dict):
        raise EvalFileError(f"{where}: each sample must be a JSON object")
    if not isinstance(raw.get("correct"), bool):
        raise EvalFileError(f"{where}: 'correct' must be true or false")
    answer = raw.get("answer")
    score = raw.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise EvalFileError(f"{where}: 'score' must be a number")
    return RecordedSample(
        None if answer is None else str(answer), raw["correct"],
        _int(raw.get("completion_tokens", 0), where, "completion_tokens"),
        None if score is None else float(score), bool(raw.get("greedy", False)),
    )


def parse_recorded(row: Any, where: str) -> RecordedItem:
    if not isinstance(row, dict):
        raise EvalFileError(f"{where}: expected a JSON object")
    problem = row.get("problem", row.get("question"))
    if not isinstance(problem, str) or not problem.strip():
        raise EvalFileError(f"{where}: missing 'problem'")
    raw = row.get("samples")
    if not isinstance(raw, list) or not raw:
        raise EvalFileError(f"{where}: 'samples' must be a non-empty list")
    samples = tuple(_sample(s, f"{where}: samples[{i}]") for i, s in enumerate(raw))
    if sum(s.greedy for s in samples) > 1:
        raise EvalFileError(f"{where}: at most one sample may be flagged greedy")
    tier = None
    if row.get("tier") is not None:
        try:
            tier = Tier(str(row["tier"]).strip().lower())
        except ValueError:
            raise EvalFileError(f"{where}: unknown tier {row['tier']!r}") from None
    ref = row.get("reference")
    item_id = str(row.get("id") or hashlib.sha256(problem.encode()).hexdigest()[:12])
    return RecordedItem(item_id, problem, samples, None if ref is None else str(ref), tier,
                        _int(row.get("prompt_tokens", 0), where, "prompt_tokens"))


def parse_samples(lines: Iterable[str], source: str = "<samples>") -> list[RecordedItem]:
    out: list[RecordedItem] = []
    seen: set[str] = set()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise EvalFileError(f"{source}:{i}: invalid JSON ({exc})") from None
        item = parse_recorded(row, f"{source}:{i}")
        if item.id in seen:
            raise EvalFileError(f"{source}:{i}: duplicate id {item.id!r}")
        seen.add(item.id)
        out.append(item)
    if not out:
        raise EvalFileError(f"{source}: no recorded questions")
    return out


def load_samples(path: Path) -> list[RecordedItem]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{path}: cannot read ({exc})") from None
    return parse_samples(text.splitlines(), str(path))


def write_samples(items: Iterable[RecordedItem], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for it in items:
            row: dict[str, Any] = {"id": it.id, "problem": it.problem}
            if it.reference is not None:
                row["reference"] = it.reference
            if it.tier is not None:
                row["tier"] = it.tier.value
            row["prompt_tokens"] = it.prompt_tokens
            row["samples"] = [
                {"answer": s.answer, "correct": s.correct, "completion_tokens": s.tokens,
                 **({"score": s.score} if s.score is not None else {}),
                 **({"greedy": True} if s.greedy else {})}
                for s in it.samples
            ]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
