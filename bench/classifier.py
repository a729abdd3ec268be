"""Difficulty classifier benchmark: serving backends side by side with the baselines -- quality
(pooled, per source, per task type), latency, throughput, memory and cold start.

    .venv/bin/python bench/classifier.py                   # every backend, full held-out split
    .venv/bin/python bench/classifier.py --quick           # subsampled, fewer timing rounds
    .venv/bin/python bench/classifier.py --backend static --backend lexical

Backends (`classifier.head.BACKENDS`): lexical (hashed n-grams, no model), combined (MiniLM
through torch), onnx (the same head, MiniLM fp32 through onnxruntime), onnx-int8 (int8 graph,
head trained on its vectors), static (token table distilled from MiniLM + n-grams, numpy
only). Quality goes through the serving path (`classify`, the rules of
`classifier.rules` included) on the deterministic held-out split of the mix and on MATH-500;
the baselines (length-only, TF-IDF + logistic regression, and for task type TF-IDF + LR) are
trained on the same train split here. Latency: sequential single-text calls on distinct texts
(cache misses). Throughput: N concurrent callers, one distinct text per call (micro-batching
shares the work). RSS: a fresh process that imported the router app, loaded the classifier and
classified once. Cold start: that process's import + load + first answer, wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

# run as a script, this file's folder is on sys.path and its name would shadow the
# `classifier` package: the repository root goes first
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from classifier.data import Example, default_data_dir
from classifier.embedding import EmbeddingClassifier, load_classifier
from classifier.evaluation import evaluate, format_metrics_table
from classifier.head import BACKENDS, DEFAULT_BACKEND
from classifier.labels import CATEGORY_TASKS, SOURCE_TASKS, TASKS
from classifier.task_train import TaskExample, task_examples, task_metrics, task_split
from classifier.train import (
    TrainConfig,
    baseline_length,
    baseline_tfidf,
    build_dataset,
    labels_of,
    score_report,
)

REPO = Path(__file__).resolve().parent.parent
SEARCH_FREE = ("creative", "chat")  # tasks the default policy must never send to search
RSS_SCRIPT = """
import asyncio, os, sys, time
began = time.perf_counter()
import psutil
import router.app  # the service's imports, as a router process has them
from classifier.embedding import load_classifier
clf = load_classifier(backend=sys.argv[1])
async def main():
    await clf.classify(["What is the capital of France?"])
    await clf.aclose()
asyncio.run(main())
cold = time.perf_counter() - began
print(int("torch" in sys.modules), psutil.Process(os.getpid()).memory_info().rss, cold)
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
    """Wall-clock p50/p99 and CPU ms per query (process CPU time: all threads, less sensitive
    to other load on a shared machine than wall time)."""
    await clf.classify(_texts(4, "warm"))
    times = []
    cpu = time.process_time()
    for t in _texts(n, "lat"):
        start = time.perf_counter()
        await clf.classify([t])
        times.append(time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) * 1000 / n
    ms = sorted(x * 1000 for x in times)
    return {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
            "cpu_ms": cpu_ms}


async def throughput(clf: EmbeddingClassifier, per_caller: int) -> dict[int, float]:
    """callers -> queries/s."""
    out = {}
    for callers in (1, 32):
        texts = _texts(callers * per_caller, f"tp{callers}")

        async def caller(k: int, texts: list[str] = texts, step: int = callers) -> None:
            for t in texts[k::step]:
                await clf.classify([t])

        start = time.perf_counter()
        await asyncio.gather(*(caller(k) for k in range(callers)))
        out[callers] = len(texts) / (time.perf_counter() - start)
    return out


def rss(backend: str) -> tuple[float, bool, float]:
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, backend], capture_output=True,
                         text=True, check=True, cwd=REPO)
    torch, size, cold = out.stdout.strip().splitlines()[-1].split()
    return int(size) / 2**20, torch == "1", float(cold)


def per_source(test: list[Example], probs: Any) -> dict[str, dict[str, float]]:
    by: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(test):
        by[e.source].append(i)
    out = {}
    for src, idx in sorted(by.items()):
        m = evaluate([test[i].tier.rank for i in idx], probs[idx])
        out[src] = {"n": len(idx), "within_one": m["within_one"], "accuracy": m["accuracy"]}
    return out


