"""Difficulty classifier benchmark: backends side by side with the baselines; latency,
throughput and memory per backend.

    .venv/bin/python bench/classifier.py            # full held-out split + MATH-500
    .venv/bin/python bench/classifier.py --quick    # subsampled, fewer timing rounds
    .venv/bin/python bench/classifier.py --artifact A.npz --artifact B.npz

Backends: the packaged artifacts (`classifier/model/combined.npz`, the default, and
`lexical.npz`, the torch-free one) unless `--artifact` is given. Quality is measured through
the serving path (`EmbeddingClassifier.classify`) on the deterministic held-out split of the
mix and on MATH-500; the baselines (length-only, TF-IDF + logistic regression) are trained on
the same train split here. Latency: sequential single-text calls on distinct texts (cache
misses). Throughput: N concurrent callers, each classifying distinct texts one at a time
(micro-batching shares the work). Memory: RSS of a fresh process that loaded the classifier
and classified once.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# run as a script, this file's folder is on sys.path and its name would shadow the
# `classifier` package: the repository root goes first
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from classifier.data import default_data_dir
from classifier.embedding import EmbeddingClassifier, load_classifier
from classifier.evaluation import format_detail, format_metrics_table
from classifier.head import BACKENDS, packaged_artifact
from classifier.train import (
    TrainConfig,
    baseline_length,
    baseline_tfidf,
    build_dataset,
    labels_of,
    score_report,
)

RSS_SCRIPT = """
import asyncio, os, psutil, sys
from classifier.embedding import load_classifier
clf = load_classifier(None, sys.argv[1])
async def main():
    await clf.classify(["What is the capital of France?"])
    await clf.aclose()
