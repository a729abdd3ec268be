"""The simulated recorded samples: the fit recovers the shapes the generator was given, so the
figures in docs/benchmarks.md rest on parameters that `--fit` measures the same way on real
recorded samples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.synthetic_samples import (
    DISPERSION,
    LOCAL_TABLE,
    MEAN,
    _pass_at,
    dispersion_from_pass,
    fit_concentration,
    fit_dispersion,
    simulate,
    top_wrong_share,
)
from classifier.base import Tier
from router.calibrate.samples import write_samples


def _pools(law: str, k: float = 1.4, alpha: float = 0.3) -> dict[Tier, list[list]]:
    items = simulate(1200, 16, seed=3, tier_accuracy=1.0, law=law, k=k, alpha=alpha)
    out: dict[Tier, list[list]] = {}
    for it in items:
        assert it.tier is not None
        out.setdefault(it.tier, []).append([s for s in it.samples if not s.greedy])
    return out


def _counts(pools: list[list]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([sum(s.correct for s in p) for p in pools]),
            np.array([len(p) for p in pools]))


def test_fit_recovers_dispersion_and_concentration() -> None:
    pools = _pools("beta", k=1.4, alpha=0.3)
    for tier in (Tier.EASY, Tier.MEDIUM):
        mean, k = fit_dispersion(*_counts(pools[tier]))
        assert abs(mean - MEAN[tier]) < 0.06 and 0.9 <= k <= 2.2, (tier, mean, k)
    wrong = [Counter(s.answer for s in p if not s.correct) for ps in pools.values() for p in ps]
    wrong = [w for w in wrong if sum(w.values()) >= 3]
    alpha = fit_concentration([sum(w.values()) for w in wrong],
                              float(np.mean([top_wrong_share(w) for w in wrong])))
    assert 0.15 <= alpha <= 0.6, alpha


def test_band_law_is_narrow_and_scores_are_optional() -> None:
    # the previous version's uniform band per tier: far less spread than the fitted law
    _, k = fit_dispersion(*_counts(_pools("band")[Tier.MEDIUM]))
    assert k > 10
    votes = simulate(20, 4, scores=False)
    assert all(s.score is None for it in votes for s in it.samples)
    assert all(it.samples[0].greedy and len(it.samples) == 5 for it in votes)


def test_dispersion_from_the_local_table() -> None:
    # pass@16 grows with k between its limits; the bisection inverts it
    assert _pass_at(0.3, 0.01, 16) < 0.31 and _pass_at(0.3, 1e4, 16) > 0.99
    for k in (0.3, 1.0, 5.0):
        assert dispersion_from_pass(0.3, _pass_at(0.3, k, 16), 16) == pytest.approx(k, rel=1e-3)
    ks = sorted(dispersion_from_pass(p1, p16, 16) for p1, p16, _ in LOCAL_TABLE.values())
    assert pytest.approx((ks[1] + ks[2]) / 2, abs=0.01) == DISPERSION  # the median of four


def test_allocation_sim_prints_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.allocation_sim import SCENARIOS, main

    assert main(["--questions", "120", "--samples", "8", "--boots", "50"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " tiers | " in line
            and not line.startswith("| scenario")]
    assert len(rows) == 2 * len(SCENARIOS)
    for name in SCENARIOS:
        assert f"| {name} | 80%-right tiers |" in out and f"| {name} | true tiers |" in out
    assert "SIMULATED" in out and "vs same N" in out


def test_fit_command_on_a_samples_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from bench.synthetic_samples import main

    path = tmp_path / "s.jsonl"
    write_samples(simulate(400, 16, seed=5, tier_accuracy=1.0), path)
    assert main(["--fit", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| easy | " in out and "| very_hard | " in out
    fitted = json.loads(out.strip().splitlines()[-1])
    assert 0.7 <= fitted["dispersion_median"] <= 2.0
    assert 0.15 <= fitted["concentration"] <= 0.6
    # three questions without enough wrong samples: said, not a crash
    assert main(["--fit", str(Path(__file__).resolve().parents[2] / "docs" / "examples"
                               / "samples.jsonl")]) == 0
    assert "concentration not fitted" in capsys.readouterr().out
