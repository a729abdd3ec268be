"""Adaptive against uniform test-time compute on a real model: the closed loop.

    python bench/allocation.py --train 16 --test 16   # the run in docs/benchmarks.md
    python bench/allocation.py --quick                # reduced run (< 60 s), used by the tests

All on the embedded Gemma 3 270M base model (xllamacpp, raw completions). Task family with
graded difficulty and exact answers: few-shot arithmetic in five shapes (`bench.strategies`
TIERS: 1d+1d, 2d+1d, 2dx1d, 2d+-2d, 2dx2d); the prompt has 8 worked examples of the question's
shape; the classifier sees only the bare question (`47*8`). Steps:

1. Per question, one greedy call (T = 0) and a pool of 16 samples (T = 0.7, one n=16 call);
   held-out questions get a second, independent pool of 8 for their oracle difficulty. The
   pools are written as a recorded-samples file (`samples-{train,test}.jsonl`, the format
   `ttc-router calibrate --samples` replays): answer = the first line's number, correct =
   integer equality with the reference.
2. Replay the grid (`router.calibrate.replay`: unbiased estimates over subsets of each pool):
   greedy; majority vote, adaptive-stop self-consistency (stop when decided, or at 75%
   agreement) and the agreement cascade at N up to 16 -- selection the router can do when
   serving -- and best-of-N with the exact checker (pass@N: an oracle, shown as the ceiling).
3. Calibrate on the training part: tiers = solve-rate bins (the oracle) and tiers predicted by
   the classifier retrained on the training part's solve rates; the exact allocation frontier
   over serve-time configurations; the knee is the policy (and `--budget` picks another point).
4. Held-out: every uniform curve and both adaptive curves with 95% bootstrap intervals, the
   compute ratio at matched accuracy (generated tokens) with its interval, and where the saving
   comes from (prior tier vs posterior evidence).

Prints the tables; writes bench/out/allocation.{json,png} and the calibration report under
bench/out/allocation/. The drawn samples are saved there too (`pools-*.json`): a rerun on the
same questions reuses them (delete them to sample afresh), so a crash after sampling loses none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))
# nor bench/profile.py the standard library's (torch imports cProfile, which imports profile)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bench.allocation_pools import (  # noqa: E402
    MAX_TOKENS,
    Pools,
    as_int,
    draw,
    sample_pools,
)
from bench.strategies import TIERS as FAMILIES  # noqa: E402
from classifier.base import Tier  # noqa: E402
from router.calibrate import (  # noqa: E402
    EvalItem,
    Evaluation,
    GridRun,
    Options,
    analyse,
    evaluate_holdout,
    write_outputs,
    write_solve_rates,
)
from router.calibrate.replay import replay, replay_grid  # noqa: E402
from router.calibrate.samples import RecordedItem, RecordedSample, write_samples  # noqa: E402
from router.upstreams.base import Message  # noqa: E402
from strategies import Batch  # noqa: E402
from strategies.answers import extract_answer  # noqa: E402

THRESHOLDS = (0.8, 0.5, 0.2)


def make_items(per_family: int, seed: int, split: str) -> list[EvalItem]:
    items: list[EvalItem] = []
    for family, maker in FAMILIES.items():
        shots_rng = random.Random(f"{seed}-{family}-shots")
        shots = [maker(shots_rng) for _ in range(8)]
        prefix = "".join(f"{q}={a}\n" for q, a in shots)
        rng = random.Random(f"{seed}-{family}-{split}")
        seen = {q for q, _ in shots}
        other = random.Random(f"{seed}-{family}-{'test' if split == 'train' else 'train'}")
        seen |= {maker(other)[0] for _ in range(per_family * 3)} if split == "test" else set()
        while sum(it.id.startswith(family) for it in items) < per_family:
            q, a = maker(rng)
            if q in seen:
                continue
            seen.add(q)
            n = sum(it.id.startswith(family) for it in items)
            items.append(EvalItem(f"{family}/{split}{n}", q, (Message("user", prefix + q + "="),),
                                  str(a), answer_format="number", answer_from="first_line"))
    return items


def recorded(items: Sequence[EvalItem], pools: Pools) -> list[RecordedItem]:
    """The pools as recorded samples: the greedy sample flagged, then the sampled pool."""
    out = []
    for it in items:
        ref = as_int(it.reference)
        greedy, pool = pools.greedy[it.key], pools.sampled[it.key]
        samples = []
        for j, s in enumerate((*greedy.samples[:1], *pool.samples)):
            answer = extract_answer(s.text, "first_line:number")
            samples.append(RecordedSample(answer, as_int(answer) == ref and ref is not None,
                                          s.tokens, greedy=j == 0))
        out.append(RecordedItem(it.id, it.question, tuple(samples), it.reference,
                                prompt_tokens=pool.usage.prompt_tokens))
    return out


def oracle_tier(batch: Batch, reference: str) -> Tier:
    from classifier.labels import solve_rate_tier

    ref = as_int(reference)
    good = sum(as_int(extract_answer(s.text, "first_line:number")) == ref for s in batch.samples)
    return solve_rate_tier(good / max(1, len(batch.samples)), THRESHOLDS)


async def retrain_and_predict(solve_rates: Path, artifact: Path, texts: list[str]
                              ) -> tuple[list[Tier] | None, str]:
    """Retrain the head on the solve-rate file and classify `texts` (None when it cannot be
    trained here, e.g. a tier without examples: then there is no predicted-tier curve)."""
    from classifier.embedder import SentenceTransformerEmbedder
    from classifier.embedding import EmbeddingClassifier
    from classifier.head import load_head
    from classifier.train import TrainConfig, train

    embedder = SentenceTransformerEmbedder(None)
    try:
        metrics = await asyncio.to_thread(
            train, solve_rates, artifact, embedder, TrainConfig(solve_rate_thresholds=THRESHOLDS))
        m = metrics["model"]
        note = (f"retrained on {solve_rates.name}: held-out accuracy {m['accuracy']:.2f}, "
                f"macro-F1 {m['macro_f1']:.2f}, within-one-tier {m['within_one']:.2f}")
        head = load_head(artifact)
    except Exception as exc:  # too few examples per tier, or a classifier module mid-change
        return None, f"NOT retrained ({type(exc).__name__}: {exc})"
    clf = EmbeddingClassifier(embedder, head)
    try:
        scores = await clf.classify(texts)
    finally:
        await clf.aclose()
    return [s.tier for s in scores], note


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (< 60 s)")
    ap.add_argument("--train", type=int, help="training questions per family")
    ap.add_argument("--test", type=int, help="held-out questions per family")
    ap.add_argument("--budget", type=float, help="policy at this many generated tokens/query")
    ap.add_argument("--boots", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)
    n_train = args.train or (2 if args.quick else 30)
    n_test = args.test or (2 if args.quick else 30)
    pool_n = 8 if args.quick else 16
    stem = "allocation-quick" if args.quick else "allocation"
    outdir = args.out / stem
    train_items = make_items(n_train, args.seed, "train")
    test_items = make_items(n_test, args.seed, "test")
    t0 = time.monotonic()
    train_pools, test_pools = await sample_pools(
        train_items, test_items, 4 if args.quick else 8, outdir,
        lambda upstream, items, oracle: draw(upstream, items, pool_n, oracle))
    print(f"sampled {len(train_items) + len(test_items)} questions "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    rec_train, rec_test = recorded(train_items, train_pools), recorded(test_items, test_pools)
    write_samples(rec_train, outdir / "samples-train.jsonl")
    write_samples(rec_test, outdir / "samples-test.jsonl")
    configs = replay_grid(pool_n, scores=False)
    records, _ = replay([*rec_train, *rec_test], configs, model="local", max_tokens=MAX_TOKENS,
                        seed=args.seed)
    train_eval = [r.eval_item() for r in rec_train]
    test_eval = [r.eval_item() for r in rec_test]
    opts = Options(budget=args.budget, metric="generated", tier_from="solve_rate",
                   thresholds=THRESHOLDS, max_tokens=MAX_TOKENS, boots=args.boots)
    run = GridRun([r for r in records])
    cals = {"oracle (solve-rate bins)": analyse(train_eval, configs, run, "local", opts)}
    rates = outdir / "solve_rates.jsonl"
    write_solve_rates(cals["oracle (solve-rate bins)"], train_eval, rates)
    predicted, clf_note = await retrain_and_predict(
        rates, outdir / "head.npz", [it.question for it in train_eval + test_eval])
    print(f"classifier {clf_note} ({time.monotonic() - t0:.0f} s)", flush=True)
    tiers: dict[str, dict[str, Tier]] = {"oracle (solve-rate bins)": {
        it.key: oracle_tier(test_pools.oracle[orig.key], orig.reference or "")
        for it, orig in zip(test_eval, test_items, strict=True)}}
    if predicted is not None:
        pred = dict(zip([it.key for it in train_eval + test_eval], predicted, strict=True))
        cals["predicted"] = analyse(train_eval, configs, run, "local", opts,
                                    tier_of={it.key: pred[it.key] for it in train_eval})
        tiers["predicted"] = {it.key: pred[it.key] for it in test_eval}
    keys = {c: c.key("local", MAX_TOKENS) for c in configs}
    holdout = evaluate_holdout(cals, test_eval, configs, records, keys, tiers, boots=args.boots,
                               seed=args.seed)
    main_source = "predicted" if "predicted" in cals else "oracle (solve-rate bins)"
    ev = Evaluation(cals[main_source], main_source, cals, holdout, len(train_eval),
                    len(test_eval))
    paths = write_outputs(ev, train_eval + test_eval, outdir, model="local", opts=opts,
                          title="allocation bench: Gemma 3 270M, few-shot arithmetic",
                          settings=[("task", "few-shot arithmetic, 5 shapes"),
                                    ("samples per question", f"1 greedy + {pool_n}"),
                                    ("classifier", clf_note)])
    report(ev, clf_note, time.monotonic() - t0, paths)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(summary_json(ev, clf_note), indent=1))
    if "plot" in paths:
        shutil.copy(paths["plot"], args.out / f"{stem}.png")
    print(f"wrote {args.out / (stem + '.json')} and {outdir}/")
    return 0


def summary_json(ev: Evaluation, clf_note: str) -> dict[str, Any]:
    h = ev.holdout
    assert h is not None
    return {
        "policy": {t: c.label for t, c in ev.cal.policy.items()},
        "policy_source": ev.source,
        "classifier": clf_note,
        "curves": [{"name": cv.name, "kind": cv.kind, "arms": [
            {"arm": a.name, "accuracy": a.accuracy, "generated": a.cost,
             "accuracy_ci": a.accuracy_ci, "generated_ci": a.cost_ci} for a in cv.arms]}
            for cv in h.curves],
        "ratios": [{"arm": r.name, "accuracy": r.accuracy, "generated": r.cost,
                    "uniform_generated": r.uniform_cost, "ratio": r.value, "ci": r.ci}
                   for r in h.ratios],
        "attribution": {"accuracy": h.attribution_accuracy, "costs": dict(h.attribution)},
    }


def report(ev: Evaluation, clf_note: str, took: float, paths: dict[str, Path]) -> None:
    h = ev.holdout
    assert h is not None
    print(f"\npolicy (calibrated on {ev.calibration_items} training questions, tiers: "
          f"{ev.source}; cost = generated tokens):")
    for tier, config in ev.cal.policy.items():
        print(f"  {tier:10} share {ev.cal.shares[tier]:.2f}  {config.label}")
    print(f"classifier: {clf_note}")
    print(f"\n{h.items} held-out questions, 95% bootstrap intervals ({h.boots} resamples)\n")
    print("| curve | arm | accuracy | 95% CI | generated/q |\n|---|---|---|---|---|")
    for cv in h.curves:
        for a in cv.arms:
            print(f"| {cv.name} | {a.name} | {a.accuracy:.3f} | "
                  f"[{a.accuracy_ci[0]:.3f}, {a.accuracy_ci[1]:.3f}] "
                  f"| {a.cost:.1f} |")
    print("\n| adaptive (chosen point) | accuracy | generated/q | uniform to match | ratio "
          "| 95% CI |\n|---|---|---|---|---|---|")
    for r in h.ratios:
        lo, hi = r.ci
        low, high = "-" if lo is None else f"{lo:.2f}", "not reached" if hi is None else f"{hi:.2f}"
        ci = f"[{low}, {high}]"
        print(f"| {r.name} | {r.accuracy:.3f} | {r.cost:.1f} | "
              f"{'-' if r.uniform_cost is None else f'{r.uniform_cost:.1f}'} | "
              f"{'not reached' if r.value is None else f'{r.value:.2f}x'} | "
              f"{ci} |")
    if h.attribution_accuracy is not None:
        print(f"\ncost to reach {h.attribution_accuracy:.3f} on held-out questions:")
        for name, cost in h.attribution:
            print(f"  {name}: {'not reached' if cost is None else f'{cost:.1f}'}")
    print(f"\ntotal {took:.0f} s; report: {paths['report']}")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