asyncio.run(main())
print(int("torch" in sys.modules), psutil.Process(os.getpid()).memory_info().rss)
"""


def _texts(n: int, tag: str) -> list[str]:
    """Distinct realistic queries of mixed length (cache misses by construction)."""
    base = [
        "What is the capital of {}?",
        "A train leaves at {} pm going 60 mph; another leaves an hour later at 80 mph. "
        "When does the second catch up?",
        "Write a Python function that returns the {}-th Fibonacci number modulo 1e9+7.",
        "Let $n={}$. Find the number of ordered pairs $(a,b)$ of positive integers with "
        "$\\operatorname{{lcm}}(a,b)=n$ and $\\gcd(a,b)=1$.",
    ]
    return [f"[{tag}] " + base[i % len(base)].format(i) for i in range(n)]


async def latency(clf: EmbeddingClassifier, n: int) -> dict[str, float]:
    await clf.classify(_texts(4, "warm"))
    times = []
    for t in _texts(n, "lat"):
        start = time.perf_counter()
        await clf.classify([t])
        times.append(time.perf_counter() - start)
    ms = sorted(x * 1000 for x in times)
    start = time.perf_counter()
    await clf.classify([_texts(1, "lat")[0]])  # cached
    return {
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "hit": (time.perf_counter() - start) * 1000,
    }


async def throughput(clf: EmbeddingClassifier, per_caller: int) -> dict[int, tuple[float, float]]:
    """callers -> (queries/s, mean batch)."""
    out = {}
    for callers in (1, 8, 32):
        texts = _texts(callers * per_caller, f"tp{callers}")
        b0, i0 = clf.batcher.batches, clf.batcher.items

        async def caller(k: int, texts: list[str] = texts, step: int = callers) -> None:
            for t in texts[k::step]:
                await clf.classify([t])

        start = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        took = time.perf_counter() - start
        nb, ni = clf.batcher.batches - b0, clf.batcher.items - i0
        out[callers] = (len(texts) / took, ni / max(nb, 1))
    return out


def rss(artifact: Path) -> tuple[float, bool]:
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(artifact)],
        capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    torch, size = out.stdout.strip().splitlines()[-1].split()
    return int(size) / 2**20, torch == "1"


async def measure(
    name: str, artifact: Path, sets: tuple[list[Any], list[Any]] | None, quick: bool
) -> dict[str, Any]:
    start = time.perf_counter()
    clf = load_classifier(None, artifact)
    r: dict[str, Any] = {"load_s": time.perf_counter() - start, "card": clf.head.card}
    if sets is not None:
        test, evals = sets
        start = time.perf_counter()
        scores = await clf.classify([e.text for e in test + evals])
        r["classify_s"] = time.perf_counter() - start
        probs = np.array([s.probabilities for s in scores])
        levels = [e.level for e in evals if e.level is not None]
        r["quality"] = score_report(
            labels_of(test), probs[: len(test)], levels, probs[len(test) :]
        )
    r["latency"] = await latency(clf, 50 if quick else 200)
    r["throughput"] = await throughput(clf, 8 if quick else 24)
    await clf.aclose()
    r["rss_mib"], r["torch"] = rss(artifact)
    print(f"  measured {name}: load {r['load_s']:.1f} s", file=sys.stderr)
    return r


def report(results: dict[str, dict[str, Any]], baselines: dict[str, Any], n: str) -> None:
    if baselines:
        print(f"\n## Quality: {n}")
        rows = {k: r["quality"] for k, r in results.items()} | baselines
        print(format_metrics_table(rows))
        for k, r in results.items():
            print(f"\n{k}:\n" + format_detail(r["quality"]))
    print("\n## Speed and memory (single query = sequential distinct texts; cache hit apart)")
    head = (f"{'backend':<22}{'p50 ms':>8}{'p99 ms':>8}{'hit ms':>8}"
            + "".join(f"{f'q/s @{c}':>10}" for c in (1, 8, 32))
            + f"{'batch@32':>9}{'RSS MiB':>9}{'torch':>7}")
    print(head + "\n" + "-" * len(head))
    for k, r in results.items():
        lat, tp = r["latency"], r["throughput"]
        print(f"{k:<22}{lat['p50']:>8.2f}{lat['p99']:>8.2f}{lat['hit']:>8.3f}"
              + "".join(f"{tp[c][0]:>10.1f}" for c in (1, 8, 32))
              + f"{tp[32][1]:>9.1f}{r['rss_mib']:>9.0f}{'yes' if r['torch'] else 'no':>7}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subsampled quality, fewer rounds")
    ap.add_argument("--data", type=Path, default=None, help="data dir (../shared/data)")
    ap.add_argument("--artifact", type=Path, action="append", default=None,
                    help="artifact(s) to compare (default: the packaged ones)")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    if args.artifact:
        arts = {f"{p.stem}": p for p in args.artifact}
    else:
        arts = {f"{b} ({packaged_artifact(b).name})": packaged_artifact(b) for b in BACKENDS
                if packaged_artifact(b).exists()}
    data = args.data or default_data_dir()
    sets, baselines, n = None, {}, ""
    if not args.skip_quality and data.exists():
        ds = build_dataset(data, TrainConfig())
        test, evals = ds.test, [e for e in ds.eval if e.level is not None]
        if args.quick:
            rng = random.Random(0)
            test, evals = rng.sample(test, min(500, len(test))), rng.sample(evals, 150)
        sets = (test, evals)
        y_tr = labels_of(ds.train)
        levels = [e.level for e in evals if e.level is not None]
        tr, te, ev = ([e.text for e in s] for s in (ds.train, test, evals))
        length, tfidf = baseline_length(tr, y_tr, te, ev), baseline_tfidf(tr, y_tr, te, ev)
        baselines = {
            "length-only LR": score_report(labels_of(test), length[0], levels, length[1]),
            "TF-IDF + LR": score_report(labels_of(test), tfidf[0], levels, tfidf[1]),
        }
        n = f"held-out split n={len(test)}, MATH-500 n={len(evals)} (train n={len(ds.train)})"
    elif not args.skip_quality:
        print(f"\n## Quality: skipped, no data at {data}")
    print(f"# classifier bench ({'quick' if args.quick else 'full'})")
    results = {}
    for name, path in arts.items():
        results[name] = await measure(name, path, sets, args.quick)
    report(results, baselines, n)


if __name__ == "__main__":
    asyncio.run(main())
