"""The exact allocation optimiser against brute force, and the choice rules."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.calibrate.optimise import (
    Allocation,
    accuracy_at,
    allocation_frontier,
    brute_force,
    cost_to_reach,
    evaluate,
    for_accuracy,
    for_budget,
    knee,
    pareto_indices,
)

# grid values (costs in whole tokens, accuracies in twentieths) so exact ties occur often
option = st.tuples(st.integers(0, 60).map(float), st.integers(0, 20).map(lambda k: k / 20))
instance = st.integers(1, 4).flatmap(
    lambda bins: st.tuples(
        st.lists(st.lists(option, min_size=1, max_size=6), min_size=bins, max_size=bins),
        st.lists(st.integers(1, 10).map(float), min_size=bins, max_size=bins),
    )
)


def _pairs(front: list[Allocation]) -> list[float]:
    return [x for a in front for x in (a.cost, a.accuracy)]


@settings(max_examples=300, deadline=None)
@given(instance)
def test_frontier_equals_brute_force(case: tuple[list[list[tuple[float, float]]], list[float]]
                                     ) -> None:
    options, shares = case
    fast = allocation_frontier(options, shares)
    slow = brute_force(options, shares)
    assert _pairs(fast) == pytest.approx(_pairs(slow), abs=1e-6)
    for a in fast:  # each frontier point is what its assignment really scores
        again = evaluate(options, shares, a.choice)
        assert again.cost == pytest.approx(a.cost) and again.accuracy == pytest.approx(a.accuracy)


def test_frontier_equals_brute_force_on_calibration_sized_instances() -> None:
    rng = random.Random(7)
    for _ in range(40):
        bins = 4
        options = []
        for _ in range(bins):  # accuracy rising with cost, as strategies x budgets do
            n = rng.randint(3, 9)
            options.append([(rng.uniform(1, 300), rng.random()) for _ in range(n)])
        shares = [rng.random() + 0.01 for _ in range(bins)]
        assert _pairs(allocation_frontier(options, shares)) == pytest.approx(
            _pairs(brute_force(options, shares)), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(instance)
def test_uniform_never_above_frontier(case: tuple[list[list[tuple[float, float]]], list[float]]
                                      ) -> None:
    options, shares = case
    width = min(len(o) for o in options)
    front = allocation_frontier(options, shares)
    curve = [(a.cost, a.accuracy) for a in front]
    for j in range(width):  # "configuration j on every bin"
        u = evaluate(options, shares, [j] * len(options))
        best = accuracy_at(curve, u.cost)
        assert best is not None and best >= u.accuracy - 1e-9


def test_choice_rules() -> None:
    # two bins, equal shares: easy saturates at once, hard keeps improving
    easy = [(1.0, 0.9), (4.0, 0.95), (16.0, 0.95)]
    hard = [(1.0, 0.1), (4.0, 0.5), (16.0, 0.6)]
    front = allocation_frontier([easy, hard], [1, 1])
    assert [a.choice for a in front] == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
    assert for_budget(front, 2.5).allocation.choice == (0, 1)  # cost 2.5, accuracy 0.70
    assert for_budget(front, 2.49).allocation.choice == (0, 0)
    low = for_budget(front, 0.5)
    assert low.allocation.choice == (0, 0) and not low.met
    assert for_accuracy(front, 0.72).allocation.choice == (1, 1)
    high = for_accuracy(front, 0.99)
    assert high.allocation == front[-1] and not high.met
    assert knee(front).allocation.choice == (0, 1)
    # a frontier on a straight line has no knee: the cheapest point
    line = [Allocation(1, 0.1, (0,)), Allocation(2, 0.2, (1,)), Allocation(3, 0.3, (2,))]
    assert knee(line).allocation.choice == (0,)
    assert knee(line[:1]).allocation.choice == (0,)


def test_shares_move_the_optimum() -> None:
    easy = [(1.0, 0.9), (16.0, 1.0)]
    hard = [(1.0, 0.1), (16.0, 0.6)]
    # mostly easy traffic: at a budget of 4 the hard bin is where samples pay
    front = allocation_frontier([easy, hard], [0.8, 0.2])
    assert for_budget(front, 4.0).allocation.choice == (0, 1)
    # mostly hard traffic: the same budget buys nothing but greedy
    front = allocation_frontier([easy, hard], [0.2, 0.8])
    assert for_budget(front, 4.0).allocation.choice == (1, 0)


def test_curve_helpers() -> None:
    curve = [(1.0, 0.2), (4.0, 0.4), (8.0, 0.5), (6.0, 0.3)]
    assert pareto_indices(curve) == [0, 1, 2]
    assert accuracy_at(curve, 5.0) == 0.4 and accuracy_at(curve, 0.5) is None
    assert cost_to_reach(curve, 0.3) == pytest.approx(2.5)
    assert cost_to_reach(curve, 0.1) == 1.0
    assert cost_to_reach(curve, 0.6) is None


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shares"):
        allocation_frontier([[(1, 1)]], [1, 2])
    with pytest.raises(ValueError, match="at least one option"):
        allocation_frontier([[]], [1])
    with pytest.raises(ValueError, match="non-negative"):
        allocation_frontier([[(1, 1)]], [-1])


def test_knee_ignores_gains_within_noise() -> None:
    # +0.02 for 12x the cost: a knee without a floor takes it, with a floor it stays greedy
    front = [Allocation(2.5, 0.20, (0,)), Allocation(5.0, 0.21, (1,)),
             Allocation(30.0, 0.22, (2,))]
    assert knee(front).allocation.choice == (1,)
    assert knee(front, min_gain=0.07).allocation.choice == (0,)
    big = [Allocation(1, 0.5, (0,)), Allocation(2, 0.7, (1,)), Allocation(10, 0.72, (2,))]
    assert knee(big, min_gain=0.07).allocation.choice == (1,)