def spearmen(test: list[Example], probs: Any, data: Path) -> dict[str, float]:
    """Spearman of the expected tier with Omni-MATH difficulty and LeetCode E/M/H (held-out)."""
    from scipy.stats import spearmanr

    omni = {}
    with (data / "competition_math/omni_math_rule_2821.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            omni[row["problem"].strip()] = float(row["difficulty"])
    expected = probs @ np.arange(probs.shape[1])
    out = {}
    pairs = [(omni[e.text], x) for e, x in zip(test, expected, strict=True) if e.text in omni]
    if len(pairs) > 2:
        out["omni"] = float(spearmanr(*zip(*pairs, strict=True)).statistic)
    lc = {"leetcode/easy": 0, "leetcode/medium": 1, "leetcode/hard": 2}
    pairs = [(lc[e.stratum], x) for e, x in zip(test, expected, strict=True) if e.stratum in lc]
    if len(pairs) > 2:
        out["leetcode"] = float(spearmanr(*zip(*pairs, strict=True)).statistic)
    return out


def by_label_kind(tasks_test: list[TaskExample], scores: list[Any]) -> dict[str, tuple[float, int]]:
    """Task accuracy on rows labelled by their source or category (maths, code, factual
    sources; MT-bench and Vicuna categories) and on rows labelled by the keyword rules
    (`classifier.labels.TASK_RULES`: the instruction sources), which a head that reads the
    rules' verdict partly reproduces by construction."""
    out = {}
    for kind in ("source/category", "keyword rules"):
        hits = [s.task == t.task for t, s in zip(tasks_test, scores, strict=True)
                if (t.source in SOURCE_TASKS or t.source in CATEGORY_TASKS)
                == (kind == "source/category")]
        out[kind] = (sum(hits) / max(len(hits), 1), len(hits))
    return out


def search_leaks(tasks_test: list[TaskExample], scores: list[Any]) -> tuple[int, int]:
    """(writing/chat prompts of the held-out task split the default policy plans with more than
    one sample, how many such prompts there are)."""
    from policies.loader import load_policy
    from router.overrides import effective_plan

    policy = load_policy(None).policy
    n = leaks = 0
    for t, s in zip(tasks_test, scores, strict=True):
        if t.task in SEARCH_FREE:
            n += 1
            tp, _ = effective_plan(policy, s.tier, None, s)
            leaks += tp.strategy != "greedy"
    return leaks, n


async def measure(backend: str, sets: dict[str, Any] | None, quick: bool) -> dict[str, Any]:
    start = time.perf_counter()
    clf = load_classifier(backend=backend)
    r: dict[str, Any] = {"load_s": time.perf_counter() - start, "label": clf.label}
    if sets is not None:
        test, evals, ttest = sets["test"], sets["evals"], sets["task_test"]
        scores = await clf.classify([e.text for e in test + evals])
        probs = np.array([s.probabilities for s in scores])
        levels = [e.level for e in evals if e.level is not None]
        r["quality"] = score_report(labels_of(test), probs[: len(test)], levels,
                                    probs[len(test):])
        r["per_source"] = per_source(test, probs[: len(test)])
        r["spearman"] = spearmen(test, probs[: len(test)], sets["data"])
        r["rules"] = sum("+rule:" in s.source for s in scores)
        if clf.task_head is not None:
            tscores = await clf.classify([t.text for t in ttest])
            tp = np.zeros((len(ttest), len(TASKS)), np.float32)
            for i, s in enumerate(tscores):
                tp[i, TASKS.index(s.task)] = 1.0
            r["task"] = task_metrics([TASKS.index(t.task) for t in ttest], tp,
                                     [t.source for t in ttest])
            r["task_by_label_kind"] = by_label_kind(ttest, tscores)
            r["search_leaks"] = search_leaks(ttest, tscores)
    r["latency"] = await latency(clf, 50 if quick else 200)
    r["throughput"] = await throughput(clf, 8 if quick else 24)
    await clf.aclose()
    r["rss_mib"], r["torch"], r["cold_s"] = rss(backend)
    print(f"  measured {backend}: load {r['load_s']:.1f} s", file=sys.stderr)
    return r


def task_baselines(train: list[TaskExample], test: list[TaskExample]) -> dict[str, Any]:
    y = [TASKS.index(t.task) for t in train]
    probs = baseline_tfidf([t.text for t in train], y, [t.text for t in test])[0]
    full = np.zeros((len(test), len(TASKS)), np.float32)
    full[:, sorted(set(y))] = probs  # the LR's columns are the classes seen in training
    return {"TF-IDF + LR": task_metrics([TASKS.index(t.task) for t in test], full,
                                        [t.source for t in test])}


def report(results: dict[str, dict[str, Any]], base: dict[str, Any], tbase: dict[str, Any],
           n: str) -> None:
    if base:
        print(f"\n## Tier quality: {n}")
        print(format_metrics_table({k: r["quality"] for k, r in results.items()} | base))
        sources = sorted({s for r in results.values() for s in r["per_source"]})
        print("\n### Per source: accuracy / within-one (n)")
        print(f"{'source':<22}" + "".join(f"{k:>20}" for k in results))
        for s in sources:
            cells = []
            for r in results.values():
                v = r["per_source"].get(s)
                cells.append(f"{v['accuracy']:.3f} / {v['within_one']:.3f} ({v['n']})"
                             if v else "-")
            print(f"{s:<22}" + "".join(f"{c:>20}" for c in cells))
        print("\n### Spearman(expected tier, label) within a source; rules fired")
        for k, r in results.items():
            sp = r["spearman"]
            print(f"{k:<12} MATH-500 {r['quality'].get('math500_spearman', float('nan')):.3f}  "
                  f"Omni-MATH {sp.get('omni', float('nan')):.3f}  "
                  f"LeetCode {sp.get('leetcode', float('nan')):.3f}  rules {r['rules']}")
        print("\n## Task type (held-out task split)")
        rows = {k: r["task"] for k, r in results.items() if "task" in r} | tbase
        print(f"{'model':<14}{'macro-F1':>9}{'acc':>7}" + "".join(f"{t:>9}" for t in TASKS))
        for k, m in rows.items():
            print(f"{k:<14}{m['macro_f1']:>9.3f}{m['accuracy']:>7.3f}"
                  + "".join(f"{m['per_task'][t]['f1']:>9.3f}" for t in TASKS))
        print(f"{'n':<30}" + "".join(
            f"{v['support']:>9}" for v in next(iter(rows.values()))["per_task"].values()))
        for k, r in results.items():
            kinds = r.get("task_by_label_kind", {})
            if kinds:
                print(f"{k}: task accuracy on rows labelled by " + ", ".join(
                    f"{kind} {acc:.3f} (n={n})" for kind, (acc, n) in kinds.items()))
        for k, r in results.items():
            if "search_leaks" in r:
                leaks, total = r["search_leaks"]
                print(f"{k}: writing/chat prompts planned with search by the default policy: "
                      f"{leaks} of {total}")
        best = max((k for k in results if "task" in results[k]),
                   key=lambda k: results[k]["task"]["macro_f1"], default=None)
        if best:
            print(f"\nconfusion of {best} (rows true, cols predicted): " + " ".join(TASKS))
            for t, row in zip(TASKS, results[best]["task"]["confusion"], strict=True):
                print(f"  {t:<9}" + "".join(f"{c:>6}" for c in row))
    print("\n## Speed and memory (single query = sequential distinct texts)")
    head = (f"{'backend':<12}{'p50 ms':>8}{'p99 ms':>8}{'CPU ms':>8}{'q/s @1':>9}{'q/s @32':>9}"
            f"{'RSS MiB':>9}{'cold s':>8}{'torch':>7}")
    print(head + "\n" + "-" * len(head))
    for k, r in results.items():
        lat, tp = r["latency"], r["throughput"]
        print(f"{k:<12}{lat['p50']:>8.2f}{lat['p99']:>8.2f}{lat['cpu_ms']:>8.2f}"
              f"{tp[1]:>9.1f}{tp[32]:>9.1f}"
              f"{r['rss_mib']:>9.0f}{r['cold_s']:>8.1f}{'yes' if r['torch'] else 'no':>7}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subsampled quality, fewer rounds")
    ap.add_argument("--data", type=Path, default=None, help="data dir (../shared/data)")
    ap.add_argument("--backend", action="append", default=None, choices=sorted(BACKENDS),
                    help=f"backend(s) to compare (default: all; default backend "
                         f"{DEFAULT_BACKEND})")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    backends = args.backend or ["lexical", "static", "combined", "onnx", "onnx-int8"]
    data = args.data or default_data_dir()
    sets, base, tbase, n = None, {}, {}, ""
    if not args.skip_quality and data.exists():
        ds = build_dataset(data, TrainConfig())
        test, evals = ds.test, [e for e in ds.eval if e.level is not None]
        ttrain, ttest = task_split(task_examples(data))
        if args.quick:
            rng = random.Random(0)
            test, evals = rng.sample(test, min(500, len(test))), rng.sample(evals, 150)
        y_tr = labels_of(ds.train)
        levels = [e.level for e in evals if e.level is not None]
        tr, te, ev = ([e.text for e in s] for s in (ds.train, test, evals))
        length, tfidf = baseline_length(tr, y_tr, te, ev), baseline_tfidf(tr, y_tr, te, ev)
        base = {
            "length-only LR": score_report(labels_of(test), length[0], levels, length[1]),
            "TF-IDF + LR": score_report(labels_of(test), tfidf[0], levels, tfidf[1]),
        }
        tbase = task_baselines(ttrain, ttest)
        sets = {"test": test, "evals": evals, "task_test": ttest, "data": data}
        n = (f"held-out split n={len(test)}, MATH-500 n={len(evals)} (train n={len(ds.train)}); "
             f"task split n={len(ttest)} (train n={len(ttrain)})")
    elif not args.skip_quality:
        print(f"\n## Quality: skipped, no data at {data}")
    print(f"# classifier bench ({'quick' if args.quick else 'full'})")
    results = {b: await measure(b, sets, args.quick) for b in backends}
    report(results, base, tbase, n)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
