"""Held-out evaluation with bootstrap intervals: does the calibrated allocation beat uniform
compute on questions it was not calibrated on?

    cal_items, held = split_items(items, 0.3, seed=0)
    cal = calibrate(cal_items, ...)                            # frontier on the calibration part
    report = evaluate_holdout(cal, held, configs, records, keys, tiers={"given": ...})

On the held-out items every configuration is a uniform arm (one curve per strategy family);
every calibration frontier point, with each held-out item routed by its tier (one curve per
tier source: oracle solve-rate bins are the ceiling, a classifier's predictions are what the
router can do), is an adaptive arm. Intervals: percentile bootstrap over held-out items
(`boots` resamples, the same resamples for every arm, so differences are paired). Compute
ratio at matched accuracy: the average cost the best serve-time uniform curve (its frontier,
linear between points: a mixture of two configurations) needs to reach an adaptive arm's
accuracy, over what the adaptive arm spends; above 1 means adaptive is cheaper. The rows "vs
same N for everyone" compare with the uniform curves without posterior strategies (every query
gets the same samples: the baseline a router has to beat), so they count the saving of early
stopping and escalation as well as the tier's; the plain rows compare with every uniform curve,
posterior strategies applied to every query included, and so count the tier's saving only.
Accuracies within `TIE` (0.001, replay noise) count as equal, everywhere: the best uniform arm
is the cheapest within `TIE` of the most accurate, and a curve reaches an accuracy when it
comes within `TIE` of it (its cost there: the cost to reach the accuracy less `TIE`), for the
adaptive curve and the uniform one alike, in the point estimate and in every resample.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from classifier.base import TIERS, Tier
from router.calibrate.analysis import Calibration
from router.calibrate.cache import Record
from router.calibrate.data import EvalItem
from router.calibrate.grid import GridConfig, family, is_oracle, is_posterior
from router.calibrate.optimise import (
    Allocation,
    accuracy_at,
    allocation_frontier,
    cost_to_reach,
)

Interval = tuple[float, float]
_UNREACHED = 1e12  # a bootstrap ratio whose uniform curve never reaches the accuracy
TIE = 1e-3  # accuracies this close count as equal (the best-uniform pick and matched accuracy)


def split_items(
    items: Sequence[EvalItem], holdout: float, seed: int = 0
) -> tuple[list[EvalItem], list[EvalItem]]:
    """(calibration part, held-out part): a seeded shuffle, stratified by given tier, with at
    least one item on each side when there are two or more."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be between 0 and 1")
    by_tier: dict[str, list[EvalItem]] = defaultdict(list)
    for it in items:
        by_tier[it.tier.value if it.tier else ""].append(it)
    rng = random.Random(seed)
    held: set[str] = set()
    for group in by_tier.values():
        keys = [it.key for it in group]
        rng.shuffle(keys)
        held.update(keys[: round(len(keys) * holdout)])
    if not held and len(items) > 1:
        held.add(items[rng.randrange(len(items))].key)
    if len(held) == len(items) and len(items) > 1:
        held.discard(items[0].key)
    return [it for it in items if it.key not in held], [it for it in items if it.key in held]


@dataclass(frozen=True)
class Arm:
    name: str
    accuracy: float
    cost: float
    accuracy_ci: Interval
    cost_ci: Interval


@dataclass
class Curve:
    name: str
    kind: str  # "uniform", "ceiling" (oracle selection) or "adaptive"
    arms: list[Arm]


@dataclass(frozen=True)
class Ratio:
    """Compute ratio at matched accuracy, with its bootstrap interval (None: not reached)."""

    name: str
    accuracy: float
    cost: float
    uniform_cost: float | None
    value: float | None
    ci: tuple[float | None, float | None]


@dataclass
class Holdout:
    items: int
    metric: str
    boots: int
    curves: list[Curve] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    attribution: list[tuple[str, float | None]] = field(default_factory=list)
    attribution_accuracy: float | None = None
    below: dict[str, tuple[int, int]] = field(default_factory=dict)  # curve -> (below, points)
    notes: list[str] = field(default_factory=list)


