"""From run records to operating points: per-tier statistics, the frontier, the choices.

Snell et al.'s compute-optimal rule, per difficulty tier:

- **target** mode: the cheapest configuration whose accuracy is within `target` (absolute,
  e.g. 0.02 = two points) of the best configuration's accuracy on that tier;
- **cap** mode: the most accurate configuration whose mean cost per query is at most `cap`
  (when none fits, the cheapest one, flagged as over the cap).

Cost is one of `usd` (the model's prices), `tokens` (prompt + completion + reasoning) or
`generated` (completion + reasoning tokens: what sampling more costs when the prompt is
shared). Ties: cheaper first, then more accurate, then grid order. The frontier is the set of
configurations no other one beats on both cost and accuracy (cost ascending).

Difficulty tiers: the item's own `tier` when it has one (`tier_from="auto"` or `"given"`), else
its measured solve rate mapped through the classifier's thresholds (`"solve_rate"`). An item's
solve rate is the share of correct answers among every candidate sampled for it, over all
configurations and repeats (a run without candidates counts as one).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from classifier.base import TIERS, Tier
from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS, solve_rate_tier
from router.calibrate.cache import Record
from router.calibrate.data import EvalItem
from router.calibrate.grid import GridConfig

Metric = Literal["usd", "tokens", "generated"]
METRICS: tuple[str, ...] = ("usd", "tokens", "generated")
TierFrom = Literal["auto", "given", "solve_rate"]
ALL = "all"
EPS = 1e-9


@dataclass(frozen=True)
class Point:
    """One configuration's statistics on one tier (means per run)."""

    config: GridConfig
    runs: int
    accuracy: float
    tokens: float
    generated: float
    usd: float
    latency_p50_s: float
    latency_mean_s: float
    anytime: int = 0

    @property
    def label(self) -> str:
        return self.config.label

    def cost(self, metric: str) -> float:
        if metric == "usd":
            return self.usd
        if metric == "generated":
            return self.generated
        return self.tokens


@dataclass(frozen=True)
class Choice:
    point: Point
    mode: Literal["target", "cap"]
    best_accuracy: float
    within: bool = True  # cap mode: False when nothing fits the cap


@dataclass
class TierResult:
    tier: str
    items: int
    points: list[Point]
    frontier: list[Point]
    target: Choice | None
    cap: Choice | None


@dataclass
class Calibration:
    metric: str
    target: float
    cap: float | None
    tiers: dict[str, TierResult]  # tier value or "all" -> result
    solve_rates: dict[str, tuple[float, int]]  # item key -> (rate, candidates)
    tier_of: dict[str, Tier]  # item key -> tier used
    notes: list[str] = field(default_factory=list)


def solve_rates(records: Sequence[Record]) -> dict[str, tuple[float, int]]:
    good: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for r in records:
        n = r.candidates if r.candidates > 0 else 1
        k = r.candidates_correct if r.candidates > 0 else int(r.correct)
        good[r.item] += k
        total[r.item] += n
    return {item: (good[item] / total[item], total[item]) for item in total}


def assign_tiers(
    items: Sequence[EvalItem],
    rates: Mapping[str, tuple[float, int]],
    thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS,
    tier_from: TierFrom = "auto",
) -> dict[str, Tier]:
    out: dict[str, Tier] = {}
    for it in items:
        if tier_from != "solve_rate" and it.tier is not None:
            out[it.key] = it.tier
        elif tier_from == "given":
            raise ValueError(f"item {it.id!r} has no tier (use tier_from='auto')")
        elif it.key in rates:
            out[it.key] = solve_rate_tier(rates[it.key][0], thresholds)
    return out


def point_for(config: GridConfig, records: Sequence[Record]) -> Point:
    lat = [r.latency_s for r in records]
    return Point(
        config=config,
        runs=len(records),
        accuracy=sum(r.correct for r in records) / len(records),
        tokens=statistics.fmean(r.tokens for r in records),
        generated=statistics.fmean(r.generated for r in records),
        usd=statistics.fmean(r.usd for r in records),
        latency_p50_s=statistics.median(lat),
        latency_mean_s=statistics.fmean(lat),
        anytime=sum(r.anytime for r in records),
    )


