"""The LLM fallback on the held-out mix: how often it fires and what it changes.

    .venv/bin/python bench/classifier_fallback.py --data ../shared/data --backend static

Classifies the held-out split (the tier split of `bench/classifier.py`) with the serving
backend, sends every text whose confidence is under the policy's threshold to
`classifier.fallback.LLMFallback` on the embedded local model (llama.cpp, the packaged Gemma 3
270M base model, raw few-shot prompt), and prints tier quality before and after, on the whole
split and on the texts it fired on, with the outcomes (agree, disagree, timeout, garbage) and
the calls' latency. Calls run one at a time, as a request would make them. `--timeout` is the
fallback's deadline (the policy default, 1 s, unless given); a call past it keeps the embedding
tier, as in the router.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from classifier.base import TierScores
from classifier.data import default_data_dir
from classifier.embedding import load_classifier
from classifier.evaluation import evaluate
from classifier.fallback import LLMFallback
from classifier.train import TrainConfig, build_dataset, labels_of
from policies.schema import ClassifierPolicy


def _row(name: str, y: list[int], probs: np.ndarray) -> str:
    m = evaluate(y, probs)
    return (f"{name:<34}{m['n']:>6}{m['accuracy']:>10.3f}{m['macro_f1']:>10.3f}"
            f"{m['within_one']:>12.3f}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="data dir (../shared/data)")
    ap.add_argument("--backend", default=None, help="serving backend (default: the default)")
    defaults = ClassifierPolicy()
    ap.add_argument("--threshold", type=float, default=defaults.confidence_threshold)
    ap.add_argument("--timeout", type=float, default=defaults.fallback_timeout_s)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    args = ap.parse_args()

    from router.upstreams.local import LocalModelConfig, LocalModelServer, LocalUpstream

    ds = build_dataset(args.data or default_data_dir(), TrainConfig())
    texts, y = [e.text for e in ds.test], labels_of(ds.test)
    clf = load_classifier(backend=args.backend)
    scores = await clf.classify(texts)
    await clf.aclose()
    unsure = [i for i, s in enumerate(scores) if s.confidence < args.threshold]
    print(f"# LLM fallback on the held-out split: backend {clf.label}, threshold "
          f"{args.threshold}, timeout {args.timeout} s, n={len(texts)}")
    print(f"fires on {len(unsure)} of {len(texts)} ({len(unsure) / len(texts):.1%})")

    server = LocalModelServer(LocalModelConfig(data_dir=Path(".ttc"), parallel=1,
                                               threads=args.threads))
    await server.astart()
    upstream = LocalUpstream("local", server, owns_server=False)
    fallback = LLMFallback(upstream, timeout_s=args.timeout)
    await fallback.refine("warm-up: what is the capital of France?", scores[0])
    refined: dict[int, TierScores] = {}
    seconds = []
    for i in unsure:
        began = time.perf_counter()
        refined[i] = await fallback.refine(texts[i], scores[i])
        seconds.append(time.perf_counter() - began)
    await upstream.aclose()
    server.stop()

    before = np.array([s.probabilities for s in scores])
    after = before.copy()
    outcomes: Counter[str] = Counter()
    for i, r in refined.items():
        after[i] = r.probabilities
        if r.fallback_note:
            outcomes[r.fallback_note] += 1
        else:
            outcomes["agree" if r.tier is scores[i].tier else "disagree"] += 1
    yt = np.asarray(y)
    print(f"outcomes: {dict(outcomes)}; call latency p50 {statistics.median(seconds):.2f} s, "
          f"max {max(seconds):.2f} s")
    answered = [i for i, r in refined.items() if not r.fallback_note]
    if answered:
        said = Counter(refined[i].tier.value for i in answered)
        print(f"tiers the model answered: {dict(said)}")
    print(f"\n{'':<34}{'n':>6}{'accuracy':>10}{'macro_f1':>10}{'within_one':>12}")
    print(_row("held-out, embedding head", y, before))
    print(_row("held-out, with the fallback", y, after))
    if unsure:
        idx = np.asarray(unsure)
        print(_row("fired subset, embedding head", list(yt[idx]), before[idx]))
        print(_row("fired subset, with the fallback", list(yt[idx]), after[idx]))
    changed = sum(int(after[i].argmax() != before[i].argmax()) for i in refined)
    fixed = sum(int(after[i].argmax() == yt[i] != before[i].argmax()) for i in refined)
    broke = sum(int(before[i].argmax() == yt[i] != after[i].argmax()) for i in refined)
    print(f"\ntier changed on {changed} texts: {fixed} now right, {broke} now wrong")


if __name__ == "__main__":
    asyncio.run(main())