class _Table:
    """Per held-out item x configuration: correctness and cost (means over repeats)."""

    def __init__(self, items: Sequence[EvalItem], configs: Sequence[GridConfig],
                 records: Sequence[Record], keys: Mapping[GridConfig, str], metric: str) -> None:
        row = {it.key: i for i, it in enumerate(items)}
        col = {keys[c]: j for j, c in enumerate(configs)}
        shape = (len(items), len(configs))
        acc, cost, n = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for r in records:
            i, j = row.get(r.item), col.get(r.config)
            if i is None or j is None:
                continue
            acc[i, j] += r.correct
            cost[i, j] += r.usd if metric == "usd" else (
                r.generated if metric == "generated" else r.tokens)
            n[i, j] += 1
        self.complete = n.min(axis=0) > 0 if len(items) else np.zeros(len(configs), bool)
        n[n == 0] = 1
        self.acc, self.cost = acc / n, cost / n
        self.configs = list(configs)

    def arm(self, name: str, columns: np.ndarray, boots: np.ndarray) -> Arm:
        rows = np.arange(len(columns))
        a, c = self.acc[rows, columns], self.cost[rows, columns]
        ba, bc = a[boots].mean(axis=1), c[boots].mean(axis=1)
        return Arm(name, float(a.mean()), float(c.mean()), _ci(ba), _ci(bc))

    def boot_means(self, columns: np.ndarray, boots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(columns))
        return (self.acc[rows, columns][boots].mean(axis=1),
                self.cost[rows, columns][boots].mean(axis=1))


def _ci(values: np.ndarray) -> Interval:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _nearest(tier: Tier, bins: Sequence[str]) -> str:
    order = [t.value for t in TIERS]
    return min(bins, key=lambda b: (abs(order.index(b) - order.index(tier.value)),
                                    order.index(b)))


def route(cal: Calibration, allocation: Allocation, tiers: Sequence[Tier]) -> list[GridConfig]:
    """The configuration each item gets (a tier the calibration had no item of: the nearest
    calibrated tier's)."""
    chosen = cal.assignment(allocation)
    return [chosen[t.value] if t.value in chosen else chosen[_nearest(t, cal.bins)]
            for t in tiers]


def restricted(cal: Calibration, keep: Callable[[GridConfig], bool]) -> tuple[
        list[GridConfig], list[Allocation]]:
    """The allocation frontier over the calibration's options that `keep` accepts."""
    options = [c for c in cal.options if keep(c)]
    if not options:
        return [], []
    per_bin = {b: {p.config: p for p in cal.tiers[b].points} for b in cal.bins}
    opts = [[(per_bin[b][c].cost(cal.metric), per_bin[b][c].accuracy) for c in options]
            for b in cal.bins]
    return options, allocation_frontier(opts, [cal.shares[b] for b in cal.bins])