def frontier(points: Sequence[Point], metric: str) -> list[Point]:
    order = sorted(
        range(len(points)), key=lambda i: (points[i].cost(metric), -points[i].accuracy, i)
    )
    out: list[Point] = []
    best = -1.0
    for i in order:
        if points[i].accuracy > best + EPS:
            out.append(points[i])
            best = points[i].accuracy
    return out


def _cheapest(points: Sequence[Point], metric: str) -> Point:
    i = min(
        range(len(points)), key=lambda j: (points[j].cost(metric), -points[j].accuracy, j)
    )
    return points[i]


def choose_target(points: Sequence[Point], metric: str, target: float) -> Choice:
    best = max(p.accuracy for p in points)
    eligible = [p for p in points if p.accuracy >= best - target - EPS]
    return Choice(_cheapest(eligible, metric), "target", best)


def choose_cap(points: Sequence[Point], metric: str, cap: float) -> Choice:
    best = max(p.accuracy for p in points)
    fits = [i for i, p in enumerate(points) if p.cost(metric) <= cap + EPS]
    if not fits:
        return Choice(_cheapest(points, metric), "cap", best, within=False)
    i = min(fits, key=lambda j: (-points[j].accuracy, points[j].cost(metric), j))
    return Choice(points[i], "cap", best)


def pick_metric(records: Sequence[Record], metric: str = "auto") -> str:
    if metric != "auto":
        if metric not in METRICS:
            raise ValueError(f"unknown cost metric {metric!r}; one of auto, {', '.join(METRICS)}")
        return metric
    return "usd" if any(r.usd > 0 for r in records) else "tokens"


def calibrate(
    items: Sequence[EvalItem],
    configs: Sequence[GridConfig],
    records: Sequence[Record],
    config_key: Mapping[GridConfig, str],
    *,
    target: float = 0.02,
    cap: float | None = None,
    metric: str = "auto",
    thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS,
    tier_from: TierFrom = "auto",
) -> Calibration:
    """Per tier (and over all items): points in grid order, frontier, both choices.

    `cap` None: the cap defaults to the mean cost per query that the target-mode choices
    spend over all items (the same spend, re-allocated by the cap rule)."""
    metric = pick_metric(records, metric)
    keys = {it.key for it in items}
    records = [r for r in records if r.item in keys]
    rates = solve_rates(records)
    tier_of = assign_tiers(items, rates, thresholds, tier_from)
    by_key = {config_key[c]: c for c in configs}
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.config not in by_key or r.item not in tier_of:
            continue
        groups[(ALL, r.config)].append(r)
        groups[(tier_of[r.item].value, r.config)].append(r)
    out = Calibration(metric, target, cap, {}, rates, tier_of)
    for tier in [ALL, *(t.value for t in TIERS)]:
        points = [
            point_for(c, groups[(tier, config_key[c])])
            for c in configs
            if groups.get((tier, config_key[c]))
        ]
        n_items = len({r.item for p in points for r in groups[(tier, config_key[p.config])]})
        if not points:
            continue
        out.tiers[tier] = TierResult(
            tier, n_items, points, frontier(points, metric),
            choose_target(points, metric, target), None,
        )
    if cap is None and out.tiers:
        cap = _adaptive_cost(out, metric)
        out.notes.append(f"cost cap defaulted to the target-mode policy's mean cost: {cap:.6g}")
    out.cap = cap
    for result in out.tiers.values():
        if cap is not None:
            result.cap = choose_cap(result.points, metric, cap)
    return out


def _adaptive_cost(cal: Calibration, metric: str) -> float:
    """Mean cost per query of the per-tier target choices, weighted by tier size."""
    tiers = [r for t, r in cal.tiers.items() if t != ALL and r.target is not None]
    total = sum(r.items for r in tiers)
    if not total:
        return 0.0
    return sum(r.items * r.target.point.cost(metric) for r in tiers if r.target) / total
