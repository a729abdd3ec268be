"""Held-out split, bootstrap intervals and the held-out report, on scripted results and on a
replayed (simulated) sample file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier.base import Tier
from router.calibrate import Options, ResultCache, analyse, evaluate, run_grid, split_items
from router.calibrate.holdout import _Table, check_dominates, evaluate_holdout
from router.calibrate.replay import replay, replay_grid
from router.calibrate.samples import load_samples

from .scripted import CONFIGS, SC4, ScriptedRun, items

REPO = Path(__file__).resolve().parents[2]


def test_split_is_seeded_stratified_and_disjoint() -> None:
    its = items()
    cal, held = split_items(its, 0.5, seed=3)
    assert {it.key for it in cal}.isdisjoint({it.key for it in held})
    assert len(cal) + len(held) == len(its)
    # stratified by given tier: half of each
    assert sorted(it.tier.value for it in held if it.tier) == ["easy"] * 2 + ["hard"] * 2
    again = split_items(its, 0.5, seed=3)
    assert [it.key for it in again[1]] == [it.key for it in held]
    assert [it.key for it in split_items(its, 0.5, seed=4)[1]] != [it.key for it in held]
    with pytest.raises(ValueError):
        split_items(its, 1.0)
    one = split_items(its[:2], 0.1)
    assert len(one[0]) == 1 and len(one[1]) == 1


async def test_bootstrap_intervals() -> None:
    its = items()
    run = await run_grid(its, CONFIGS, ScriptedRun(), ResultCache(None), model="m",
                         max_tokens=1)
    keys = {c: c.key("m", 1) for c in CONFIGS}
    table = _Table(its, CONFIGS, run.records, keys, "tokens")
    boots = np.random.default_rng(0).integers(0, len(its), size=(2000, len(its)))
    # sc4 is right on 4 easy + 1 hard of 8 items: 0.625
    arm = table.arm("sc4", np.full(len(its), CONFIGS.index(SC4)), boots)
    assert arm.accuracy == 0.625 and arm.cost == 40
    lo, hi = arm.accuracy_ci
    assert 0.25 <= lo < 0.625 < hi <= 1.0  # 8 items: a wide interval
    assert arm.cost_ci == (40, 40)  # every run costs the same


async def test_holdout_report_on_scripted_results() -> None:
    its = items()
    run = await run_grid(its, CONFIGS, ScriptedRun(), ResultCache(None), model="m",
                         max_tokens=1)
    opts = Options(metric="tokens", holdout=0.5, seed=1, max_tokens=1, boots=200)
    result = evaluate(its, CONFIGS, run.records, "m", opts)
    h = result.holdout
    assert h is not None and h.items == 4 and result.calibration_items == 4
    names = {cv.name: cv for cv in h.curves}
    assert names["uniform best-of-N plain + math_reference (oracle)"].kind == "ceiling"
    assert {"uniform greedy", "uniform self-consistency, adaptive stop",
            "adaptive, given tiers"} <= set(names)
    assert {r.name for r in h.ratios} == {
        "adaptive, given tiers (knee)", "adaptive, given tiers (at the best uniform accuracy)",
        "adaptive, given tiers (knee) vs same N for everyone",
        "adaptive, given tiers vs same N for everyone (at its best accuracy)"}
    assert check_dominates(result.cal) == []
    predicted = {it.key: Tier.HARD for it in its}  # a classifier that says "hard" to all
    both = evaluate(its, CONFIGS, run.records, "m", opts, predicted)
    assert both.source == "predicted" and set(both.calibrations) == {"given", "predicted"}
    assert both.cal.bins == ["hard"]
    assert "adaptive, predicted tiers" in {cv.name for cv in both.holdout.curves}  # type: ignore[union-attr]


def test_replayed_frontier_beats_uniform_and_holds_out(tmp_path: Path) -> None:
    path = tmp_path / "sim.jsonl"
    subprocess.run([sys.executable, "bench/synthetic_samples.py", "--questions", "300",
                    "--samples", "8", "--out", str(path)], cwd=REPO, check=True,
                   capture_output=True)
    recorded = load_samples(path)
    configs = replay_grid(8, scores=True)
    records, _ = replay(recorded, configs, model="m", max_tokens=1)
    its = [r.eval_item() for r in recorded]
    opts = Options(metric="generated", holdout=0.3, max_tokens=1, tier_from="given", boots=200)
    result = evaluate(its, configs, records, "m", opts)
    # on the calibration data the exact frontier is at or above every uniform curve
    assert check_dominates(result.cal) == []
    for config, u in result.cal.uniform.items():
        if config in result.cal.options:
            assert max(a.accuracy for a in result.cal.frontier if a.cost <= u.cost + 1e-9) \
                >= u.accuracy - 1e-9
    h = result.holdout
    assert h is not None and 85 <= h.items <= 95  # 30% of each given tier, rounded
    uniform = [a for cv in h.curves if cv.kind == "uniform" for a in cv.arms]
    greedy = next(a for a in uniform if a.name.startswith("greedy"))
    best = max(uniform, key=lambda a: a.accuracy)
    assert best.accuracy > greedy.accuracy  # in this simulation compute does help
    under, points = h.below["adaptive, given tiers"]
    assert points == len(result.cal.frontier) and under == 0  # never below uniform, held out
    knee = next(r for r in h.ratios if r.name.endswith("(knee)"))
    assert knee.value is not None and knee.ci[0] is not None
    assert h.attribution and h.attribution_accuracy is not None
    # the held-out evaluation is what evaluate_holdout computes from the calibrations
    again = evaluate_holdout(result.calibrations, [it for it in its if it.key not in {
        c.key for c in split_items(its, 0.3, 0)[0]}], configs, records,
        {c: c.key("m", 1) for c in configs},
        {"given": {it.key: it.tier for it in its if it.tier}}, boots=200)
    assert [cv.name for cv in again.curves] == [cv.name for cv in h.curves]
    assert analyse  # exported for benchmarks


def test_ratio_interval_when_some_resamples_never_reach() -> None:
    from router.calibrate.holdout import Arm, _ratio

    # uniform reaches 0.5 at cost 10 in every resample; the adaptive arm scores 0.4 in half of
    # them (ratio 10 / 5) and 0.6 in the other half (uniform never gets there)
    serve = [(np.full(4, 0.5), np.full(4, 10.0))]
    acc, cost = np.array([0.4, 0.4, 0.6, 0.6]), np.full(4, 5.0)
    pick = Arm("pick", 0.5, 5.0, (0.4, 0.6), (5.0, 5.0))
    r = _ratio("x", pick, [(10.0, 0.5)], acc, cost, serve)
    assert r.value == 2.0
    assert r.ci == (2.0, None)  # the upper end is "not reached", never NaN


def test_matched_accuracy_uses_the_stated_tie_tolerance() -> None:
    from router.calibrate.holdout import TIE, Arm, _at_best, _best, _ratio

    def arm(name: str, acc: float, cost: float) -> Arm:
        return Arm(name, acc, cost, (acc, acc), (cost, cost))

    # the best uniform pick treats 0.6515 and 0.652 as a tie and takes the cheaper arm
    uniform = [arm("u1", 0.6515, 5000.0), arm("u2", 0.652, 5487.0)]
    boots = [(np.full(3, a.accuracy), np.full(3, a.cost)) for a in uniform]
    best = _best(uniform, boots, range(2))[0]
    assert best.name == "u1" and TIE == 1e-3
    # the adaptive curve tops out 0.0008 short of a 0.652 uniform arm: the same tolerance
    # calls that reached (it was "not reached" with a strict comparison)
    adaptive = [arm("a1", 0.60, 1000.0), arm("a2", 0.6512, 3194.0)]
    curve = [(np.full(3, a.accuracy), np.full(3, a.cost)) for a in adaptive]
    top = arm("u2", 0.652, 5487.0)
    r = _at_best("x", adaptive, curve, top, (np.full(3, 0.652), np.full(3, 5487.0)))
    assert r.value is not None and r.value > 5487.0 / 3194.0
    assert r.ci[0] is not None and r.ci[0] > 1.7
    # 0.002 short stays out of reach
    far = [arm("a1", 0.60, 1000.0), arm("a2", 0.650, 3194.0)]
    curve = [(np.full(3, a.accuracy), np.full(3, a.cost)) for a in far]
    assert _at_best("x", far, curve, top, (np.full(3, 0.652), np.full(3, 5487.0))).value is None
    # and the other way round: a uniform curve 0.0008 short of the adaptive pick reaches it
    pick = arm("pick", 0.652, 2000.0)
    r = _ratio("y", pick, [(5487.0, 0.6512)], np.full(3, 0.652), np.full(3, 2000.0),
               [(np.full(3, 0.6512), np.full(3, 5487.0))])
    assert r.value == pytest.approx(5487.0 / 2000.0) and r.ci[1] is not None
