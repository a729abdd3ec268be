"""Adaptive against uniform test-time compute where a serve-time check pays: the closed loop on
the local model with the request's own check (`answer_check`).

    python bench/allocation_check.py --train 12 --test 12   # the run in docs/benchmarks.md
    python bench/allocation_check.py --task sort --train 8 --test 8   # sorting lists instead
    python bench/allocation_check.py --quick                # reduced run, used by the tests

Task family: factoring on the embedded Gemma 3 270M base model (raw completions; the prompt has
8 worked examples of the question's shape, `91 = 7 x 13` lines, the question as `391 =`). A
composite n has several right answers (12 = 2 x 6 = 3 x 4), so there is no one reference to
compare with; what a right answer is can be stated with the request without knowing it: two
whole numbers above 1 whose product is n. Every request carries that as its check (`ttc.check`,
the `answer_check` verifier):

    import re
    n = 391
    parts = [int(t) for t in re.findall(r"\\d+", answer)]
    assert len(parts) == 2 and min(parts) > 1 and parts[0] * parts[1] == n

Three shapes of graded difficulty: small factors (2-9 times 2-12); one digit times 11-40; both
11-40. `--task sort` sorts 4 one-digit, 6 two-digit or 10 two-digit numbers instead (right: the
same numbers, in order; `bench/check_tasks.py` defines both tasks).
Steps, as in `bench/allocation.py`:

1. Per question one greedy sample (T = 0) and a pool of 8 samples (T = 0.7); held-out
   questions also get an independent pool of 4 for their oracle tier (one n=12 call, split).
   Every sample is scored by the real `answer_check` verifier in the sandbox (one sandbox
   run per question), never against the reference: 1 when the check passes, else 0.
   `correct` is the same predicate computed here, in-process (the run fails if the two ever
   disagree). So best-of-N by the check's score is what the router serves with
   `answer_check`; for this task it equals pass@N, which is what a checkable task buys.
2. The pools become recorded samples (`samples-{train,test}.jsonl`, the format `calibrate
   --samples` replays, with `score`); the grid is replayed from them: greedy, majority vote,
   adaptive-stop and 75%-agreement self-consistency, the agreement cascade, best-of-N by the
   check's score (plain and weighted, with and without `stop_score`).
3. Calibrate on the training part (oracle solve-rate tiers, and tiers predicted by the
   classifier retrained on the training part's solve rates), evaluate held out with 95%
   bootstrap intervals: the compute ratio at matched accuracy against every uniform curve and
   against the same N for everyone.

Writes bench/out/allocation-check.{json,png} and the report under bench/out/allocation-check/;
drawn samples are saved there (`pools-*.json`) and reused by a rerun on the same questions.
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

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # bench/classifier.py must not shadow the package
    sys.path.insert(0, str(REPO))
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from bench.allocation import report, retrain_and_predict, summary_json  # noqa: E402
from bench.allocation_pools import Pools, sample_pools  # noqa: E402
from bench.check_tasks import TASKS, CheckTask  # noqa: E402
from classifier.base import Tier  # noqa: E402
from classifier.labels import solve_rate_tier  # noqa: E402
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
from router.upstreams.base import Message, Upstream, Usage  # noqa: E402
from strategies import Batch, Problem, Sample, UpstreamGenerator  # noqa: E402
from strategies.verifiers.answer_check import build_answer_check  # noqa: E402

THRESHOLDS = (0.8, 0.5, 0.2)


def make_items(task: CheckTask, n_train: int, n_test: int, seed: int
               ) -> tuple[list[EvalItem], list[EvalItem]]:
    """Training and held-out questions of each shape, each prompt with 8 worked examples of
    its shape; no question repeats an example or another question."""
    train: list[EvalItem] = []
    test: list[EvalItem] = []
    sep = task.separator
    for shape, maker in task.shapes.items():
        rng = random.Random(f"{seed}-{shape}")
        shots: dict[str, str] = {}
        while len(shots) < 8:
            q, a = maker(rng)
            shots.setdefault(q, a)
        prefix = "".join(f"{q}{sep} {a}\n" for q, a in shots.items())
        seen = set(shots)
        for split, count, out in (("train", n_train, train), ("test", n_test, test)):
            made = 0
            while made < count:
                q, a = maker(rng)
                if q in seen:
                    continue
                seen.add(q)
                out.append(EvalItem(f"{shape}/{split}{made}", q,
                                    (Message("user", f"{prefix}{q}{sep}"),), a,
                                    answer_format="text", answer_from="first_line"))
                made += 1
    return train, test


async def check_scores(task: CheckTask, items: Sequence[EvalItem], pools: Pools
                       ) -> dict[str, list[float]]:
    """Every sample's score from the real `answer_check` verifier (sandbox), in the order
    greedy, pool, oracle pool; checked against the in-process predicate."""
    verifier = build_answer_check({"timeout_s": 30.0, "cpu_s": 10})
    sem = asyncio.Semaphore(2)

    async def one(it: EvalItem) -> list[float]:
        texts = [s.text for b in (pools.greedy[it.key], pools.sampled[it.key],
                                  pools.oracle[it.key]) for s in b.samples]
        problem = Problem(messages=it.messages, check=task.check_of(it.question))
        async with sem:
            scored = await verifier.score(problem, [[t.strip()] for t in texts])
        scores = [s[0] for s in scored]
        wrong = [t for t, s in zip(texts, scores, strict=True)
                 if (s == 1.0) != task.ok(it.question, t)]
        if wrong:
            raise RuntimeError(f"the sandboxed check disagrees with the predicate on {wrong}")
        return scores

    scores = await asyncio.gather(*(one(it) for it in items))
    return {it.key: s for it, s in zip(items, scores, strict=True)}


def recorded(task: CheckTask, items: Sequence[EvalItem], pools: Pools,
             scores: dict[str, list[float]]) -> list[RecordedItem]:
    out = []
    for it in items:
        samples = [*pools.greedy[it.key].samples[:1], *pools.sampled[it.key].samples]
        rec = tuple(RecordedSample(task.canonical(s.text), task.ok(it.question, s.text), s.tokens,
                                   score=scores[it.key][j], greedy=j == 0)
                    for j, s in enumerate(samples))
        out.append(RecordedItem(it.id, it.question, rec, it.reference,
                                prompt_tokens=pools.sampled[it.key].usage.prompt_tokens))
    return out


def oracle_tier(task: CheckTask, it: EvalItem, pools: Pools) -> Tier:
    batch = pools.oracle[it.key]
    good = sum(task.ok(it.question, s.text) for s in batch.samples)
    return solve_rate_tier(good / max(1, len(batch.samples)), THRESHOLDS)


async def draw(upstream: Upstream, items: Sequence[EvalItem], n: int, oracle: int,
               max_tokens: int) -> Pools:
    """Greedy sample, pool of `n` and (`oracle` > 0) an independent pool of `oracle`, drawn in
    two calls per question (the two pools are one n + oracle call, split: samples of one call
    are independent draws). The pool's usage is what an n-sample call costs."""
    live = UpstreamGenerator(upstream)
    sem = asyncio.Semaphore(2)

    async def one(it: EvalItem) -> tuple[Batch, Batch, Batch]:
        async with sem:
            greedy = await live.sample(it.problem(), 1, temperature=0.0, max_tokens=max_tokens,
                                       stop=("\n",))
            both = await live.sample(it.problem(), n + oracle, temperature=0.7,
                                     max_tokens=max_tokens, stop=("\n",))
        pool, extra = both.samples[:n], both.samples[n:]
        prompt = both.usage.prompt_tokens

        def batch(samples: tuple[Sample, ...]) -> Batch:
            return Batch(samples, Usage(prompt, sum(s.tokens for s in samples), calls=1))

        return greedy, batch(pool), batch(extra) if oracle else batch(pool)

    drawn = await asyncio.gather(*(one(it) for it in items))
    keys = [it.key for it in items]
    return Pools(*({k: d[i] for k, d in zip(keys, drawn, strict=True)} for i in range(3)))


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (6 questions)")
    ap.add_argument("--task", choices=sorted(TASKS), default="factor")
    ap.add_argument("--train", type=int, help="training questions per shape")
    ap.add_argument("--test", type=int, help="held-out questions per shape")
    ap.add_argument("--budget", type=float, help="policy at this many generated tokens/query")
    ap.add_argument("--boots", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-classifier", action="store_true", help="oracle tiers only")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)
    n_train = args.train or (1 if args.quick else 12)
    n_test = args.test or (1 if args.quick else 12)
    pool_n, oracle_n = (4, 2) if args.quick else (8, 4)
    task = TASKS[args.task]
    stem = "allocation-check" + ("" if task.name == "factor" else f"-{task.name}")
    stem += "-quick" if args.quick else ""
    outdir = args.out / stem
    train_items, test_items = make_items(task, n_train, n_test, args.seed)
    t0 = time.monotonic()
    train_pools, test_pools = await sample_pools(
        train_items, test_items, oracle_n, outdir,
        lambda upstream, items, oracle: draw(upstream, items, pool_n, oracle, task.max_tokens))
    print(f"sampled {len(train_items) + len(test_items)} questions "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    scores = {**await check_scores(task, train_items, train_pools),
              **await check_scores(task, test_items, test_pools)}
    print(f"scored every sample with the answer_check verifier in the sandbox "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    rec_train = recorded(task, train_items, train_pools, scores)
    rec_test = recorded(task, test_items, test_pools, scores)
    write_samples(rec_train, outdir / "samples-train.jsonl")
    write_samples(rec_test, outdir / "samples-test.jsonl")
    configs = replay_grid(pool_n, scores=True)
    records, _ = replay([*rec_train, *rec_test], configs, model="local", max_tokens=task.max_tokens,
                        seed=args.seed)
    train_eval = [r.eval_item() for r in rec_train]
    test_eval = [r.eval_item() for r in rec_test]
    opts = Options(budget=args.budget, metric="generated", tier_from="solve_rate",
                   thresholds=THRESHOLDS, max_tokens=task.max_tokens, boots=args.boots)
    run = GridRun(list(records))
    oracle_name = "oracle (solve-rate bins)"
    cals = {oracle_name: analyse(train_eval, configs, run, "local", opts)}
    tiers: dict[str, dict[str, Tier]] = {oracle_name: {
        ev.key: oracle_tier(task, orig, test_pools)
        for ev, orig in zip(test_eval, test_items, strict=True)}}
    clf_note = "not used (--no-classifier)"
    if not args.no_classifier:
        rates = outdir / "solve_rates.jsonl"
        write_solve_rates(cals[oracle_name], train_eval, rates)
        predicted, clf_note = await retrain_and_predict(
            rates, outdir / "head.npz", [it.question for it in train_eval + test_eval])
        if predicted is not None:
            pred = dict(zip([it.key for it in train_eval + test_eval], predicted, strict=True))
            cals["predicted"] = analyse(train_eval, configs, run, "local", opts,
                                        tier_of={it.key: pred[it.key] for it in train_eval})
            tiers["predicted"] = {it.key: pred[it.key] for it in test_eval}
    print(f"classifier {clf_note} ({time.monotonic() - t0:.0f} s)", flush=True)
    keys = {c: c.key("local", task.max_tokens) for c in configs}
    holdout = evaluate_holdout(cals, test_eval, configs, records, keys, tiers, boots=args.boots,
                               seed=args.seed)
    main_source = "predicted" if "predicted" in cals else oracle_name
    ev = Evaluation(cals[main_source], main_source, cals, holdout, len(train_eval),
                    len(test_eval))
    paths = write_outputs(ev, train_eval + test_eval, outdir, model="local", opts=opts,
                          title=f"allocation bench: Gemma 3 270M, {task.name}, the request's check",
                          settings=[("task", f"{task.name}, {len(task.shapes)} shapes; "
                                             "answer_check verifier"),
                                    ("samples per question", f"1 greedy + {pool_n}"),
                                    ("classifier", clf_note)])
    report(ev, clf_note, time.monotonic() - t0, paths)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(summary_json(ev, clf_note), indent=1))
    if "plot" in paths:
        shutil.copy(paths["plot"], args.out / f"{stem}.png")
    print(f"wrote {args.out / (stem + '.json')} and {outdir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
