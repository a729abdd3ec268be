"""Difficulty classifier benchmark: quality vs baselines, latency, throughput, memory.

    .venv/bin/python bench/classifier.py            # full held-out split + MATH-500
    .venv/bin/python bench/classifier.py --quick    # subsampled, fewer timing rounds

Quality is measured through the serving path (`EmbeddingClassifier.classify`) of the shipped
artifact (or `--artifact`) on the deterministic held-out split of the mix; the baselines
(length-only, TF-IDF + logistic regression) are trained on the same train split here.
Latency: sequential single-text calls on distinct texts (cache misses). Throughput: N
concurrent callers, each classifying distinct texts one at a time (micro-batching shares
forward passes). Memory: RSS of a fresh process that loaded the classifier and classified once.
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

# run as a script, this file's folder is on sys.path and its name would shadow the
# `classifier` package: the repository root goes first
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from classifier.data import default_data_dir
from classifier.embedding import EmbeddingClassifier, load_classifier
from classifier.evaluation import format_detail, format_metrics_table
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
clf = load_classifier(None, sys.argv[1] if len(sys.argv) > 1 else None)
async def main():
    await clf.classify(["What is the capital of France?"])
    await clf.aclose()
asyncio.run(main())
print(psutil.Process(os.getpid()).memory_info().rss)
"""


async def quality(clf: EmbeddingClassifier, data: Path, quick: bool) -> None:
    cap = int(clf.head.card.get("config", {}).get("cap_per_stratum", 300))
    ds = build_dataset(data, TrainConfig(cap_per_stratum=cap))
    test, evals = ds.test, [e for e in ds.eval if e.level is not None]
    if quick:
        rng = random.Random(0)
        test, evals = rng.sample(test, min(500, len(test))), rng.sample(evals, 150)
    start = time.perf_counter()
    scores = await clf.classify([e.text for e in test + evals])
    took = time.perf_counter() - start
    probs = np.array([s.probabilities for s in scores])
    p_te, p_ev = probs[: len(test)], probs[len(test) :]
    y_te, levels = labels_of(test), [e.level for e in evals if e.level is not None]
    tr_text = [e.text for e in ds.train]
    te_text, ev_text = [e.text for e in test], [e.text for e in evals]
    length = baseline_length(tr_text, labels_of(ds.train), te_text, ev_text)
    tfidf = baseline_tfidf(tr_text, labels_of(ds.train), te_text, ev_text)
    rows = {
        "embedding head (shipped)": score_report(y_te, p_te, levels, p_ev),
        "length-only LR": score_report(y_te, length[0], levels, length[1]),
        "TF-IDF + LR": score_report(y_te, tfidf[0], levels, tfidf[1]),
    }
    print(f"\n## Quality: held-out split n={len(test)}, MATH-500 n={len(evals)} "
          f"(train n={len(ds.train)}; classified in {took:.1f} s)")
    print(format_metrics_table(rows))
    print("\nshipped head:\n" + format_detail(rows["embedding head (shipped)"]))


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


async def latency(clf: EmbeddingClassifier, n: int) -> None:
    await clf.classify(_texts(4, "warm"))
    times = []
    for t in _texts(n, "lat"):
        start = time.perf_counter()
        await clf.classify([t])
        times.append(time.perf_counter() - start)
    ms = sorted(x * 1000 for x in times)
    p50, p99 = statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    start = time.perf_counter()
    await clf.classify([_texts(1, "lat")[0]])  # cached
    hit = (time.perf_counter() - start) * 1000
    print(f"\n## Latency, single query, sequential, n={n}")
    print(f"p50 {p50:.2f} ms   p99 {p99:.2f} ms   mean {statistics.fmean(ms):.2f} ms   "
          f"cache hit {hit:.3f} ms")


async def throughput(clf: EmbeddingClassifier, per_caller: int) -> None:
    print("\n## Throughput (distinct texts, micro-batching on)")
    print(f"{'callers':>8}{'queries':>9}{'seconds':>9}{'queries/s':>11}{'batches':>9}"
          f"{'mean batch':>11}")
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
        print(f"{callers:>8}{len(texts):>9}{took:>9.2f}{len(texts) / took:>11.1f}{nb:>9}"
              f"{ni / max(nb, 1):>11.1f}")


def rss(artifact: str | None) -> None:
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, *([artifact] if artifact else [])],
        capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    mib = int(out.stdout.strip().splitlines()[-1]) / 2**20
    print(f"\n## Memory\nRSS of a process with the classifier loaded: {mib:.0f} MiB")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subsampled quality, fewer rounds")
    ap.add_argument("--data", type=Path, default=None, help="data dir (../shared/data)")
    ap.add_argument("--artifact", default=None, help="head artifact (packaged)")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    start = time.perf_counter()
    clf = load_classifier(None, args.artifact)
    print(f"# classifier bench ({'quick' if args.quick else 'full'}); model "
          f"{clf.embedder.name}, head {clf.head.card.get('head')}, "
          f"max_seq_length {clf.head.card.get('max_seq_length')}; "
          f"load + warm-up {time.perf_counter() - start:.1f} s")
    data = args.data or default_data_dir()
    if args.skip_quality:
        pass
    elif data.exists():
        await quality(clf, data, args.quick)
    else:
        print(f"\n## Quality: skipped, no data at {data}")
    await latency(clf, 50 if args.quick else 200)
    await throughput(clf, 8 if args.quick else 24)
    await clf.aclose()
    rss(args.artifact)


if __name__ == "__main__":
    asyncio.run(main())
