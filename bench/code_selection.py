"""Code selection by tests in the sandbox, on the local model and on a scripted upstream.

    python bench/code_selection.py                 # 20 HumanEval + 20 MBPP problems, N = 4
    python bench/code_selection.py --quick         # 3 + 3 problems, N = 4
    python bench/code_selection.py --scripted-only # selection proven on known programs only

Local model (packaged Gemma 3 270M base, raw completions through xllamacpp): the problem's
prompt (signature + docstring) is continued up to the next top-level definition (at most 128
tokens), T = 0.8,
one n=N call per problem. Every sample becomes the program `prompt + completion`. Columns:

- greedy: one T = 0 sample, graded on the full tests;
- best-of-N, vote: best_of_n without a verifier (majority over identical programs);
- best-of-N, visible test: best_of_n with the `code_tests` verifier given only the *first*
  test statement (what a request would carry), graded on the full tests - a fair selector;
- pass@N (oracle ceiling): any of the N samples passes the full tests.

Scripted upstream: each problem's canonical solution plus three broken variants (wrong return,
syntax error, infinite loop), shuffled; best_of_n with the full tests must pick the canonical one.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gzip
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # ahead of bench/ itself, whose strategies.py shadows the package

from router.upstreams.base import Capabilities, Message, Usage  # noqa: E402
from strategies import REGISTRY, Batch, Budget, Generator, Problem, Sample  # noqa: E402
from strategies.sandbox import Sandbox, SandboxLimits  # noqa: E402
from strategies.verifiers.outcome import CodeTests  # noqa: E402

DATA = Path("/work/shared/data/code")
MAX_TOKENS = 128  # per sample: enough for most HumanEval/MBPP bodies
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert"]


@dataclass(frozen=True)
class Task:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical: str

    def problem(self, tests: str) -> Problem:
        return Problem(
            messages=(Message("user", self.prompt),),
            tests=tests,
            entry_point=self.entry_point,
            answer_format="code",
        )

    def visible(self) -> str:
        """The test with only the first assert of `check` kept (what a request would carry)."""
        tree = ast.parse(self.test)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "check":
                first = next((s for s in node.body if isinstance(s, ast.Assert)), None)
                node.body = [first] if first is not None else node.body[:1]
        return ast.unparse(tree)


def load_tasks(n_each: int, seed: int = 0) -> list[Task]:
    rng = random.Random(seed)
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        he = [json.loads(line) for line in f]
    with open(DATA / "mbpp" / "mbpp_sanitized_427_codet.jsonl") as f:
        mb = [json.loads(line) for line in f]
    picked = rng.sample(he, n_each) + rng.sample(mb, n_each)
    return [
        Task(r["task_id"], r["prompt"], r["test"], r["entry_point"], r["canonical_solution"])
        for r in picked
    ]


class PromptedGenerator:
    """Wraps a generator so each sample is the whole program: prompt + completion. A repeated
    sampling call with the same arguments returns the same draw (so the selectors compare the
    same N samples and the model is not asked twice)."""

    def __init__(self, inner: Generator, prompt: str) -> None:
        self.inner = inner
        self.prompt = prompt
        self.capabilities: Capabilities = inner.capabilities
        self.drawn: dict[str, Batch] = {}

    def _full(self, batch: Batch) -> Batch:
        samples = tuple(replace(s, text=self.prompt + s.text) for s in batch.samples)
        return Batch(samples, batch.usage, batch.failed)

    async def sample(self, problem: Problem, n: int, **kw: Any) -> Batch:
        key = repr((n, sorted(kw.items())))
        if key not in self.drawn:  # the same draw serves every selector (compared on equal N)
            self.drawn[key] = self._full(await self.inner.sample(problem, n, **kw))
        return self.drawn[key]

    async def extend(self, problem: Problem, prefix: str, n: int, **kw: Any) -> Batch:
        return self._full(await self.inner.extend(problem, prefix, n, **kw))


class ScriptedPrograms:
    """A generator that hands out fixed programs (known good and known bad), in order."""

    capabilities = Capabilities(chat=False, completions=True, n=True)

    def __init__(self, programs: Sequence[str]) -> None:
        self.programs = list(programs)

    async def sample(self, problem: Problem, n: int, **kw: Any) -> Batch:
        out = tuple(Sample(self.programs[i % len(self.programs)], 10) for i in range(n))
        return Batch(out, Usage(10, 10 * n, calls=1))

    async def extend(self, problem: Problem, prefix: str, n: int, **kw: Any) -> Batch:
        return await self.sample(problem, n)


def broken_variants(task: Task) -> list[str]:
    good = task.prompt + task.canonical
    wrong = task.prompt + "    return None\n"
    syntax = task.prompt + "    return (\n"
    loop = task.prompt + "    while True:\n        pass\n"
    return [good, wrong, syntax, loop]


def checker() -> CodeTests:
    limits = SandboxLimits(timeout_s=5.0, cpu_s=3, memory_mb=512)
    return CodeTests(Sandbox(limits), max_concurrency=2, total_s=60.0)


async def passes(task: Task, text: str, tests: CodeTests) -> bool:
    scores = await tests.score(task.problem(task.test), [[text]])
    return scores[0][0] == 1.0


async def scripted(tasks: list[Task]) -> tuple[int, int, int]:
    """(picked the canonical program, problems used, problems skipped because the dataset's
    canonical solution does not pass its own tests as `prompt + solution`)."""
    tests = checker()
    right = used = 0
    for i, task in enumerate(tasks):
        if not await passes(task, task.prompt + task.canonical, tests):
            continue  # e.g. MBPP solutions indented by one space under a 4-space docstring
        used += 1
        programs = broken_variants(task)
        random.Random(i).shuffle(programs)
        result = await REGISTRY["best_of_n"].run(
            task.problem(task.test), ScriptedPrograms(programs), tests, {"n": 4}, Budget()
        )
        right += result.text == task.prompt + task.canonical
    return right, used, len(tasks) - used


async def local(tasks: list[Task], n: int) -> dict[str, Any]:
    from router.upstreams.local import LocalModelConfig, LocalModelServer, LocalUpstream
    from strategies import UpstreamGenerator

    server = LocalModelServer(LocalModelConfig(parallel=max(n, 4), ctx_per_slot=1536))
    await server.astart()
    # transcript format: the prompt is continued verbatim, and no line stop cuts the body short
    upstream = LocalUpstream("local", server, timeout_s=900, prompt_format="transcript")
    tests = checker()
    rows = {"greedy": 0, "vote": 0, "visible": 0, "oracle": 0}
    tokens = done = 0
    try:
        for task in tasks:
            gen = PromptedGenerator(UpstreamGenerator(upstream), task.prompt)
            full = task.problem(task.test)
            budget = Budget(max_tokens_per_sample=MAX_TOKENS)
            g = await REGISTRY["greedy"].run(
                full, gen, None, {"temperature": 0.0, "stop": STOP}, budget
            )
            rows["greedy"] += await passes(task, g.text, tests)
            params = {"n": n, "temperature": 0.8, "stop": STOP, "seed": 7}
            vote = await REGISTRY["best_of_n"].run(full, gen, None, params, budget)
            rows["vote"] += await passes(task, vote.text, tests)
            # the same N samples (one draw), selected by the visible test only
            seen = await REGISTRY["best_of_n"].run(
                task.problem(task.visible()), gen, tests, params, budget
            )
            rows["visible"] += await passes(task, seen.text, tests)
            oks = [await passes(task, c.text, tests) for c in seen.candidates]
            rows["oracle"] += any(oks)
            tokens += g.usage.total_tokens + vote.usage.total_tokens
            done += 1
            print(f"  [{done}/{len(tasks)}] {task.task_id}: {rows}", flush=True)
    finally:
        await upstream.aclose()
    return {"rows": rows, "problems": len(tasks), "tokens": tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scripted-only", action="store_true")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--each", type=int, default=None, help="problems per dataset")
    args = ap.parse_args()
    each = args.each or (3 if args.quick else 20)
    tasks = load_tasks(each)
    began = time.perf_counter()
    right, used, skipped = asyncio.run(scripted(tasks))
    print(
        "scripted upstream (canonical + 3 broken, shuffled), best_of_n n=4 + code_tests:",
        flush=True,
    )
    print(f"  picked the canonical solution on {right}/{used} problems", end="")
    print(f" ({skipped} skipped: their canonical solution fails as prompt + solution)", flush=True)
    if args.scripted_only:
        return
    res = asyncio.run(local(tasks, args.n))
    k = res["problems"]
    print(f"\nlocal model (Gemma 3 270M base), {each} HumanEval + {each} MBPP, N = {args.n}:")
    print(f"  {'selection':<34} {'solved':>8} {'rate':>6}")
    for key, label in (
        ("greedy", "greedy (T=0)"),
        ("vote", f"best-of-{args.n}, vote (no tests)"),
        ("visible", f"best-of-{args.n}, visible test selects"),
        ("oracle", f"pass@{args.n} (oracle ceiling)"),
    ):
        v = res["rows"][key]
        print(f"  {label:<34} {v:>5}/{k:<2} {v / k:>6.2f}")
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
