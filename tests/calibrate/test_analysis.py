"""Calibration logic on a scripted result set: frontier and chosen points, both modes."""

from __future__ import annotations

import pytest

from classifier.base import Tier
from router.calibrate import ResultCache, calibrate, run_grid
from router.calibrate.analysis import Calibration

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


async def test_target_mode_picks_cheapest_within_slack() -> None:
    strict = await scripted(metric="tokens", target=0.0)
    assert strict.tiers["easy"].target.point.config == SC4  # type: ignore[union-attr]
    assert strict.tiers["hard"].target.point.config == BON16  # type: ignore[union-attr]
    loose = await scripted(metric="tokens", target=0.25)
    assert loose.tiers["easy"].target.point.config == GREEDY  # type: ignore[union-attr]
    assert loose.tiers["hard"].target.point.config == BON4  # type: ignore[union-attr]
    assert loose.tiers["hard"].target.best_accuracy == 0.75  # type: ignore[union-attr]


async def test_cap_mode_picks_most_accurate_under_cap() -> None:
    cal = await scripted(metric="tokens", cap=50)
    assert cal.tiers["easy"].cap.point.config == SC4  # type: ignore[union-attr]
    assert cal.tiers["hard"].cap.point.config == BON4  # type: ignore[union-attr]
    assert cal.tiers["hard"].cap.within  # type: ignore[union-attr]
    big = await scripted(metric="tokens", cap=1000)
    assert big.tiers["hard"].cap.point.config == BON16  # type: ignore[union-attr]
    # equal accuracy: the cheaper one wins (sc4 over bon16 and sc16 on easy)
    assert big.tiers["easy"].cap.point.config == SC4  # type: ignore[union-attr]
    none = await scripted(metric="tokens", cap=5)
    choice = none.tiers["hard"].cap
    assert choice is not None and choice.point.config == GREEDY and not choice.within


async def test_default_cap_is_target_mode_spend() -> None:
    cal = await scripted(metric="tokens", target=0.0)
    # target picks sc4 (40) on 4 easy items and bon16 (160) on 4 hard items
    assert cal.cap == pytest.approx(100.0)
    assert cal.tiers["hard"].cap.point.config == BON4  # type: ignore[union-attr]


async def test_cost_metrics() -> None:
    usd = await scripted()  # auto: the scripted runs cost USD
    assert usd.metric == "usd"
    gen = await scripted(metric="generated", cap=20)
    hard = gen.tiers["hard"]
    assert hard.cap is not None and hard.cap.point.config == BON4  # 20 generated tokens
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
