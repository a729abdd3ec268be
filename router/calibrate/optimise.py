"""The exact budget-constrained allocation: one configuration per bin (difficulty tier), chosen
to maximise expected accuracy over the traffic mix at a given average cost per query.

With shares s_b (summing to 1) and, per bin, options o = (cost_b(o), accuracy_b(o)), an
assignment a = (o_1, ..., o_B) costs sum_b s_b cost_b(o_b) on average and scores
sum_b s_b accuracy_b(o_b). `allocation_frontier` returns every assignment that no other one
beats on both (the Pareto frontier), exactly:

1. an option dominated inside its own bin is never part of a frontier assignment (swapping it
   for its dominator improves the total), so each bin is cut to its own frontier first;
2. bins are added one at a time: the frontier of the partial sums over bins 1..k+1 is the
   frontier of {p + s_{k+1} o : p on the frontier over 1..k, o an option of bin k+1}, because
   a partial sum that is dominated stays dominated whatever the later bins add.

The sizes involved (four tiers, tens of configurations) keep every intermediate frontier small;
`brute_force` enumerates every assignment and is what the tests compare against.

Uniform allocation (the same configuration on every bin) is one assignment, so its point is on
or under the frontier: on the data it was computed from, the optimum is never below uniform.

Choosing one point: `for_budget` (the most accurate point within an average cost),
`for_accuracy` (the cheapest point reaching an accuracy) and `knee` (the point farthest above
the chord from the cheapest to the most accurate point, both axes scaled to [0, 1]).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

EPS = 1e-9


@dataclass(frozen=True)
class Allocation:
    """One assignment: average cost and accuracy over the mix, option index per bin."""

    cost: float
    accuracy: float
    choice: tuple[int, ...]


@dataclass(frozen=True)
class Pick:
    """A chosen frontier point and the rule that chose it."""

    allocation: Allocation
    rule: str  # "budget", "accuracy" or "knee"
    value: float | None = None  # the budget or target accuracy asked for
    met: bool = True  # False: nothing met the budget / target (cheapest / best instead)


Option = tuple[float, float]  # (cost, accuracy) on one bin


def pareto_indices(points: Sequence[Option]) -> list[int]:
    """Indices of the non-dominated points, cost ascending (accuracy strictly rising).

    Ties: at equal cost the more accurate point, at equal cost and accuracy the first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    out: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best + EPS:
            out.append(i)
            best = points[i][1]
    return out


def _check(options: Sequence[Sequence[Option]], shares: Sequence[float]) -> None:
    if len(options) != len(shares):
        raise ValueError(f"{len(options)} bins of options but {len(shares)} shares")
    if not options:
        raise ValueError("no bins")
    if any(not bin_options for bin_options in options):
        raise ValueError("every bin needs at least one option")
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("shares must be non-negative and not all zero")


def allocation_frontier(
    options: Sequence[Sequence[Option]], shares: Sequence[float]
) -> list[Allocation]:
    """The exact Pareto frontier of (average cost, accuracy) over every per-bin assignment.

    `shares` are normalised to sum to 1. Returned cost ascending, accuracy strictly rising."""
    _check(options, shares)
    total = float(sum(shares))
    weights = [s / total for s in shares]
    partial: list[Allocation] = [Allocation(0.0, 0.0, ())]
    for w, bin_options in zip(weights, options, strict=True):
        keep = pareto_indices(bin_options)
        sums = [
            Allocation(p.cost + w * bin_options[i][0], p.accuracy + w * bin_options[i][1],
                       (*p.choice, i))
            for p in partial
            for i in keep
        ]
        partial = [sums[j] for j in pareto_indices([(a.cost, a.accuracy) for a in sums])]
    return partial


