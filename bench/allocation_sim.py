"""Adaptive against uniform compute on SIMULATED recorded samples, scenario by scenario.

    python bench/allocation_sim.py                  # 1,000 questions x 16 samples per scenario
    python bench/allocation_sim.py --questions 300  # smaller
    python bench/allocation_sim.py --scores-only \
        --config "best_of_n n=8,16 stop_share=0.75 round_size=2 verifier=recorded_score"

Each scenario draws samples with bench/synthetic_samples.py (its docstring says where every
parameter comes from), replays the serve-time grid, calibrates on 70% of the questions and
reports on the other 30% (`ttc-router calibrate --samples` does the same): the most accurate
serve-time uniform arm, the knee policy, and the compute ratio at matched accuracy with its 95%
bootstrap interval, against every uniform curve (the tier's saving alone) and against "same N
for everyone" (uniform without early stopping or escalation: the saving of tier and evidence).
Two tier sources: the `tier` field (right 80% of the time, a classifier stand-in) and the true
tier. Scenarios: the per-question solve probability from the fitted Beta law or from the
previous version's narrow band per tier, each with and without the simulated verifier score.

Every number is a property of the simulation, not of a model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))

from bench.synthetic_samples import CONCENTRATION, DISPERSION, simulate  # noqa: E402
from classifier.base import Tier  # noqa: E402
from router.calibrate import Options, evaluate  # noqa: E402
from router.calibrate.grid import parse_spec  # noqa: E402
from router.calibrate.holdout import Ratio  # noqa: E402
from router.calibrate.replay import replay, replay_grid  # noqa: E402

SCENARIOS = {
    "fitted Beta p, votes only": {"law": "beta", "scores": False},
    "fitted Beta p, votes + verifier (AUC 0.93)": {"law": "beta", "scores": True},
    "band p (previous), votes only": {"law": "band", "scores": False},
    "band p (previous), votes + verifier (AUC 0.93)": {"law": "band", "scores": True},
}


def _fmt(r: Ratio | None) -> str:
    if r is None:
        return "-"
    lo, hi = r.ci
    value = "not reached" if r.value is None else f"{r.value:.2f}x"
    low = "-" if lo is None else f"{lo:.2f}"
    high = "not reached" if hi is None else f"{hi:.2f}"
    return f"{value} [{low}, {high}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--boots", type=int, default=1000)
    ap.add_argument("--dispersion", type=float, default=DISPERSION,
                    help="Beta k of the fitted law (a sensitivity check)")
    ap.add_argument("--concentration", type=float, default=CONCENTRATION,
                    help="Dirichlet concentration of the wrong answers (a sensitivity check)")
    ap.add_argument("--config", action="append", default=[], metavar="SPEC",
                    help="add configurations to the replayed grid (as `calibrate --config`); "
                         "those with a verifier only to the scenarios with scores")
    ap.add_argument("--scores-only", action="store_true",
                    help="only the scenarios with the simulated verifier")
    args = ap.parse_args(argv)
    extra = [c for spec in args.config for c in parse_spec(spec)]
    t0 = time.monotonic()
    rows = []
    for name, spec in SCENARIOS.items():
        if args.scores_only and not spec["scores"]:
            continue
        items = simulate(args.questions, args.samples, seed=args.seed, law=str(spec["law"]),
                         scores=bool(spec["scores"]), k=args.dispersion,
                         alpha=args.concentration)
        configs = replay_grid(args.samples, scores=bool(spec["scores"]))
        configs += [c for c in extra if c not in configs and (spec["scores"] or not c.verifier)]
        records, _ = replay(items, configs, model="sim", max_tokens=1024, seed=args.seed)
        true = [dataclasses.replace(it, tier=Tier(it.problem[1:it.problem.index("]")]))
                for it in items]
        for source, its in (("80%-right tiers", items), ("true tiers", true)):
            evals = [it.eval_item() for it in its]
            opts = Options(metric="generated", holdout=0.3, tier_from="given",
                           max_tokens=1024, boots=args.boots, seed=args.seed)
            ev = evaluate(evals, configs, records, "sim", opts)
            h = ev.holdout
            assert h is not None
            serve = [a for cv in h.curves if cv.kind == "uniform" for a in cv.arms]
            greedy = next(a for a in serve if a.name.startswith("greedy"))
            best = max(serve, key=lambda a: (round(a.accuracy, 3), -a.cost))

            def ratio(suffix: str, ratios: list[Ratio] = h.ratios) -> Ratio | None:
                return next((r for r in ratios if r.name.endswith(suffix)), None)

            knee = next(r for r in h.ratios if r.name.endswith("(knee)"))
            top = max((a for cv in h.curves if cv.kind == "adaptive" for a in cv.arms),
                      key=lambda a: (a.accuracy, -a.cost))
            rows.append((
                name, source, f"{greedy.accuracy:.3f} / {greedy.cost:.0f}",
                f"{best.name} {best.accuracy:.3f} / {best.cost:.0f}",
                f"{knee.accuracy:.3f} / {knee.cost:.0f}",
                f"{top.accuracy:.3f} / {top.cost:.0f}",
                _fmt(knee), _fmt(ratio("(knee) vs same N for everyone")),
                _fmt(ratio("(at the best uniform accuracy)")),
                _fmt(ratio("vs same N for everyone (at its best accuracy)")),
            ))
        print(f"{name}: done ({time.monotonic() - t0:.0f} s, {len(configs)} configurations)",
              file=sys.stderr, flush=True)
    print(f"\n{args.questions} SIMULATED questions x {args.samples} samples per scenario "
          f"(Beta k {args.dispersion:g}, Dirichlet {args.concentration:g}), 30% held out, 95% "
          f"bootstrap intervals ({args.boots} resamples); cost = generated tokens per question; "
          "accuracy / cost\n")
    print("| scenario | tiers | greedy | best serve-time uniform | knee policy | adaptive "
          "curve's most accurate point | ratio at the knee vs every uniform | vs same N | "
          "ratio at the best uniform accuracy vs every uniform | vs same N |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
