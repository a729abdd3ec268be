"""Test-time compute on a real local model: accuracy against token cost, per difficulty.

    python bench/strategies.py            # full run: 5 tiers x 30 problems
    python bench/strategies.py --quick    # 2 tiers x 3 problems, N = 1 and 4

Task family (graded difficulty, exact answers): few-shot arithmetic on the packaged Gemma 3 270M
base model through xllamacpp (raw completions). Each tier has 8 fixed worked examples from the
same tier in the prompt (`47+8=55` lines, so the prefix is shared) and asks `a+b=`; stop at
newline, at most 8 tokens per sample, T = 0.7, top_k = 40.

Per tier: greedy (T = 0, one live call per problem); self-consistency (adaptive majority vote,
rounds of 4) and best-of-N with an exact checker (`math_reference` verifier: does a sample match
the reference) at N = 1, 2, 4, 8, 16, both run through their real `run` on a pool of 16 samples
drawn per problem in one n=16 call (see `PooledGenerator`: every N sees the first N samples, each
call is charged what it would cost live); and, on the two easiest tiers, token-level beam search
and MCTS on live calls (steps of one token, scored by rollout values from the same model: the
share of 3 completions reaching the rollouts' majority answer, no reference used). Tokens are the
run's accounted usage per problem (prompt + completion; one call's n samples share one prompt).
Multi-part arithmetic (`bench/multipart.py`: "a+b, then c+d, then add the two results"):
greedy and self-consistency on worked-chain shots, the whole-answer cascade, the step-level
draft/target strategy and `decompose`, all on live calls; a second table gives the draft and
target roles' tokens (one local model plays both roles: see that module).
Prints a table; writes `bench/out/strategies.png` and `.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):
    sys.path.insert(0, str(REPO))

from bench.multipart import print_roles, run_multi  # noqa: E402
from router.upstreams.base import Message, Upstream, Usage  # noqa: E402
from strategies import (  # noqa: E402
    REGISTRY,
    Batch,
    Budget,
    Generator,
    Problem,
    UpstreamGenerator,
    Verifier,
    build_verifier,
)

T = TypeVar("T")

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


class PooledGenerator:
    """A `Generator` that serves `sample` calls from samples drawn up front for one problem
    (in order, never reusing one), charging each call the pool's prompt tokens plus the served
    samples' tokens: what the same call on the live upstream would have cost. So every N and
    both sampling strategies see the same samples (as in BoN@k evaluation), for the price of one
    n=16 request per problem on these loaded 2 cores."""

    def __init__(self, live: Generator, pool: Batch) -> None:
        self.capabilities = live.capabilities
        self._samples = pool.samples
        self._prompt = pool.usage.prompt_tokens
        self._cursor = 0

    async def sample(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch:
        take = self._samples[self._cursor : self._cursor + n]
        if len(take) < n:
            raise RuntimeError("sample pool exhausted")
        self._cursor += n
        return Batch(take, Usage(self._prompt, sum(s.tokens for s in take), calls=1))

    async def extend(
        self,
        problem: Problem,
        prefix: str,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
    ) -> Batch:
        raise NotImplementedError("pooled samples cannot continue a prefix")


def problem_for(prefix: str, q: str, expected: int) -> Problem:
    return Problem(
        messages=(Message("user", prefix + q + "="),),
        reference=str(expected),
        answer_format="number",
    )


PARAMS = {"temperature": 0.7, "stop": ["\n"], "answer_format": "number"}
BUDGET = Budget(max_tokens_per_sample=8, deadline_s=300.0)


def verifier_for(kind: str, upstream: Upstream) -> Verifier | None:
    def upstream_for(name: str) -> Upstream:
        return upstream

    if kind == "exact":
        return build_verifier("math_reference", {"answer_format": "number"}, upstream_for)
    if kind == "rollout":
        options = {
            "model": "local",
            "k": 3,
            "max_tokens": 4,
            "stop": ["\n"],
            "temperature": 0.7,
            "answer_format": "number",
            "use_reference": False,
        }
        return build_verifier("rollout", options, upstream_for)
    return None


async def run_one(
    arm: Arm, generator: Generator, verifier: Verifier | None, problem: Problem
) -> tuple[bool, int, int]:
    params = {**PARAMS, **arm.params}
    result = await REGISTRY[arm.strategy].run(problem, generator, verifier, params, BUDGET)
    u = result.usage
    return correct(result.answer, int(problem.reference or 0)), u.total_tokens, u.completion_tokens


def summarise(rows: list[tuple[bool, int, int]]) -> dict[str, Any]:
    return {
        "accuracy": sum(r[0] for r in rows) / len(rows),
        "tokens": statistics.fmean(r[1] for r in rows),
        "generated": statistics.fmean(r[2] for r in rows),
        "problems": len(rows),
    }


async def run_tier(
    tier: str,
    upstream: Upstream,
    ns: list[int],
    count: int,
    search_count: int,
    search: bool,
    seed: int,
    concurrency: int = 8,
) -> list[dict[str, Any]]:
    prefix, raw = make_problems(tier, count, seed)
    problems = [problem_for(prefix, q, a) for q, a in raw]
    live = UpstreamGenerator(upstream)
    # the server has 16 slots: n=16 pools go 2 at a time, single greedy calls 8 at a time,
    # step-level searches (several n>1 calls each, plus rollouts) 2 at a time
    sems = {
        "pool": asyncio.Semaphore(2),
        "greedy": asyncio.Semaphore(concurrency),
        "search": asyncio.Semaphore(2),
    }

    async def bounded(kind: str, aw: Awaitable[T]) -> T:
        async with sems[kind]:
            return await aw

    t0 = time.monotonic()
    pools = await asyncio.gather(
        *(
            bounded("pool", live.sample(p, max(ns), temperature=0.7, max_tokens=8, stop=("\n",)))
            for p in problems
        )
    )
    out: list[dict[str, Any]] = []
    for arm in arms(ns, search):
        t1 = time.monotonic()
        verifier = verifier_for(arm.verifier, upstream)
        if arm.strategy == "greedy" or arm.verifier == "rollout":  # live calls
            subset = problems[:search_count] if arm.verifier == "rollout" else problems
            kind = "search" if arm.verifier == "rollout" else "greedy"
            rows = await asyncio.gather(
                *(bounded(kind, run_one(arm, live, verifier, p)) for p in subset)
            )
        else:
            rows = [
                await run_one(arm, PooledGenerator(live, pool), verifier, p)
                for p, pool in zip(problems, pools, strict=True)
            ]
        row = summarise(list(rows))
        row.update(tier=tier, arm=arm.label, n=arm.n, seconds=round(time.monotonic() - t1, 1))
        out.append(row)
        print(
            f"  {tier:7} {arm.label:17} N={arm.n:<3} acc={row['accuracy']:.2f} "
            f"tok/q={row['tokens']:.0f} ({row['seconds']} s)",
            flush=True,
        )
    print(f"  {tier}: {time.monotonic() - t0:.0f} s", flush=True)
    return out


def plot(results: list[dict[str, Any]], tiers: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, len(tiers), figsize=(4 * len(tiers), 3.6), sharey=True)
    axes = axes if len(tiers) > 1 else [axes]
    colours: dict[str, str] = {}
    for ax, tier in zip(axes, tiers, strict=True):
        rows = [r for r in results if r["tier"] == tier]
        for label in dict.fromkeys(r["arm"] for r in rows):
            pts = sorted((r["generated"], r["accuracy"]) for r in rows if r["arm"] == label)
            xs, ys = zip(*pts, strict=True)
            ax.plot(
                xs,
                ys,
                marker="o",
                label=label,
                linestyle="-" if len(pts) > 1 else "none",
                color=colours.setdefault(label, f"C{len(colours)}"),
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(tier)
        ax.set_xlabel("generated tokens per problem")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    fig.legend(
        list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8
    )
    fig.suptitle("Gemma 3 270M (Q4_K_M, xllamacpp), few-shot arithmetic, T=0.7")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced run (< 60 s)")
    ap.add_argument("--problems", type=int, default=None, help="problems per tier")
    ap.add_argument("--search-problems", type=int, default=None, help="problems for beam/MCTS")
    ap.add_argument("--multi-problems", type=int, default=None, help="multi-part problems")
    ap.add_argument("--only-multi", action="store_true", help="only the multi-part rows")
    ap.add_argument("--multi-concurrency", type=int, default=2, help="multi-part problems at once")
    ap.add_argument("--call-timeout", type=float, default=120.0, help="per upstream call (s)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args(argv)
    tiers = [] if args.only_multi else ["1d+1d", "2d+1d"] if args.quick else list(TIERS)
    multi_count = args.multi_problems or (3 if args.quick else 20)
    ns = [1, 4] if args.quick else [1, 2, 4, 8, 16]
    count = args.problems or (3 if args.quick else 30)
    search_count = args.search_problems or (1 if args.quick else 10)

    from router.upstreams.local import LocalModelConfig, LocalModelServer, LocalUpstream

    started = time.monotonic()
    server = LocalModelServer(LocalModelConfig(data_dir=REPO / ".ttc", parallel=16,
                                               ctx_per_slot=512))
    await server.astart()
    upstream = LocalUpstream("local", server, timeout_s=args.call_timeout)
    print(f"model up in {time.monotonic() - started:.1f} s", flush=True)
    results: list[dict[str, Any]] = []
    try:
        for tier in tiers:
            search = tier in SEARCH_TIERS and not (args.quick and tier != tiers[0])
            results += await run_tier(tier, upstream, ns, count, search_count, search, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        done = list(results)

        def save(rows: list[dict[str, Any]]) -> None:  # a long run keeps what it measured
            (args.out / "strategies-partial.json").write_text(json.dumps(done + rows, indent=1))

        results += await run_multi(upstream, multi_count, args.seed, args.multi_concurrency,
                                   save)
    finally:
        await upstream.aclose()

    print(f"\n{'tier':8}{'strategy':18}{'N':>4}{'acc':>7}{'tok/q':>9}{'gen/q':>8}{'probs':>7}")
    for r in results:
        print(
            f"{r['tier']:8}{r['arm']:18}{r['n']:>4}{r['accuracy']:>7.2f}"
            f"{r['tokens']:>9.0f}{r['generated']:>8.1f}{r['problems']:>7}"
        )
    print_roles(results)
    print(
        f"\ntotal {time.monotonic() - started:.0f} s; tok/q = prompt + completion tokens per "
        "problem (n samples of one call share one prompt); gen/q = completion tokens"
    )
    stem = "strategies-quick" if args.quick else "strategies-multi" if args.only_multi else (
        "strategies"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    plot(results, [*tiers, "multi"], args.out / f"{stem}.png")
    print(f"wrote {args.out / (stem + '.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