def evaluate_holdout(
    cals: Mapping[str, Calibration],
    items: Sequence[EvalItem],
    configs: Sequence[GridConfig],
    records: Sequence[Record],
    keys: Mapping[GridConfig, str],
    tiers: Mapping[str, Mapping[str, Tier]],
    *,
    boots: int = 1000,
    seed: int = 0,
) -> Holdout:
    """`cals[source]` was calibrated with tiers from `source`; `tiers[source]` maps held-out
    item keys to their tier from the same source ("oracle solve rate", "given",
    "predicted")."""
    first = next(iter(cals.values()))
    metric = first.metric
    table = _Table(items, configs, records, keys, metric)
    out = Holdout(len(items), metric, boots)
    if not items:
        out.notes.append("no held-out items")
        return out
    rng = np.random.default_rng(seed)
    sample = rng.integers(0, len(items), size=(boots, len(items)))
    index = {c: j for j, c in enumerate(configs)}
    families: dict[str, list[Arm]] = {}
    serve: list[tuple[np.ndarray, np.ndarray]] = []  # boot means of serve-time uniform arms
    serve_arms: list[Arm] = []
    posterior: list[bool] = []
    fixed: list[int] = []
    for j, c in enumerate(configs):
        if not table.complete[j]:
            continue
        cols = np.full(len(items), j)
        families.setdefault(family(c), []).append(table.arm(c.label, cols, sample))
        if not is_oracle(c):
            serve.append(table.boot_means(cols, sample))
            serve_arms.append(families[family(c)][-1])
            posterior.append(is_posterior(c))
            if not is_posterior(c):
                fixed.append(j)
    for name, arms in families.items():
        kind = "ceiling" if name.endswith("(oracle)") else "uniform"
        out.curves.append(Curve(f"uniform {name}", kind, sorted(arms, key=lambda a: a.cost)))
    uniform_pts = [(a.cost, a.accuracy) for cv in out.curves if cv.kind == "uniform"
                   for a in cv.arms]
    best_uniform = _best(serve_arms, serve, range(len(serve))) if uniform_pts else None
    # "same N for everyone": uniform without the posterior strategies (early stop, escalation),
    # which spend by evidence per query; the ratios against it count the posterior saving too
    same_n = [j for j in range(len(serve)) if not posterior[j]]
    best_fixed = _best(serve_arms, serve, same_n) if same_n and any(posterior) else None
    fixed_pts = [(serve_arms[j].cost, serve_arms[j].accuracy) for j in same_n]
    for source, cal in cals.items():
        if cal.pick is None or source not in tiers:
            continue
        held_tiers = [tiers[source].get(it.key) for it in items]
        if any(t is None for t in held_tiers):
            out.notes.append(f"{source}: some held-out items have no tier; curve skipped")
            continue
        ts = [t for t in held_tiers if t is not None]
        arms = []
        boot_curve = []
        for a in cal.frontier:
            cols = np.array([index[c] for c in route(cal, a, ts)])
            arms.append(table.arm(_describe(cal, a), cols, sample))
            boot_curve.append(table.boot_means(cols, sample))
        out.curves.append(Curve(f"adaptive, {source} tiers", "adaptive", arms))
        under = [a for a in arms
                 if (u := accuracy_at(uniform_pts, a.cost)) is not None and u > a.accuracy_ci[1]]
        out.below[f"adaptive, {source} tiers"] = (len(under), len(arms))
        if best_uniform is not None:
            out.ratios.append(_at_best(f"adaptive, {source} tiers (at the best uniform "
                                       "accuracy)", arms, boot_curve, *best_uniform))
        cols = np.array([index[c] for c in route(cal, cal.pick.allocation, ts)])
        acc, cost = table.boot_means(cols, sample)
        pick = table.arm("pick", cols, sample)
        out.ratios.append(_ratio(f"adaptive, {source} tiers ({cal.pick.rule})", pick,
                                 uniform_pts, acc, cost, serve))
        if best_fixed is not None:
            out.ratios.append(_at_best(f"adaptive, {source} tiers vs same N for everyone (at "
                                       "its best accuracy)", arms, boot_curve, *best_fixed))
            out.ratios.append(_ratio(f"adaptive, {source} tiers ({cal.pick.rule}) vs same N "
                                     "for everyone", pick, fixed_pts, acc, cost,
                                     [serve[j] for j in same_n]))
    _attribute(out, cals, items, tiers, table, index, fixed)
    return out


def _best(arms: Sequence[Arm], boots: Sequence[tuple[np.ndarray, np.ndarray]],
          among: Iterable[int]) -> tuple[Arm, tuple[np.ndarray, np.ndarray]]:
    """The most accurate of `among` (ties within replay noise: the cheaper)."""
    js = list(among)
    top = max(arms[j].accuracy for j in js)
    j_best = min((j for j in js if arms[j].accuracy >= top - TIE), key=lambda j: arms[j].cost)
    return arms[j_best], boots[j_best]


def _describe(cal: Calibration, a: Allocation) -> str:
    return ", ".join(f"{b}: {c.label}" for b, c in cal.assignment(a).items())


def _reach(curve: list[tuple[float, float]], accuracy: float) -> float | None:
    """Cost the curve needs to come within `TIE` of `accuracy` (None: it never does)."""
    return cost_to_reach(curve, accuracy - TIE)


def _ratio(name: str, pick: Arm, uniform_pts: list[tuple[float, float]], acc: np.ndarray,
           cost: np.ndarray, serve: list[tuple[np.ndarray, np.ndarray]]) -> Ratio:
    need = _reach(uniform_pts, pick.accuracy)
    value = None if need is None or pick.cost <= 0 else need / pick.cost
    draws: list[float] = []
    for b in range(len(acc)):
        pts = [(float(c[b]), float(a[b])) for a, c in serve]
        n = _reach(pts, float(acc[b]))
        draws.append(float("inf") if n is None or cost[b] <= 0 else n / float(cost[b]))
    # "not reached" draws are +inf; percentiles interpolate, so put them at a finite sentinel
    # (inf - inf would be NaN) and read anything that far out as "not reached"
    arr = np.array(draws) if draws else np.array([np.inf])
    lo, hi = np.percentile(np.where(np.isfinite(arr), arr, _UNREACHED), [2.5, 97.5])
    return Ratio(name, pick.accuracy, pick.cost, need, value,
                 (None if lo >= _UNREACHED / 2 else float(lo),
                  None if hi >= _UNREACHED / 2 else float(hi)))


