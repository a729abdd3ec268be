"""From run records to the policy: per-tier statistics, the exact allocation frontier, a choice.

The compute-optimal problem is global (Snell et al. 2024 pose it per difficulty bin): choose
one configuration per tier to maximise expected accuracy over the traffic mix subject to the
*average* cost per query. `router.calibrate.optimise` solves it exactly for every budget at
once (the Pareto frontier); the policy is the frontier point for `budget` (average cost per
query), for `target_accuracy` (the cheapest point reaching it) or, with neither, the knee.
Uniform allocation (one configuration for every tier) is a feasible point, so on the data it
was calibrated on the frontier is never below any uniform curve.

Only configurations the router can run at serve time enter the optimisation by default: one
whose verifier compares with the reference answer (`math_reference`) is an oracle (pass@N),
shown as the ceiling, unless `allow_reference` says requests bring their reference.

The knee ignores frontier points whose accuracy gain over the cheapest point is under two
standard errors of the cheapest point's accuracy on the calibration items (sqrt(p(1-p)/n)):
on a model where extra compute only buys noise, the policy stays cheap.

Cost is one of `usd` (the model's prices), `tokens` (prompt + completion + reasoning) or
`generated` (completion + reasoning tokens: what sampling more costs when the prompt is
shared). Traffic shares: the calibration items per tier, or `shares` (e.g. read off
`ttc_requests_total` by tier in production), renormalised over the tiers that have items.

Difficulty tiers: the item's own `tier` when it has one (`tier_from="auto"` or `"given"`), else
its measured solve rate mapped through the classifier's thresholds (`"solve_rate"`). An item's
solve rate is the share of correct answers among every candidate sampled for it, over all
configurations and repeats (a run without candidates counts as one).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from classifier.base import TIERS, Tier
from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS, solve_rate_tier
from router.calibrate.cache import Record
from router.calibrate.data import EvalItem
from router.calibrate.grid import GridConfig, is_oracle
from router.calibrate.optimise import (
    Allocation,
    Pick,
    allocation_frontier,
    evaluate,
    for_accuracy,
    for_budget,
    knee,
    pareto_indices,
)

Metric = Literal["usd", "tokens", "generated"]
METRICS: tuple[str, ...] = ("usd", "tokens", "generated")
TierFrom = Literal["auto", "given", "solve_rate"]
ALL = "all"


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


@dataclass
class TierResult:
    tier: str
    items: int
    points: list[Point]
    frontier: list[Point]  # this tier's own cost/accuracy frontier
    chosen: Point | None = None  # the allocation's configuration for this tier


@dataclass
class Calibration:
    metric: str
    tiers: dict[str, TierResult]  # tier value or "all" -> result
    solve_rates: dict[str, tuple[float, int]]  # item key -> (rate, candidates)
    tier_of: dict[str, Tier]  # item key -> tier used
    bins: list[str] = field(default_factory=list)  # the optimiser's tiers, in tier order
    shares: dict[str, float] = field(default_factory=dict)  # tier -> traffic share
    options: list[GridConfig] = field(default_factory=list)  # the optimiser's configurations
    frontier: list[Allocation] = field(default_factory=list)  # choice = index into options
    uniform: dict[GridConfig, Allocation] = field(default_factory=dict)  # every config, mix
    pick: Pick | None = None
    notes: list[str] = field(default_factory=list)

    def assignment(self, allocation: Allocation) -> dict[str, GridConfig]:
        """Tier -> configuration of one frontier point."""
        return {b: self.options[i] for b, i in zip(self.bins, allocation.choice, strict=True)}

    @property
    def policy(self) -> dict[str, GridConfig]:
        return {} if self.pick is None else self.assignment(self.pick.allocation)


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
    """The configurations no other one beats on both cost and accuracy (cost ascending)."""
    return [points[i] for i in pareto_indices([(p.cost(metric), p.accuracy) for p in points])]


def pick_metric(records: Sequence[Record], metric: str = "auto") -> str:
    if metric != "auto":
        if metric not in METRICS:
            raise ValueError(f"unknown cost metric {metric!r}; one of auto, {', '.join(METRICS)}")
        return metric
    return "usd" if any(r.usd > 0 for r in records) else "tokens"


def tier_points(
    configs: Sequence[GridConfig],
    records: Sequence[Record],
    config_key: Mapping[GridConfig, str],
    tier_of: Mapping[str, Tier],
) -> dict[str, tuple[int, list[Point]]]:
    """Tier (and "all") -> (items, points in grid order) for the records' items."""
    by_key = {config_key[c]: c for c in configs}
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.config not in by_key or r.item not in tier_of:
            continue
        groups[(ALL, r.config)].append(r)
        groups[(tier_of[r.item].value, r.config)].append(r)
    out: dict[str, tuple[int, list[Point]]] = {}
    for tier in [ALL, *(t.value for t in TIERS)]:
        found = [(c, groups[(tier, config_key[c])]) for c in configs
                 if groups.get((tier, config_key[c]))]
        if found:
            n_items = len({r.item for _, rs in found for r in rs})
            out[tier] = (n_items, [point_for(c, rs) for c, rs in found])
    return out


