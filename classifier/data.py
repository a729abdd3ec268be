"""Reading the labelled mix and operator JSONL; balancing; the deterministic split.

The split is a function of the text alone (sha256 of the text, 1 in `TEST_EVERY` goes to the
test side), so it does not move when sources are added, capped differently or reordered, and
a duplicate text always lands on the same side.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.base import Tier
from classifier.labels import (
    DEFAULT_SOLVE_RATE_THRESHOLDS,
    EVAL_SOURCES,
    SOURCES,
    SourceSpec,
    solve_rate_tier,
)

TEST_EVERY = 5  # 20 % held out
DEFAULT_CAP_PER_STRATUM = 300


@dataclass(frozen=True)
class Example:
    text: str
    tier: Tier
    source: str
    stratum: str  # source/label detail, e.g. "math/level4": the unit that caps apply to
    level: int | None = None  # MATH level where known (MATH-500 evaluation)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def is_test(text: str) -> bool:
    return int(text_hash(text)[:8], 16) % TEST_EVERY == 0


def default_data_dir() -> Path:
    """`../shared/data` next to the repository checkout (the project's data drop)."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_source(data_dir: Path, name: str, spec: SourceSpec) -> list[Example]:
    out = []
    for row in _rows(data_dir / spec.path):
        text = spec.text(row).strip()
        tier, detail = spec.label(row)
        if not text or tier is None:
            continue
        level = row.get("level") if name in ("math", "math500") else None
        out.append(
            Example(text, tier, name, f"{name}/{detail}", level if isinstance(level, int) else None)
        )
    return out


def load_mix(data_dir: Path, *, strict: bool = False) -> list[Example]:
    """Every training source present under `data_dir`, deduplicated by text, eval sets excluded.

    A missing source file is skipped (or an error with `strict`); no source at all is an error.
    """
    eval_hashes = {text_hash(e.text) for e in load_eval(data_dir)}
    seen: set[str] = set()
    out: list[Example] = []
    found = 0
    for name, spec in SOURCES.items():
        if not (data_dir / spec.path).exists():
            if strict:
                raise FileNotFoundError(data_dir / spec.path)
            continue
        found += 1
        for ex in read_source(data_dir, name, spec):
            h = text_hash(ex.text)
            if h in seen or h in eval_hashes:
                continue
            seen.add(h)
            out.append(ex)
    if not found:
        raise FileNotFoundError(f"no source of the training mix found under {data_dir}")
    return out


def load_eval(data_dir: Path) -> list[Example]:
    """MATH-500 (evaluation only); empty when absent."""
    spec = EVAL_SOURCES["math500"]
    if not (data_dir / spec.path).exists():
        return []
    return read_source(data_dir, "math500", spec)


def load_operator_jsonl(
    path: Path, thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS
) -> list[Example]:
    """An operator's own data: one `{"text", "tier"}` or `{"text", "solve_rate"}` per line."""
    out = []
    for i, row in enumerate(_rows(path), 1):
        text = str(row.get("text") or "").strip()
        if not text:
            raise ValueError(f"{path}:{i}: missing 'text'")
        if "tier" in row:
            try:
                tier = Tier(str(row["tier"]).strip().lower())
            except ValueError:
                raise ValueError(f"{path}:{i}: unknown tier {row['tier']!r}") from None
            detail = tier.value
        elif "solve_rate" in row:
            rate = float(row["solve_rate"])
            if not 0 <= rate <= 1:
                raise ValueError(f"{path}:{i}: solve_rate {rate} outside [0, 1]")
            tier = solve_rate_tier(rate, thresholds)
            detail = f"rate->{tier.value}"
        else:
            raise ValueError(f"{path}:{i}: needs 'tier' or 'solve_rate'")
        out.append(Example(text, tier, "operator", f"operator/{detail}"))
    return out


def cap_strata(examples: list[Example], cap: int, seed: int = 0) -> list[Example]:
    """At most `cap` examples per stratum, sampled deterministically; order kept stable."""
    by: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by[ex.stratum].append(ex)
    keep: set[int] = set()
    for stratum in sorted(by):
        group = by[stratum]
        rng = random.Random(f"{seed}:{stratum}")
        chosen = group if len(group) <= cap else rng.sample(group, cap)
        keep.update(id(e) for e in chosen)
    return [e for e in examples if id(e) in keep]


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not is_test(e.text)]
    test = [e for e in examples if is_test(e.text)]
    return train, test
