"""Adaptive against uniform test-time compute on a real model: the closed loop.

    python bench/allocation.py            # full run (5 families x 30 train + 30 held-out)
    python bench/allocation.py --train 8 --test 8   # the size measured in docs/benchmarks.md
    python bench/allocation.py --quick    # reduced run (< 60 s), used by the test suite

All on the embedded Gemma 3 270M base model (xllamacpp, raw completions). Task family with
graded difficulty and exact answers: few-shot arithmetic in five shapes (`bench.strategies`
TIERS: 1d+1d, 2d+1d, 2dx1d, 2d+-2d, 2dx2d); the prompt has 8 worked examples of the question's
shape; the classifier sees only the bare question (`47*8`). Steps:

1. Per question, one greedy call (T = 0) and a pool of 16 samples (T = 0.7, one n=16 call);
   held-out questions get a second, independent pool of 8 for their oracle difficulty.
2. Calibrate on the training part (`router.calibrate`): the grid greedy, self-consistency
   N = 4, 8, 16 and best-of-N with an exact checker N = 1, 2, 4, 8, 16; every run is served from
   the question's pool (each N sees the first N samples) and charged what the live call would
   cost. Tiers = the questions' solve rates through the classifier's thresholds. Policy: per
   tier the cheapest configuration within `--target` accuracy of the best (generated tokens).
3. Retrain the classifier on the calibration's solve-rate file (`classifier.train.train`).
4. Held-out: uniform greedy, uniform self-consistency and best-of-N at each N, and the
   calibrated policy with oracle tiers (solve rate on the independent pool) and with tiers
   predicted by the retrained classifier. Accuracy and tokens per question, and the compute
   ratio: generated tokens uniform best-of-N needs (log-linear interpolation between its
   measured N) to match the adaptive policy's accuracy, over what the adaptive policy spends.

Prints the table; writes bench/out/allocation.{json,png} and the calibration report under
bench/out/allocation/. The drawn samples are saved there too (`pools-*.json`): a rerun on the
same questions reuses them (delete them to sample afresh), so a crash after sampling loses none.
The exact checker is integer equality (same verdicts as math_reference on integer answers,
without math-verify's parsing cost).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):
    sys.path.insert(0, str(REPO))

from bench.allocation_pools import (  # noqa: E402
    MAX_TOKENS,
    IntegerChecker,
    IntegerExact,
    PoolGenerator,
    Pools,
    as_int,
    draw,
    load_pools,
    save_pools,
)
from bench.strategies import TIERS as FAMILIES  # noqa: E402
from router.calibrate import (  # noqa: E402
    EvalItem,
    GridConfig,
    Options,
    Record,
    ResultCache,
    StrategyRunner,
    analyse,
    expand,
    run_grid,
    write_outputs,
)
from router.upstreams.base import Capabilities, Message  # noqa: E402
from strategies import Batch, Budget  # noqa: E402
from strategies.answers import extract_answer  # noqa: E402

SAMPLING = {"temperature": 0.7, "stop": ["\n"], "answer_format": "number"}


def grid(ns: Sequence[int]) -> list[GridConfig]:
    sc = [n for n in ns if n >= 4]
    return [
        GridConfig.make("greedy", {"temperature": 0.0, "stop": ["\n"], "answer_format": "number"}),
        *expand("self_consistency", {**SAMPLING, "n": sc, "round_size": 4}),
        *expand("best_of_n", {**SAMPLING, "n": list(ns), "mode": "plain"},
                "math_reference"),
    ]


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
                                  str(a), answer_format="number"))
    return items


async def run_all(items: Sequence[EvalItem], configs: Sequence[GridConfig], pools: Pools,
                  caps: Capabilities) -> list[Record]:
    exact = IntegerExact()
    checker = IntegerChecker()
    budget = Budget(max_tokens_per_sample=MAX_TOKENS, deadline_s=300)

    async def run(config: GridConfig, item: EvalItem, repeat: int) -> Any:
        gen = PoolGenerator(caps, pools.greedy[item.key], pools.sampled[item.key])
        runner = StrategyRunner(gen, lambda name: exact if name else None, budget=budget,
                                checker=checker)
        return await runner(config, item, repeat)

    out = await run_grid(items, configs, run, ResultCache(None), model="local",
                         max_tokens=MAX_TOKENS, concurrency=8)
    if out.errors:
        raise RuntimeError("; ".join(out.errors[:3]))
    return out.records


def oracle_tier(batch: Batch, reference: str, thresholds: tuple[float, float, float]) -> str:
    from classifier.labels import solve_rate_tier

    ref = as_int(reference)
    good = sum(as_int(extract_answer(s.text, "number")) == ref for s in batch.samples)
    return solve_rate_tier(good / max(1, len(batch.samples)), thresholds).value


async def retrain_and_predict(solve_rates: Path, artifact: Path, texts: list[str],
                              thresholds: tuple[float, float, float]) -> tuple[list[str], str]:
    """Retrain the head on the solve-rate file, classify `texts`; falls back to the shipped
    classifier (and says so) when the file cannot train one (e.g. a tier has no example)."""
    from classifier.embedder import SentenceTransformerEmbedder
    from classifier.embedding import EmbeddingClassifier
    from classifier.head import ArtifactError, load_head, packaged_artifact
    from classifier.train import TrainConfig, train

    embedder = SentenceTransformerEmbedder(None)
    try:
        metrics = await asyncio.to_thread(
            train, solve_rates, artifact, embedder, TrainConfig(solve_rate_thresholds=thresholds))
        m = metrics["model"]
        note = (f"retrained on {solve_rates.name}: held-out accuracy {m['accuracy']:.2f}, "
                f"macro-F1 {m['macro_f1']:.2f}, within-one-tier {m['within_one']:.2f}")
        head = load_head(artifact)
    except Exception as exc:  # too few examples per tier, or a classifier module mid-change
        note = (f"NOT retrained ({type(exc).__name__}: {exc}); predicted tiers come from the "
                "shipped combined classifier")
        try:  # the packaged head that uses this embedder
            head = load_head(packaged_artifact("combined"))
        except ArtifactError as missing:
            return ["unknown"] * len(texts), f"{note}, which is missing ({missing}): " \
                "every question gets the policy's all-items choice"
    clf = EmbeddingClassifier(embedder, head)
    try:
        scores = await clf.classify(texts)
    finally:
        await clf.aclose()
    return [s.tier.value for s in scores], note


def arm(name: str, chosen: Sequence[GridConfig], items: Sequence[EvalItem],
        table: dict[tuple[str, str], Record], keys: dict[GridConfig, str]) -> dict[str, Any]:
    rows = [table[(keys[c], it.key)] for c, it in zip(chosen, items, strict=True)]
    n = len(rows)
    return {"arm": name, "accuracy": sum(r.correct for r in rows) / n,
            "tokens": sum(r.tokens for r in rows) / n,
            "generated": sum(r.generated for r in rows) / n, "questions": n}


def tokens_to_match(curve: Sequence[dict[str, Any]], accuracy: float, key: str) -> float | None:
    """Tokens uniform best-of-N needs for `accuracy` (log-linear between measured N)."""
    pts = sorted((p[key], p["accuracy"]) for p in curve)
    if accuracy <= pts[0][1]:
        return float(pts[0][0])
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if y0 < accuracy <= y1:
            f = (accuracy - y0) / (y1 - y0)
            return math.exp(math.log(x0) + f * (math.log(x1) - math.log(x0)))
    return None


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prefix, style in (("best-of-N", "o-"), ("self-consistency", "s-")):
        pts = sorted((r["generated"], r["accuracy"], r["arm"]) for r in rows
                     if r["arm"].startswith(prefix))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"uniform {prefix}")
        for x, y, name in pts:
            ax.annotate(name.split("N=")[-1], (x, y), fontsize=7, xytext=(3, -9),
                        textcoords="offset points")
    for r, marker in zip([r for r in rows if r["arm"].startswith(("greedy", "adaptive"))],
                         ("D", "*", "P"), strict=False):
        ax.plot([r["generated"]], [r["accuracy"]], marker, ms=12, label=r["arm"])
        if r.get("match_generated"):
            ax.plot([r["generated"], r["match_generated"]], [r["accuracy"]] * 2, ":", lw=1,
                    color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per question (log)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_ratio(r: dict[str, Any], key: str) -> str:
    match = r.get(f"match_{key}")
    if match is None:
        return f"> {r[f'bon_max_{key}'] / r[key]:.1f}x (not reached)"
    return f"{match / r[key]:.2f}x"


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (< 60 s)")
    ap.add_argument("--train", type=int, help="training questions per family")
    ap.add_argument("--test", type=int, help="held-out questions per family")
    ap.add_argument("--target", type=float, default=0.02, help="target-mode accuracy slack")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)
    n_train = args.train or (2 if args.quick else 30)
    n_test = args.test or (1 if args.quick else 30)
    ns = [1, 2, 4, 8] if args.quick else [1, 2, 4, 8, 16]
    thresholds = (0.8, 0.5, 0.2)
    stem = "allocation-quick" if args.quick else "allocation"
    outdir = args.out / stem
    train_items, test_items = make_items(n_train, args.seed, "train"), \
        make_items(n_test, args.seed, "test")
    configs = grid(ns)
    keys = {c: c.key("local", MAX_TOKENS) for c in configs}

    from router.upstreams.local import LocalModelConfig, LocalModelServer, LocalUpstream

    t0 = time.monotonic()
    server = LocalModelServer(LocalModelConfig(data_dir=REPO / ".ttc", parallel=16,
                                               ctx_per_slot=512))
    await server.astart()
    upstream = LocalUpstream("local", server, timeout_s=900)  # a loaded machine queues calls
    caps = upstream.capabilities
    try:
        print(f"model up in {time.monotonic() - t0:.1f} s", flush=True)
        cached = [load_pools(outdir / f"pools-{part}.json", its)
                  for part, its in (("train", train_items), ("test", test_items))]
        train_pools = cached[0] or await draw(upstream, train_items, max(ns), 0)
        save_pools(train_pools, outdir / "pools-train.json")
        test_pools = cached[1] or await draw(upstream, test_items, max(ns),
                                             0 if args.quick else 8)
        save_pools(test_pools, outdir / "pools-test.json")
        print(f"sampled {len(train_items) + len(test_items)} questions "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        await upstream.aclose()

    train_records = await run_all(train_items, configs, train_pools, caps)
    opts = Options(target=args.target, metric="generated", tier_from="solve_rate",
                   thresholds=thresholds, max_tokens=MAX_TOKENS)
    from router.calibrate.runner import GridRun

    cal = analyse(train_items, configs, GridRun(train_records), "local", opts)
    paths = write_outputs(cal, train_items, outdir, model="local", opts=opts,
                          title="allocation bench: calibration on the training part",
                          settings=[("task", "few-shot arithmetic, 5 shapes"),
                                    ("samples per question", str(max(ns)))])
    policy = {t: r.target.point.config for t, r in cal.tiers.items() if r.target}
    print(f"calibrated ({time.monotonic() - t0:.0f} s): "
          + ", ".join(f"{t}: {c.label}" for t, c in policy.items()), flush=True)

    predicted, clf_note = await retrain_and_predict(
        paths["solve_rates"], outdir / "head.npz", [it.question for it in test_items], thresholds)
    print(f"classifier {clf_note} ({time.monotonic() - t0:.0f} s)", flush=True)

    test_records = await run_all(test_items, configs, test_pools, caps)
    table = {(r.config, r.item): r for r in test_records}
    oracle = [oracle_tier(test_pools.oracle[it.key], it.reference or "", thresholds)
              for it in test_items]
    fallback = policy["all"]
    rows: list[dict[str, Any]] = []
    for c in configs:
        name = {"greedy": "greedy", "self_consistency": "self-consistency",
                "best_of_n": "best-of-N exact"}[c.strategy]
        suffix = "" if c.strategy == "greedy" else f" N={c.params['n']}"
        rows.append(arm(name + suffix, [c] * len(test_items), test_items, table, keys))
    for label, tiers in (("adaptive, oracle tiers", oracle), ("adaptive, predicted tiers",
                                                             predicted)):
        chosen = [policy.get(t, fallback) for t in tiers]
        rows.append(arm(label, chosen, test_items, table, keys))
    bon = [r for r in rows if r["arm"].startswith("best-of-N")]
    for r in rows:
        if r["arm"].startswith("adaptive"):
            for key in ("generated", "tokens"):
                r[f"match_{key}"] = tokens_to_match(bon, r["accuracy"], key)
                r[f"bon_max_{key}"] = max(b[key] for b in bon)
    report(rows, policy, cal, clf_note, oracle, predicted, test_items, args, t0, paths)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"rows": rows, "policy": {t: c.label for t, c in policy.items()},
         "classifier": clf_note}, indent=1))
    plot(rows, args.out / f"{stem}.png",
         f"Gemma 3 270M, few-shot arithmetic: {len(test_items)} held-out questions")
    print(f"wrote {args.out / (stem + '.png')} and {outdir}/")
    return 0


def report(rows: list[dict[str, Any]], policy: dict[str, GridConfig], cal: Any, clf_note: str,
           oracle: list[str], predicted: list[str], items: Sequence[EvalItem],
           args: argparse.Namespace, t0: float, paths: dict[str, Path]) -> None:
    print("\ncalibrated policy (training part, target mode, cost = generated tokens):")
    for tier, config in policy.items():
        r = cal.tiers[tier]
        print(f"  {tier:10} {r.items:4} questions  {config.label}  "
              f"(acc {r.target.point.accuracy:.2f}, best {r.target.best_accuracy:.2f})")
    print(f"classifier: {clf_note}")
    agree = sum(o == p for o, p in zip(oracle, predicted, strict=True)) / len(items)
    print(f"held-out tiers: oracle {dict(Counter(oracle))}, predicted {dict(Counter(predicted))}, "
          f"agreement {agree:.2f}")
    print("\n| arm | accuracy | tokens/q | generated/q | BoN compute to match (generated) "
          "| (total tokens) |\n|---|---|---|---|---|---|")
    for r in rows:
        ratio = (fmt_ratio(r, "generated"), fmt_ratio(r, "tokens")) \
            if r["arm"].startswith("adaptive") else ("", "")
        print(f"| {r['arm']} | {r['accuracy']:.3f} | {r['tokens']:.1f} | {r['generated']:.1f} "
              f"| {ratio[0]} | {ratio[1]} |")
    print(f"\n{len(items)} held-out questions; total {time.monotonic() - t0:.0f} s. "
          "tokens/q = prompt + completion (one call's n samples share one prompt); "
          "generated/q = completion tokens. Ratio = tokens uniform best-of-N needs to reach "
          "the adaptive arm's accuracy / tokens the adaptive arm spends.")
    print(f"calibration report: {paths['report']}")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