def optimise(
    cal: Calibration,
    *,
    budget: float | None = None,
    target_accuracy: float | None = None,
    shares: Mapping[str, float] | None = None,
    allow_reference: bool = False,
) -> None:
    """Fill in `cal`'s shares, options, frontier, uniform points and pick (in place)."""
    if budget is not None and target_accuracy is not None:
        raise ValueError("give a budget or a target accuracy, not both")
    bins: list[str] = [t.value for t in TIERS if t.value in cal.tiers]
    if not bins:
        return
    counts = {b: cal.tiers[b].items for b in bins}
    if shares:
        unknown = set(shares) - {t.value for t in TIERS}
        if unknown:
            raise ValueError(f"unknown tier(s) in shares: {', '.join(sorted(unknown))}")
        missing = [t for t, s in shares.items() if s > 0 and t not in counts]
        if missing:
            cal.notes.append(f"no calibration items in {', '.join(missing)}: their share is "
                             "left out and the rest renormalised")
        raw = {b: float(shares.get(b, 0.0)) for b in bins}
        if sum(raw.values()) <= 0:
            raise ValueError("the given shares put no traffic on any calibrated tier")
    else:
        raw = {b: float(n) for b, n in counts.items()}
    total = sum(raw.values())
    cal.bins, cal.shares = bins, {b: raw[b] / total for b in bins}
    per_bin = {b: {p.config: p for p in cal.tiers[b].points} for b in bins}
    everywhere = [c for c in (p.config for p in cal.tiers[bins[0]].points)
                  if all(c in per_bin[b] for b in bins)]
    dropped = [c.label for p in cal.tiers[ALL].points if (c := p.config) not in everywhere]
    if dropped:
        cal.notes.append("left out (no result on some tier): " + ", ".join(dropped))
    weights = [cal.shares[b] for b in bins]

    def opts(configs: Sequence[GridConfig]) -> list[list[tuple[float, float]]]:
        return [[(per_bin[b][c].cost(cal.metric), per_bin[b][c].accuracy) for c in configs]
                for b in bins]

    every = opts(everywhere)
    cal.uniform = {c: evaluate(every, weights, [j] * len(bins)) for j, c in enumerate(everywhere)}
    options = [c for c in everywhere if allow_reference or not is_oracle(c)]
    if len(options) < len(everywhere):
        cal.notes.append("oracle configurations (they compare with the reference answer) are "
                         "shown as a ceiling and left out of the policy")
    if not options:
        cal.notes.append("no serve-time configuration on every tier: no policy")
        return
    cal.options = options
    cal.frontier = allocation_frontier(opts(options), weights)
    if budget is not None:
        cal.pick = for_budget(cal.frontier, budget)
    elif target_accuracy is not None:
        cal.pick = for_accuracy(cal.frontier, target_accuracy)
    else:
        n = sum(counts.values())
        p = cal.frontier[0].accuracy
        cal.pick = knee(cal.frontier, 2 * math.sqrt(p * (1 - p) / n) if n else 0.0)
    for b, config in cal.assignment(cal.pick.allocation).items():
        cal.tiers[b].chosen = per_bin[b][config]


def calibrate(
    items: Sequence[EvalItem],
    configs: Sequence[GridConfig],
    records: Sequence[Record],
    config_key: Mapping[GridConfig, str],
    *,
    budget: float | None = None,
    target_accuracy: float | None = None,
    shares: Mapping[str, float] | None = None,
    allow_reference: bool = False,
    metric: str = "auto",
    thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS,
    tier_from: TierFrom = "auto",
    tier_of: Mapping[str, Tier] | None = None,
) -> Calibration:
    """Per tier (and over all items): points in grid order and frontier; then the allocation
    frontier over the tiers and the chosen point. `tier_of` (item key -> tier) overrides the
    tiers (e.g. a classifier's predictions)."""
    metric = pick_metric(records, metric)
    keys = {it.key for it in items}
    records = [r for r in records if r.item in keys]
    rates = solve_rates(records)
    tiers = dict(tier_of) if tier_of is not None else assign_tiers(items, rates, thresholds,
                                                                  tier_from)
    out = Calibration(metric, {}, rates, tiers)
    for tier, (n_items, points) in tier_points(configs, records, config_key, tiers).items():
        out.tiers[tier] = TierResult(tier, n_items, points, frontier(points, metric))
    optimise(out, budget=budget, target_accuracy=target_accuracy, shares=shares,
             allow_reference=allow_reference)
    return out
