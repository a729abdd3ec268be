"""Test-time compute on a real local model: accuracy against token cost, per difficulty.

    python bench/strategies.py            # full run (a few minutes on 2 cores)
    python bench/strategies.py --quick    # reduced run, under a minute

Task family (graded difficulty, exact answers): few-shot arithmetic on the packaged Gemma 3 270M
base model through xllamacpp (raw completions). Each tier has 8 fixed worked examples from the
same tier in the prompt (`47+8=55` lines; the shared prefix stays in the KV cache) and asks
`a+b=`; stop at newline, at most 8 tokens per sample, T = 0.7, top_k = 40.

Per tier: greedy (T = 0); self-consistency (adaptive majority vote, rounds of 4) and best-of-N
with an exact checker (`math_reference` verifier: does any sample match the reference) at
N = 1, 2, 4, 8, 16; and, on the tiers where the model gets anything right, token-level beam
search and MCTS (steps of one token, scored by rollout values from the same model: the share of
3 completions reaching the rollouts' majority answer, no reference used). Every strategy runs
through `strategies.REGISTRY` with its real `run`; tokens are the run's accounted usage (prompt
+ completion) per problem. Prints a table and writes `bench/out/strategies.png` and `.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from router.upstreams.base import Message, Upstream  # noqa: E402
from strategies import (  # noqa: E402
    REGISTRY,
    Budget,
    Problem,
    UpstreamGenerator,
    Verifier,
    build_verifier,
)

Maker = Callable[[random.Random], tuple[str, int]]


def _sum11(r: random.Random) -> tuple[str, int]:
    a, b = r.randint(0, 9), r.randint(0, 9)
    return f"{a}+{b}", a + b


def _sum21(r: random.Random) -> tuple[str, int]:
    a, b = r.randint(10, 99), r.randint(0, 9)
    return f"{a}+{b}", a + b


def _mul21(r: random.Random) -> tuple[str, int]:
    a, b = r.randint(10, 99), r.randint(2, 9)
    return f"{a}*{b}", a * b


def _pm22(r: random.Random) -> tuple[str, int]:
    a, b = r.randint(10, 99), r.randint(10, 99)
    return (f"{a}+{b}", a + b) if r.random() < 0.5 else (f"{a}-{b}", a - b)


def _mul22(r: random.Random) -> tuple[str, int]:
    a, b = r.randint(10, 99), r.randint(10, 99)
    return f"{a}*{b}", a * b


TIERS: dict[str, Maker] = {
    "1d+1d": _sum11,
    "2d+1d": _sum21,
    "2dx1d": _mul21,
    "2d+-2d": _pm22,
    "2dx2d": _mul22,
}
SEARCH_TIERS = ("1d+1d", "2d+1d")  # beam / MCTS only where single samples are right at all


@dataclass(frozen=True)
class Arm:
    label: str
    strategy: str
    n: int
    params: dict[str, Any]
    verifier: str  # "none" | "exact" | "rollout"


def arms(ns: list[int], search: bool) -> list[Arm]:
    out = [Arm("greedy", "greedy", 1, {"temperature": 0.0}, "none")]
    for n in ns:
        out.append(
            Arm(
                "self-consistency", "self_consistency", n, {"n": n, "round_size": min(4, n)}, "none"
            )
        )
    for n in ns:
        out.append(Arm("best-of-N exact", "best_of_n", n, {"n": n, "mode": "plain"}, "exact"))
    if search:
        step = {"step_delimiter": "", "step_max_tokens": 1, "terminal": "stop", "max_depth": 4}
        out.append(
            Arm("beam 2x2", "beam_search", 4, {**step, "width": 2, "expansions": 2}, "rollout")
        )
        out.append(
            Arm("mcts 8 sims", "mcts", 8, {**step, "simulations": 8, "branching": 2}, "rollout")
        )
    return out


def make_problems(tier: str, count: int, seed: int) -> tuple[str, list[tuple[str, int]]]:
    r = random.Random(f"{seed}-{tier}")
    shots = [TIERS[tier](r) for _ in range(8)]
    prefix = "".join(f"{q}={a}\n" for q, a in shots)
    return prefix, [TIERS[tier](r) for _ in range(count)]


def correct(answer: str | None, expected: int) -> bool:
    try:
        return answer is not None and int(answer.strip()) == expected
    except ValueError:
        return False


async def run_arm(
    arm: Arm,
    upstream: Upstream,
    prefix: str,
    problems: list[tuple[str, int]],
    concurrency: int,
) -> dict[str, Any]:
    def upstream_for(name: str) -> Upstream:
        return upstream

    verifier: Verifier | None = None
    if arm.verifier == "exact":
        verifier = build_verifier("math_reference", {"answer_format": "number"}, upstream_for)
    elif arm.verifier == "rollout":
        options = {
            "model": "local",
            "k": 3,
            "max_tokens": 4,
            "stop": ["\n"],
            "temperature": 0.7,
            "answer_format": "number",
            "use_reference": False,
        }
        verifier = build_verifier("rollout", options, upstream_for)
    generator = UpstreamGenerator(upstream)
    params = {"temperature": 0.7, "stop": ["\n"], "answer_format": "number", **arm.params}
    budget = Budget(max_tokens_per_sample=8, deadline_s=120.0)
    sem = asyncio.Semaphore(concurrency)

    async def one(q: str, expected: int) -> tuple[bool, int, int]:
        problem = Problem(
            messages=(Message("user", prefix + q + "="),),
            reference=str(expected),
            answer_format="number",
        )
        async with sem:
            result = await REGISTRY[arm.strategy].run(problem, generator, verifier, params, budget)
        u = result.usage
        return correct(result.answer, expected), u.total_tokens, u.completion_tokens

    rows = await asyncio.gather(*(one(q, a) for q, a in problems))
    return {
        "accuracy": sum(r[0] for r in rows) / len(rows),
        "tokens": statistics.fmean(r[1] for r in rows),
        "generated": statistics.fmean(r[2] for r in rows),
    }


def plot(results: list[dict[str, Any]], tiers: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tiers), figsize=(4 * len(tiers), 3.6), sharey=True)
    axes = axes if len(tiers) > 1 else [axes]
    for ax, tier in zip(axes, tiers, strict=True):
        rows = [r for r in results if r["tier"] == tier]
        for label in dict.fromkeys(r["arm"] for r in rows):
            pts = sorted((r["tokens"], r["accuracy"]) for r in rows if r["arm"] == label)
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=label, linestyle="-" if len(pts) > 1 else "none")
        ax.set_xscale("log")
        ax.set_title(tier)
        ax.set_xlabel("tokens per problem (prompt + completion)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Gemma 3 270M (Q4_K_M, xllamacpp), few-shot arithmetic, T=0.7")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (< 60 s)")
    ap.add_argument("--problems", type=int, default=None, help="problems per tier")
    ap.add_argument("--search-problems", type=int, default=None, help="problems for beam/MCTS")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)
    tiers = ["1d+1d", "2d+1d"] if args.quick else list(TIERS)
    ns = [1, 4] if args.quick else [1, 2, 4, 8, 16]
    count = args.problems or (3 if args.quick else 30)
    search_count = args.search_problems or (1 if args.quick else 10)

    from router.upstreams.local import LocalModelConfig, start_local_upstream

    started = time.monotonic()
    upstream = await start_local_upstream(
        LocalModelConfig(data_dir=REPO / ".ttc", parallel=16, ctx_per_slot=512)
    )
    print(f"model up in {time.monotonic() - started:.1f} s", flush=True)
    results: list[dict[str, Any]] = []
    try:
        for tier in tiers:
            prefix, problems = make_problems(tier, count, args.seed)
            search = tier in SEARCH_TIERS and not (args.quick and tier != tiers[0])
            for arm in arms(ns, search):
                subset = problems[:search_count] if arm.verifier == "rollout" else problems
                t0 = time.monotonic()
                row = await run_arm(arm, upstream, prefix, subset, concurrency=8)
                row.update(
                    tier=tier,
                    arm=arm.label,
                    n=arm.n,
                    problems=len(subset),
                    seconds=round(time.monotonic() - t0, 1),
                )
                results.append(row)
                print(
                    f"  {tier:7} {arm.label:17} N={arm.n:<3} acc={row['accuracy']:.2f} "
                    f"tok/q={row['tokens']:.0f} ({row['seconds']} s)",
                    flush=True,
                )
    finally:
        await upstream.aclose()

    print(f"\n{'tier':8}{'strategy':18}{'N':>4}{'acc':>7}{'tok/q':>9}{'gen/q':>8}{'probs':>7}")
    for r in results:
        print(
            f"{r['tier']:8}{r['arm']:18}{r['n']:>4}{r['accuracy']:>7.2f}"
            f"{r['tokens']:>9.0f}{r['generated']:>8.1f}{r['problems']:>7}"
        )
    print(
        f"\ntotal {time.monotonic() - started:.0f} s; tok/q = prompt + completion tokens per "
        "problem (n samples of one call share one prompt); gen/q = completion tokens"
    )
    stem = "strategies-quick" if args.quick else "strategies"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    plot(results, tiers, args.out / f"{stem}.png")
    print(f"wrote {args.out / (stem + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
