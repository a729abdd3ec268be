"""Calibration logic on a scripted result set: per-tier points, the exact allocation frontier
(against brute force and every uniform curve) and the budget / target / knee choices."""

from __future__ import annotations

import pytest

from classifier.base import Tier
from router.calibrate import ResultCache, calibrate, run_grid
from router.calibrate.analysis import Calibration
from router.calibrate.holdout import check_dominates
from router.calibrate.optimise import brute_force

from .scripted import BON4, BON16, CONFIGS, GREEDY, SC4, SC16, ScriptedRun, items

MODEL, MAX_TOKENS = "local", 16
KEYS = {c: c.key(MODEL, MAX_TOKENS) for c in CONFIGS}


async def scripted(**kwargs: object) -> Calibration:
    its = items()
    run = await run_grid(its, CONFIGS, ScriptedRun(), ResultCache(None), model=MODEL,
                         max_tokens=MAX_TOKENS)
    return calibrate(its, CONFIGS, run.records, KEYS, **kwargs)  # type: ignore[arg-type]


async def test_per_tier_statistics() -> None:
    cal = await scripted(metric="tokens")
    easy = {p.config: p for p in cal.tiers["easy"].points}
    assert [p.config for p in cal.tiers["easy"].points] == CONFIGS  # grid order kept
    assert easy[GREEDY].accuracy == 0.75 and easy[GREEDY].tokens == 10
    assert easy[BON16].accuracy == 1.0 and easy[BON16].generated == 80
    hard = {p.config: p for p in cal.tiers["hard"].points}
    assert [hard[c].accuracy for c in CONFIGS] == [0.0, 0.25, 0.5, 0.75, 0.5]
    overall = {p.config: p for p in cal.tiers["all"].points}
    assert overall[BON4].accuracy == 5 / 8 and overall[BON4].runs == 8
    assert cal.tiers["easy"].items == 4 and cal.tiers["all"].items == 8
    assert "medium" not in cal.tiers


async def test_frontier_is_exact() -> None:
    cal = await scripted(metric="tokens")
    # easy: bon4 (40, .75) is beaten by sc4 (40, 1.0); bon16/sc16 add no accuracy
    assert [p.config for p in cal.tiers["easy"].frontier] == [GREEDY, SC4]
    # hard: at 40 tokens bon4 (.5) beats sc4 (.25); sc16 (200, .5) is dominated by bon16
    assert [p.config for p in cal.tiers["hard"].frontier] == [GREEDY, BON4, BON16]


async def test_allocation_frontier_is_exact_and_beats_uniform() -> None:
    cal = await scripted(metric="tokens")
    assert cal.bins == ["easy", "hard"] and cal.shares == {"easy": 0.5, "hard": 0.5}
    # math_reference best-of-N is an oracle: out of the policy by default
    assert cal.options == [GREEDY, SC4, SC16]
    options = [[(p.tokens, p.accuracy) for p in cal.tiers[b].points if p.config in cal.options]
               for b in cal.bins]
    slow = brute_force(options, [0.5, 0.5])
    assert [(a.cost, a.accuracy) for a in cal.frontier] == [(a.cost, a.accuracy) for a in slow]
    assert check_dominates(cal) == []
    # every uniform serve-time point is on or under the frontier
    for config in cal.options:
        u = cal.uniform[config]
        best = max(a.accuracy for a in cal.frontier if a.cost <= u.cost + 1e-9)
        assert best >= u.accuracy
    # easy: greedy (10, .75), sc4 (40, 1.0); hard: greedy (10, 0), sc4 (40, .25), sc16 (200, .5)
    assert [(a.cost, a.accuracy) for a in cal.frontier] == [
        (10, 0.375), (25, 0.5), (40, 0.625), (120, 0.75)]
    assert cal.assignment(cal.frontier[-1]) == {"easy": SC4, "hard": SC16}


