"""The resumable result cache: one JSON line per finished run, appended as runs finish.

An interrupted calibration leaves every finished run on disk; the next run with the same cache
reads them back and only runs what is missing. A half-written last line (the process was killed
mid-write) is ignored. Keys cover everything that changes a run's outcome (configuration, model,
per-sample token limit, the item's content, the repeat index), so editing the grid or the
evaluation file never reuses a stale result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CACHE_VERSION = 1
TEXT_CHARS = 2000


@dataclass(frozen=True)
class Record:
    """One run of one configuration on one evaluation item."""

    config: str  # GridConfig.key(model, max_tokens)
    item: str  # EvalItem.key
    repeat: int
    label: str
    correct: float  # True/False for a live run; an expectation (0..1) for a replayed one
    answer: str | None = None
    prompt_tokens: float = 0  # whole numbers for a live run; expectations for a replayed one
    completion_tokens: float = 0
    reasoning_tokens: float = 0
    calls: float = 0
    usd: float = 0.0
    latency_s: float = 0.0
    candidates: int = 0  # sampled candidates checked for the solve rate
    candidates_correct: int = 0
    anytime: bool = False
    text: str | None = None  # the run's raw output (cut at TEXT_CHARS), to see why it failed

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.config, self.item, self.repeat)

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens

    @property
    def generated(self) -> float:
        return self.completion_tokens + self.reasoning_tokens

    def to_json(self) -> str:
        return json.dumps({"v": CACHE_VERSION, **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})


class ResultCache:
    """Append-only JSONL of `Record`s; `None` path = in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: dict[tuple[str, str, int], Record] = {}
        self.skipped_lines = 0
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if row.get("v") != CACHE_VERSION:
                    raise ValueError("other version")
                record = Record.from_row(row)
            except (ValueError, TypeError, AttributeError):
                self.skipped_lines += 1
                continue
            self.records[record.key] = record

    def __contains__(self, key: tuple[str, str, int]) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: tuple[str, str, int]) -> Record | None:
        return self.records.get(key)

    def add(self, record: Record) -> None:
        self.records[record.key] = record
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab+") as f:
            f.seek(0, 2)
            if f.tell() > 0:  # a killed run may have left a line without its newline
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write((record.to_json() + "\n").encode("utf-8"))