def _at_best(name: str, arms: list[Arm], boot_curve: list[tuple[np.ndarray, np.ndarray]],
             best: Arm, best_boot: tuple[np.ndarray, np.ndarray]) -> Ratio:
    """Cost of the most accurate serve-time uniform arm over the cost the adaptive curve
    needs (linear between its points) to reach that arm's accuracy."""
    need = _reach([(a.cost, a.accuracy) for a in arms], best.accuracy)
    value = None if need is None or need <= 0 else best.cost / need
    draws = []
    for b in range(len(best_boot[0])):
        pts = [(float(c[b]), float(a[b])) for a, c in boot_curve]
        n = _reach(pts, float(best_boot[0][b]))
        draws.append(0.0 if n is None or n <= 0 else float(best_boot[1][b]) / n)
    lo, hi = np.percentile(np.array(draws), [2.5, 97.5])
    return Ratio(name, best.accuracy, need if need is not None else float("nan"), best.cost,
                 value, (float(lo), float(hi)))


def _attribute(out: Holdout, cals: Mapping[str, Calibration], items: Sequence[EvalItem],
               tiers: Mapping[str, Mapping[str, Tier]], table: _Table, index: dict[GridConfig,
               int], fixed: list[int]) -> None:
    """Cost each kind of allocation needs, on held-out items, to reach the full adaptive
    policy's accuracy: uniform without evidence, uniform with posterior strategies (early
    stop, escalation), adaptive by tier without them (prior only), adaptive with both."""
    source = "predicted" if "predicted" in cals else next(
        (s for s in cals if cals[s].pick is not None), None)
    if source is None or source not in tiers or cals[source].pick is None:
        return
    cal = cals[source]
    ts = [tiers[source][it.key] for it in items]

    def curve(front: list[Allocation], options: list[GridConfig]) -> list[tuple[float, float]]:
        sub = Calibration(cal.metric, cal.tiers, {}, {}, cal.bins, cal.shares, options)
        pts = []
        for a in front:
            cols = np.array([index[c] for c in route(sub, a, ts)])
            pts.append((float(table.cost[np.arange(len(ts)), cols].mean()),
                        float(table.acc[np.arange(len(ts)), cols].mean())))
        return pts

    pick = cal.pick
    assert pick is not None
    cols = np.array([index[c] for c in route(cal, pick.allocation, ts)])
    target = float(table.acc[np.arange(len(ts)), cols].mean())
    uniform_fixed = [(float(table.cost[:, j].mean()), float(table.acc[:, j].mean()))
                     for j in fixed]
    uniform_all = uniform_fixed + [
        (float(table.cost[:, index[c]].mean()), float(table.acc[:, index[c]].mean()))
        for c in cal.options if is_posterior(c)]
    prior_opts, prior_front = restricted(cal, lambda c: not is_posterior(c))
    rows = [
        ("uniform, no posterior strategies", uniform_fixed),
        ("uniform, posterior strategies allowed (evidence only)", uniform_all),
        ("adaptive by tier, no posterior strategies (prior only)",
         curve(prior_front, prior_opts)),
        ("adaptive by tier with posterior strategies (prior + evidence)",
         curve(cal.frontier, cal.options)),
    ]
    out.attribution_accuracy = target
    out.attribution = [(name, _reach(pts, target) if pts else None) for name, pts in rows]
    out.notes.append(f"attribution on {source} tiers")


def uniform_on_calibration(cal: Calibration) -> dict[str, list[tuple[float, float, str]]]:
    """Family -> uniform (cost, accuracy, label) points over the calibration mix."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    for c, a in cal.uniform.items():
        out.setdefault(family(c), []).append((a.cost, a.accuracy, c.label))
    return {k: sorted(v) for k, v in out.items()}


def check_dominates(cal: Calibration) -> list[str]:
    """Uniform serve-time points above the calibration frontier (must be empty: the frontier
    is exact); used by tests and printed by the report when it is not."""
    curve = [(a.cost, a.accuracy) for a in cal.frontier]
    bad = []
    for c, a in cal.uniform.items():
        if c not in cal.options:
            continue
        fits = [acc for cost, acc in curve if cost <= a.cost + 1e-9]
        if not fits or max(fits) < a.accuracy - 1e-9:
            bad.append(c.label)
    return bad

