"""SIMULATED recorded samples for `ttc-router calibrate --samples` (no model is called).

    python bench/synthetic_samples.py --questions 1000 --samples 16 --out bench/out/sim.jsonl
    python bench/synthetic_samples.py --fit bench/out/allocation/samples-train.jsonl

Every number it leads to is a property of this simulation, not of any real model: it exists to
show the allocation machinery where extra compute does buy accuracy with serve-time selection
(majority vote, early-stopping self-consistency, a verifier score that never sees the
reference), and to time the replay. `--fit FILE` measures the two distribution shapes below on
real recorded samples and checks the fitted model against them.

The simulated model, and where each parameter comes from:

- Traffic mix: easy 40%, medium 30%, hard 20%, very hard 10% (an assumption; `calibrate
  --shares` sets another).
- Per-question solve probability p ~ Beta(m k, (1 - m) k), tier means m = 0.865, 0.575, 0.30,
  0.05 (an assumption: a model for which voting pays on part of the traffic; they are the
  previous version's band midpoints). The dispersion k = `DISPERSION` is MEASURED: per-question
  solve rates of a real model are spread out, not bunched in a band. On the local model (Gemma 3
  270M, few-shot arithmetic, ../shared/LOCAL-MODEL.md) the pass@1 and pass@16 of each shape the
  model can do at all imply k = 1.01, 1.27, 0.94 and 2.43 for a Beta law (`--fit-local-table`);
  `DISPERSION` is their median. The previous version drew p uniformly in a band per tier (easy
  0.75-0.98, ...), like k ~ 40-200; `--p-law band` still does that, to compare.
- Wrong answers: each question has `DISTRACTORS` candidate wrong answers with weights from a
  symmetric Dirichlet(`CONCENTRATION`), so a few distractors take most of the wrong samples (a
  model that is wrong tends to be wrong the same way). `CONCENTRATION` is the value that best
  reproduces the same table's majority@16 on every shape given the fitted k (`--fit-local-table`
  prints the check: model within 0.03 of each measured figure, which are +-0.07).
  `--fit FILE` measures both shapes directly on any recorded-samples file (beta-binomial
  maximum likelihood for k, the most common wrong answer's share for the concentration).
- Completion tokens grow with difficulty (lognormal around 150, 300, 600, 900; an assumption:
  harder questions get longer solutions). The first sample is the greedy one (same p).
- Verifier score (a serve-time signal that never sees the reference): a correct sample scores
  Beta(5, 2), a wrong one Beta(2, 4): AUC 0.93 on every tier. An assumption, not measured,
  and an optimistic one: nothing here makes it weaker on the questions the model finds hard.
  `--no-scores` leaves it out (then only voting and early stopping select).
- The question text carries its tier as a word ("[easy]"), and the `tier` field is the true
  tier with probability `--tier-accuracy`, else a neighbouring one (a classifier's label).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))

from classifier.base import TIERS, Tier  # noqa: E402
from router.calibrate.samples import (  # noqa: E402
    RecordedItem,
    RecordedSample,
    load_samples,
    write_samples,
)

MIX = {Tier.EASY: 0.4, Tier.MEDIUM: 0.3, Tier.HARD: 0.2, Tier.VERY_HARD: 0.1}
MEAN = {Tier.EASY: 0.865, Tier.MEDIUM: 0.575, Tier.HARD: 0.30, Tier.VERY_HARD: 0.05}
P_BAND = {Tier.EASY: (0.75, 0.98), Tier.MEDIUM: (0.4, 0.75), Tier.HARD: (0.15, 0.45),
          Tier.VERY_HARD: (0.0, 0.1)}
TOKENS = {Tier.EASY: 150, Tier.MEDIUM: 300, Tier.HARD: 600, Tier.VERY_HARD: 900}
DISPERSION = 1.14  # median of the per-shape fits on LOCAL-MODEL.md (--fit-local-table)
DISTRACTORS = 10
CONCENTRATION = 0.3  # best reproduces LOCAL-MODEL.md majority@16 (--fit-local-table)


def solve_probability(tier: Tier, rng: np.random.Generator, law: str, k: float) -> float:
    if law == "band":
        return float(rng.uniform(*P_BAND[tier]))
    m = MEAN[tier]
    return float(rng.beta(m * k, (1 - m) * k))


def question(i: int, rng: np.random.Generator, samples: int, tier_accuracy: float, *,
             law: str = "beta", k: float = DISPERSION, alpha: float = CONCENTRATION,
             scores: bool = True) -> RecordedItem:
    tiers = list(MIX)
    tier = tiers[int(rng.choice(len(tiers), p=list(MIX.values())))]
    p = solve_probability(tier, rng, law, k)
    weights = rng.dirichlet([alpha] * DISTRACTORS)
    n = samples + 1  # the first is the greedy sample, the rest the pool
    ok = rng.random(n) < p
    wrong = rng.choice(DISTRACTORS, size=n, p=weights)
    score = np.where(ok, rng.beta(5, 2, n), rng.beta(2, 4, n))
    tokens = np.maximum(8, (rng.lognormal(0, 0.35, n) * TOKENS[tier]).astype(int))
    out = tuple(
        RecordedSample(str(i) if ok[j] else f"{1000 + i}-{wrong[j]}", bool(ok[j]),
                       int(tokens[j]), round(float(score[j]), 4) if scores else None,
                       greedy=j == 0)
        for j in range(n))
    label = tier
    if rng.random() > tier_accuracy:
        step = TIERS.index(tier) + int(rng.choice((-1, 1)))
        label = TIERS[min(len(TIERS) - 1, max(0, step))]
    return RecordedItem(f"sim{i}", f"[{tier.value}] simulated question {i}", out,
                        str(i), label, prompt_tokens=120)


def simulate(questions: int, samples: int, *, seed: int = 0, tier_accuracy: float = 0.8,
             law: str = "beta", k: float = DISPERSION, alpha: float = CONCENTRATION,
             scores: bool = True) -> list[RecordedItem]:
    rng = np.random.default_rng(seed)
    return [question(i, rng, samples, tier_accuracy, law=law, k=k, alpha=alpha, scores=scores)
            for i in range(questions)]


# --- fitting the two shapes on real recorded samples -------------------------------------

def _betabinom_loglik(c: np.ndarray, m: np.ndarray, mean: float, k: float) -> float:
    a, b = mean * k, (1 - mean) * k
    lb = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return float(sum(math.lgamma(ci + a) + math.lgamma(mi - ci + b) - math.lgamma(mi + a + b)
                     - lb for ci, mi in zip(c, m, strict=True)))


def fit_dispersion(c: np.ndarray, m: np.ndarray) -> tuple[float, float]:
    """(mean, k) of the beta-binomial that fits correct counts `c` of `m` samples: the mean
    by moments, k by maximum likelihood on a log grid (None-like 0 when the mean is 0 or 1)."""
    mean = float(c.sum() / m.sum())
    if mean <= 0 or mean >= 1:
        return mean, 0.0
    grid = np.exp(np.linspace(math.log(0.05), math.log(500), 300))
    ll = [_betabinom_loglik(c, m, mean, float(k)) for k in grid]
    return mean, float(grid[int(np.argmax(ll))])


def top_wrong_share(counts: Counter[str]) -> float:
    return max(counts.values()) / sum(counts.values())


def fit_concentration(wrong_counts: list[int], observed: float, seed: int = 0) -> float:
    """The Dirichlet concentration whose simulated mean top-wrong-answer share, over questions
    with these numbers of wrong samples, matches `observed`."""
    rng = np.random.default_rng(seed)
    grid = np.exp(np.linspace(math.log(0.02), math.log(20), 80))
    w = np.repeat(np.array(wrong_counts), 50)
    best, err = float(grid[0]), math.inf
    for alpha in grid:
        draws = rng.multinomial(w, rng.dirichlet([alpha] * DISTRACTORS, size=len(w)))
        e = abs(float((draws.max(axis=1) / w).mean()) - observed)
        if e < err:
            best, err = float(alpha), e
    return best


# ../shared/LOCAL-MODEL.md, "A task family with a real test-time-compute curve": Gemma 3 270M,
# few-shot arithmetic, 40 problems x 16 samples per shape (T = 0.7): single-sample accuracy
# (best-of-N at N = 1), pass@16 and majority vote at 16, for the four shapes it can do at all
LOCAL_TABLE = {"1d+1d": (0.69, 0.95, 0.79), "2d+1d": (0.33, 0.75, 0.42),
               "2dx1d": (0.15, 0.40, 0.20), "2d+-2d": (0.06, 0.28, 0.04)}


def _pass_at(mean: float, k: float, n: int) -> float:
    """pass@n when p ~ Beta(mean k, (1 - mean) k): 1 - E[(1 - p)^n]."""
    a, b = mean * k, (1 - mean) * k
    miss = 1.0
    for i in range(n):
        miss *= (b + i) / (a + b + i)
    return 1.0 - miss


def dispersion_from_pass(mean: float, pass_n: float, n: int) -> float:
    """The Beta k that gives pass@n = `pass_n` at single-sample accuracy `mean` (bisection on
    log k: pass@n grows with k, from `mean` at k -> 0 to 1 - (1 - mean)^n at k -> inf)."""
    lo, hi = math.log(1e-3), math.log(1e4)
    for _ in range(100):
        mid = (lo + hi) / 2
        if _pass_at(mean, math.exp(mid), n) > pass_n:
            hi = mid
        else:
            lo = mid
    return math.exp((lo + hi) / 2)


def _model_vote(mean: float, k: float, alpha: float, n: int, rng: np.random.Generator,
                sims: int = 4000) -> float:
    """Majority-vote accuracy at n under the model (ties split evenly)."""
    p = rng.beta(mean * k, (1 - mean) * k, size=sims)
    ok = rng.random((sims, n)) < p[:, None]
    weights = rng.dirichlet([alpha] * DISTRACTORS, size=sims)
    wrong = np.stack([rng.choice(DISTRACTORS, size=n, p=w) for w in weights])
    right = ok.sum(axis=1)
    counts = np.stack([np.bincount(wrong[i][~ok[i]], minlength=DISTRACTORS)
                       for i in range(sims)])
    top = np.maximum(right, counts.max(axis=1))
    tied = (right == top).astype(float) + (counts == top[:, None]).sum(axis=1)
    return float(np.where(top > 0, (right == top) / tied, 0.0).mean())


def fit_local_table() -> int:
    """The two shapes from the measured aggregates in LOCAL-MODEL.md: k per shape from pass@1
    and pass@16, then the concentration that best reproduces majority@16 on every shape."""
    rng = np.random.default_rng(0)
    ks = {name: dispersion_from_pass(p1, p16, 16) for name, (p1, p16, _) in LOCAL_TABLE.items()}
    grid = [0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0]
    sse = {}
    for alpha in grid:
        sse[alpha] = sum((_model_vote(p1, ks[name], alpha, 16, rng) - vote) ** 2
                         for name, (p1, _, vote) in LOCAL_TABLE.items())
    alpha = min(sse, key=lambda a: sse[a])
    print("| shape | pass@1 | pass@16 | fitted k | majority@16 measured / model |")
    print("|---|---|---|---|---|")
    for name, (p1, p16, vote) in LOCAL_TABLE.items():
        model = _model_vote(p1, ks[name], alpha, 16, rng)
        print(f"| {name} | {p1:.2f} | {p16:.2f} | {ks[name]:.2f} | {vote:.2f} / {model:.2f} |")
    print(f"\ndispersion k: median {float(np.median(list(ks.values()))):.2f}; concentration "
          f"that best reproduces majority@16: {alpha:g} (sum of squared errors by "
          f"concentration: {', '.join(f'{a:g}: {e:.4f}' for a, e in sse.items())})")
    return 0


def _vote_correct(answers: list[str | None], correct: list[bool], rng: np.random.Generator
                  ) -> float:
    """Expected majority-vote correctness of one pool (ties split evenly)."""
    tally: Counter[str] = Counter(a for a in answers if a is not None)
    if not tally:
        return 0.0
    top = max(tally.values())
    tied = [a for a, n in tally.items() if n == top]
    good = {a for a, ok in zip(answers, correct, strict=True) if ok and a is not None}
    return sum(a in good for a in tied) / len(tied)


def fit(path: Path, min_wrong: int = 3) -> int:
    """Print the fitted dispersion per group and the pooled concentration, and check the
    fitted model's pass@N and majority@N against the recorded ones per group."""
    items = load_samples(path)
    groups: dict[str, list[RecordedItem]] = defaultdict(list)
    for it in items:
        key = it.tier.value if it.tier else it.id.split("/")[0]
        groups[key].append(it)
    print(f"{path}: {len(items)} questions\n")
    print("| group | questions | samples/q | mean p | fitted k | pass@N rec / model | "
          "majority@N rec / model |\n|---|---|---|---|---|---|---|")
    shares: list[float] = []
    wrongs: list[int] = []
    ks: list[float] = []
    fitted: dict[str, tuple[float, float]] = {}
    for key, its in sorted(groups.items()):
        pools = [[s for s in it.samples if not s.greedy] for it in its]
        c = np.array([sum(s.correct for s in p) for p in pools])
        m = np.array([len(p) for p in pools])
        mean, k = fit_dispersion(c, m)
        fitted[key] = (mean, k)
        if 0 < mean < 1 and k < 499:
            ks.append(k)
        for p in pools:
            wrong = Counter(s.answer for s in p if not s.correct and s.answer is not None)
            if sum(wrong.values()) >= min_wrong:
                shares.append(top_wrong_share(wrong))
                wrongs.append(sum(wrong.values()))
    # too few wrong samples to measure the spread: check the model at the default
    alpha = fit_concentration(wrongs, float(np.mean(shares))) if shares else CONCENTRATION
    rng = np.random.default_rng(0)
    for key, its in sorted(groups.items()):
        mean, k = fitted[key]
        pools = [[s for s in it.samples if not s.greedy] for it in its]
        n = min(len(p) for p in pools)
        rec_pass = float(np.mean([any(s.correct for s in p[:n]) for p in pools]))
        rec_vote = float(np.mean([_vote_correct([s.answer for s in p[:n]],
                                                [s.correct for s in p[:n]], rng)
                                  for p in pools]))
        sim_pass, sim_vote = [], []
        for _ in range(2000):
            prob = rng.beta(mean * k, (1 - mean) * k) if 0 < mean < 1 and k > 0 else mean
            ok = rng.random(n) < prob
            w = rng.choice(DISTRACTORS, size=n, p=rng.dirichlet([alpha] * DISTRACTORS))
            answers: list[str | None] = ["right" if o else f"w{x}" for o, x in zip(ok, w,
                                                                                 strict=True)]
            sim_pass.append(bool(ok.any()))
            sim_vote.append(_vote_correct(answers, list(ok), rng))
        shown = f"{k:.2f}" if k < 499 else ">= 500 (not identified)"
        print(f"| {key} | {len(its)} | {n} | {mean:.3f} | {shown} | {rec_pass:.2f} / "
              f"{np.mean(sim_pass):.2f} | {rec_vote:.2f} / {np.mean(sim_vote):.2f} |")
    if ks:
        print(f"\ndispersion k: median {np.median(ks):.2f} over the groups with 0 < p < 1 "
              f"({', '.join(f'{k:.2f}' for k in ks)})")
    if shares:
        print(f"most common wrong answer's share of a question's wrong samples (>= {min_wrong} "
              f"wrong): mean {np.mean(shares):.2f} over {len(shares)} questions; Dirichlet "
              f"concentration over {DISTRACTORS} distractors that matches it: {alpha:.2f}")
    else:
        print(f"no question has {min_wrong} or more wrong samples: concentration not fitted "
              f"(the model check above used the default, {CONCENTRATION})")
    print(json.dumps({"dispersion_median": float(np.median(ks)) if ks else None,
                      "concentration": alpha if shares else None}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--tier-accuracy", type=float, default=0.8)
    ap.add_argument("--p-law", choices=("beta", "band"), default="beta",
                    help="per-question solve probability: the fitted Beta law, or the "
                         "previous version's uniform band per tier")
    ap.add_argument("--dispersion", type=float, default=DISPERSION, help="Beta k = a + b")
    ap.add_argument("--concentration", type=float, default=CONCENTRATION,
                    help="Dirichlet concentration of the wrong answers")
    ap.add_argument("--no-scores", action="store_true", help="no verifier scores")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "simulated-samples.jsonl")
    ap.add_argument("--fit", type=Path, help="fit the shapes on this recorded-samples file")
    ap.add_argument("--fit-local-table", action="store_true",
                    help="fit the shapes on the local model's measured table (LOCAL-MODEL.md)")
    args = ap.parse_args(argv)
    if args.fit is not None:
        return fit(args.fit)
    if args.fit_local_table:
        return fit_local_table()
    items = simulate(args.questions, args.samples, seed=args.seed,
                     tier_accuracy=args.tier_accuracy, law=args.p_law, k=args.dispersion,
                     alpha=args.concentration, scores=not args.no_scores)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_samples(items, args.out)
    print(f"wrote {args.out}: {len(items)} SIMULATED questions x {args.samples} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