def brute_force(
    options: Sequence[Sequence[Option]], shares: Sequence[float]
) -> list[Allocation]:
    """The same frontier by enumerating every assignment (for tests; exponential in bins)."""
    _check(options, shares)
    total = float(sum(shares))
    weights = [s / total for s in shares]
    every = []
    for choice in itertools.product(*(range(len(o)) for o in options)):
        cost = sum(w * options[b][i][0] for b, (w, i) in enumerate(zip(weights, choice,
                                                                        strict=True)))
        acc = sum(w * options[b][i][1] for b, (w, i) in enumerate(zip(weights, choice,
                                                                       strict=True)))
        every.append(Allocation(cost, acc, tuple(choice)))
    return [every[j] for j in pareto_indices([(a.cost, a.accuracy) for a in every])]


def evaluate(
    options: Sequence[Sequence[Option]], shares: Sequence[float], choice: Sequence[int]
) -> Allocation:
    """Average cost and accuracy of one assignment."""
    _check(options, shares)
    total = float(sum(shares))
    cost = sum(s * options[b][i][0] for b, (s, i) in enumerate(zip(shares, choice, strict=True)))
    acc = sum(s * options[b][i][1] for b, (s, i) in enumerate(zip(shares, choice, strict=True)))
    return Allocation(cost / total, acc / total, tuple(choice))


def for_budget(frontier: Sequence[Allocation], budget: float) -> Pick:
    """The most accurate point costing at most `budget` (the cheapest one when none does)."""
    fits = [a for a in frontier if a.cost <= budget + EPS]
    if not fits:
        return Pick(frontier[0], "budget", budget, met=False)
    return Pick(fits[-1], "budget", budget)


def for_accuracy(frontier: Sequence[Allocation], target: float) -> Pick:
    """The cheapest point with accuracy at least `target` (the most accurate one when none)."""
    reach = [a for a in frontier if a.accuracy >= target - EPS]
    if not reach:
        return Pick(frontier[-1], "accuracy", target, met=False)
    return Pick(reach[0], "accuracy", target)


def knee(frontier: Sequence[Allocation], min_gain: float = 0.0) -> Pick:
    """The point farthest above the chord from the cheapest to the most accurate point, with
    cost and accuracy each scaled to [0, 1] over the frontier; the cheapest point when the
    frontier has one point or is a straight line (no point gains more than it costs).

    Points that gain less than `min_gain` accuracy over the cheapest one are not eligible
    (calibrate passes two standard errors of the cheapest point's accuracy: a gain within the
    noise of the calibration data is not worth paying for)."""
    lo = frontier[0]
    frontier = [lo, *(a for a in frontier[1:] if a.accuracy - lo.accuracy >= min_gain - EPS)]
    hi = frontier[-1]
    span_c, span_a = hi.cost - lo.cost, hi.accuracy - lo.accuracy
    if span_c <= EPS or span_a <= EPS:
        return Pick(lo, "knee")

    def lift(a: Allocation) -> float:
        return (a.accuracy - lo.accuracy) / span_a - (a.cost - lo.cost) / span_c

    best = max(frontier, key=lift)  # the first of equal lifts: the cheaper
    return Pick(best if lift(best) > EPS else lo, "knee")


def accuracy_at(curve: Sequence[Option], cost: float) -> float | None:
    """Accuracy of the upper envelope of `curve` at `cost` (the best point costing at most
    `cost`; None when every point costs more). A step function: no interpolation."""
    fits = [a for c, a in curve if c <= cost + EPS]
    return max(fits) if fits else None


def cost_to_reach(curve: Sequence[Option], accuracy: float) -> float | None:
    """Cost the curve needs to reach `accuracy`, linearly interpolated between its frontier
    points (a mixture of two configurations reaches any point on the segment); None when the
    curve never reaches it."""
    pts = [curve[i] for i in pareto_indices(curve)]
    if not pts or accuracy > pts[-1][1] + EPS:
        return None
    if accuracy <= pts[0][1] + EPS:
        return pts[0][0]
    for (c0, a0), (c1, a1) in itertools.pairwise(pts):
        if a0 < accuracy <= a1 + EPS:
            return c0 + (accuracy - a0) / (a1 - a0) * (c1 - c0)
    return pts[-1][0]