async def test_budget_target_and_knee() -> None:
    cal = await scripted(metric="tokens", budget=45)
    assert cal.policy == {"easy": SC4, "hard": SC4} and cal.pick is not None
    assert cal.pick.allocation.cost == 40 and cal.pick.met
    assert cal.tiers["easy"].chosen is not None and cal.tiers["easy"].chosen.config == SC4
    rich = await scripted(metric="tokens", target_accuracy=0.75)
    assert rich.policy == {"easy": SC4, "hard": SC16}
    poor = await scripted(metric="tokens", budget=1)
    assert poor.pick is not None and not poor.pick.met and poor.policy["hard"] == GREEDY
    knee = await scripted(metric="tokens")
    assert knee.pick is not None and knee.pick.rule == "knee"
    with pytest.raises(ValueError, match="not both"):
        await scripted(budget=1, target_accuracy=0.5)


async def test_reference_verifier_allowed_and_shares() -> None:
    cal = await scripted(metric="tokens", allow_reference=True, target_accuracy=0.75)
    assert BON4 in cal.options and cal.policy == {"easy": SC4, "hard": BON4}
    # mostly hard traffic: 37 tokens a query buys best-of-4 on hard, not self-consistency on easy
    mix = await scripted(metric="tokens", allow_reference=True, budget=37,
                         shares={"easy": 0.1, "hard": 0.9})
    assert mix.shares == {"easy": 0.1, "hard": 0.9}
    assert mix.policy == {"easy": GREEDY, "hard": BON4}
    with pytest.raises(ValueError, match="unknown tier"):
        await scripted(shares={"hardest": 1.0})
    noted = await scripted(shares={"easy": 1.0, "medium": 1.0})
    assert any("no calibration items in medium" in n for n in noted.notes)


async def test_cost_metrics() -> None:
    usd = await scripted()  # auto: the scripted runs cost USD
    assert usd.metric == "usd"
    gen = await scripted(metric="generated", budget=12.5, allow_reference=True)
    assert gen.policy == {"easy": GREEDY, "hard": BON4}  # 5 + 20 generated tokens / 2
    with pytest.raises(ValueError, match="unknown cost metric"):
        await scripted(metric="joules")


async def test_tiers_from_solve_rates() -> None:
    its = items(with_tiers=False)
    # candidates correct per run (of 4), same for every configuration
    solve = {"e0": 4, "e1": 3, "e2": 2, "e3": 1, "h0": 0, "h1": 4, "h2": 4, "h3": 4}
    run = await run_grid(its, CONFIGS, ScriptedRun(solve), ResultCache(None), model=MODEL,
                         max_tokens=MAX_TOKENS)
    cal = calibrate(its, CONFIGS, run.records, KEYS, metric="tokens")
    by_id = {it.id: it.key for it in its}
    assert cal.solve_rates[by_id["e1"]] == (0.75, 20)
    tiers = {i: cal.tier_of[k] for i, k in by_id.items()}
    assert tiers["e0"] == Tier.EASY and tiers["e1"] == Tier.MEDIUM
    assert tiers["e2"] == Tier.MEDIUM and tiers["e3"] == Tier.HARD
    assert tiers["h0"] == Tier.VERY_HARD
    assert cal.tiers["very_hard"].items == 1
    given = items()
    run2 = await run_grid(given, CONFIGS, ScriptedRun(solve), ResultCache(None), model=MODEL,
                          max_tokens=MAX_TOKENS)
    forced = calibrate(given, CONFIGS, run2.records, KEYS, tier_from="solve_rate")
    assert forced.tier_of[given[0].key] == Tier.EASY
    assert forced.tier_of[given[4].key] == Tier.VERY_HARD  # given "hard", rate 0


def test_sc16_label_is_distinct() -> None:
    assert len({c.label for c in CONFIGS}) == len(CONFIGS)
    assert SC16.label == "self_consistency(n=16)"
    assert BON4.label == "best_of_n(mode=plain,n=4)+math_reference"
