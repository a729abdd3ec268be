"""SIMULATED recorded samples for `ttc-router calibrate --samples` (no model is called).

    python bench/synthetic_samples.py --questions 1000 --samples 16 --out bench/out/sim.jsonl

Every number it leads to is a property of this simulation, not of any real model: it exists to
show the allocation machinery where extra compute does buy accuracy with serve-time selection
(majority vote, a verifier score that never sees the reference), and to time the replay.

The simulated model: each question has a difficulty tier (easy 40%, medium 30%, hard 20%,
very hard 10% of traffic) and a per-sample success probability drawn from the tier's range
(easy 0.75-0.98, medium 0.4-0.75, hard 0.15-0.45, very hard 0.0-0.1). A wrong sample picks one
of 3-8 distractors with skewed weights, so a majority of samples is right more often than one
sample when p is moderate and less often when p is low. Completion tokens grow with difficulty
(lognormal around 150, 300, 600, 900). The verifier score is a noisy serve-time signal: a
correct sample scores Beta(5, 2), a wrong one Beta(2, 4). The question text carries its tier as
a word ("[easy]"), so a tier label is available the way a classifier's would be: the `tier`
field is the true tier with probability `--tier-accuracy`, else a neighbouring one.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))

from classifier.base import TIERS, Tier  # noqa: E402
from router.calibrate.samples import RecordedItem, RecordedSample, write_samples  # noqa: E402

MIX = {Tier.EASY: 0.4, Tier.MEDIUM: 0.3, Tier.HARD: 0.2, Tier.VERY_HARD: 0.1}
P_RANGE = {Tier.EASY: (0.75, 0.98), Tier.MEDIUM: (0.4, 0.75), Tier.HARD: (0.15, 0.45),
           Tier.VERY_HARD: (0.0, 0.1)}
TOKENS = {Tier.EASY: 150, Tier.MEDIUM: 300, Tier.HARD: 600, Tier.VERY_HARD: 900}


def question(i: int, rng: random.Random, samples: int, tier_accuracy: float) -> RecordedItem:
    tier = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    p = rng.uniform(*P_RANGE[tier])
    distractors = [f"{1000 + i}-{k}" for k in range(rng.randint(3, 8))]
    weights = [rng.random() ** 2 + 0.05 for _ in distractors]
    out = []
    for j in range(samples + 1):  # the first is the greedy sample, the rest the pool
        ok = rng.random() < p
        answer = str(i) if ok else rng.choices(distractors, weights=weights)[0]
        score = rng.betavariate(5, 2) if ok else rng.betavariate(2, 4)
        tokens = max(8, int(rng.lognormvariate(0, 0.35) * TOKENS[tier]))
        out.append(RecordedSample(answer, ok, tokens, round(score, 4), greedy=j == 0))
    label = tier
    if rng.random() > tier_accuracy:
        k = TIERS.index(tier) + rng.choice((-1, 1))
        label = TIERS[min(len(TIERS) - 1, max(0, k))]
    return RecordedItem(f"sim{i}", f"[{tier.value}] simulated question {i}", tuple(out),
                        str(i), label, prompt_tokens=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--tier-accuracy", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "simulated-samples.jsonl")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    items = [question(i, rng, args.samples, args.tier_accuracy) for i in range(args.questions)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_samples(items, args.out)
    print(f"wrote {args.out}: {len(items)} SIMULATED questions x {args.samples} samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
