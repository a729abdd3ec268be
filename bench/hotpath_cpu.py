"""Where a request's CPU goes in the serving process: thread CPU time per step of the path.

    python bench/hotpath_cpu.py                    # 2,000 requests at 1 caller
    python bench/hotpath_cpu.py --requests 500 --concurrency 8
    python bench/hotpath_cpu.py --checkout /tmp/before   # the router of another checkout

The setup of `bench/overhead.py` (zero-latency stub upstream, greedy on every tier, the
packaged classifier on distinct prompts, result cache and dollar caps on, embedded Redis). The
router runs in a child process whose steps are wrapped to add up the thread CPU time
(`time.thread_time`) spent inside each: the classifier pass and its parts, planning, the
reservation, the upstream call, the settle, FastAPI's dependency solving. Only the measured
requests count (the child starts counting on SIGUSR1, reports on SIGUSR2).

Last row: the same classifier pass timed in the benchmark's own process, back to back on
prompts of the same form, as `bench/classifier.py` times it; set beside the in-server row, it
shows what the rest of the request path costs the pass (caches the pass finds cold).

Sampling profilers (`bench/hotpath_profile.py`) count a thread preempted by a peer process as
busy, and cProfile inflates code made of many small calls; thread CPU time has neither bias.
Its own: a step that awaits is charged whatever else ran on the loop meanwhile (at one caller,
mostly the previous request's background settle), so async rows are upper bounds, and rows
nest (a step's time includes its sub-steps'). Sync rows (marked `sync`) are exact.

Beside the CPU, each step's wall-clock time per call (median over the measured calls): at one
caller, where the steps of a request follow each other, it shows where the request's latency
goes (waits on Redis and the upstream included), and what a step still costs after another
one overlapped it (`the reservation sent ahead: its answer`, `router.ahead`). With
`--checkout`, the router (and classifier) of another checkout runs under the same wrappers;
steps that checkout lacks are left out of its table (the isolated row stays this checkout's).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.loadgen import load  # noqa: E402
from bench.overhead import POLICY  # noqa: E402
from bench.processes import free_port, start, stop, wait_ready  # noqa: E402

SPENT: defaultdict[str, float] = defaultdict(float)
WALL: defaultdict[str, list[float]] = defaultdict(list)  # wall-clock seconds of each call
ORDER = [  # the table's rows, top to bottom: (label, sync?)
    ("request in the server (RequestContext in -> out)", False),
    ("FastAPI solve_dependencies", False),
    ("FastAPI endpoint call", False),
    ("pipeline.handle (steps 1-8)", False),
    ("  classify + plan", False),
    ("    classify", False),
    ("classifier pass", True),
    ("  single-text pass (classifier.fused)", True),
    ("    word pieces (memoised per word)", True),
    ("    embedding term (pooled rows)", True),
    ("    n-gram term (columns, counts, weights)", True),
    ("    features", True),
    ("    keyword rule", True),
    ("  static table", True),
    ("  hashed n-grams", True),
    ("  heads (tier + task)", True),
    ("plan", True),
    ("  reserve (+ cache probe)", False),
    ("    the reservation sent ahead: its answer", False),
    ("  run the strategy", False),
    ("    upstream POST (aiohttp)", False),
    ("  finish", False),
    ("settle (background)", False),
]


def _timed_async(owner: Any, name: str, label: str) -> None:
    inner = getattr(owner, name)

    @functools.wraps(inner)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        began, wall = time.thread_time(), time.perf_counter()
        try:
            return await inner(*args, **kwargs)
        finally:
            SPENT[label] += time.thread_time() - began
            WALL[label].append(time.perf_counter() - wall)

    setattr(owner, name, timed)


def _timed_sync(owner: Any, name: str, label: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        began, wall = time.thread_time(), time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[label] += time.thread_time() - began
            WALL[label].append(time.perf_counter() - wall)

    setattr(owner, name, timed)


GC_ROWS = [f"cyclic GC, generation {g}" for g in range(3)]


def _watch_gc(default_gc: bool) -> None:
    """Charge the collector's pauses to rows of their own (thread CPU, like the steps), and
    with `default_gc`, serve without `router.app.tune_gc` (no freeze, the default threshold)."""
    import gc

    import router.app

    began = [0.0]

    def pause(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.thread_time()
        else:
            SPENT[GC_ROWS[info["generation"]]] += time.thread_time() - began[0]
            SPENT[f"{GC_ROWS[info['generation']]} (count)"] += 1

    gc.callbacks.append(pause)
    if default_gc:
        router.app.tune_gc = gc.get_threshold


def child(report: Path, default_gc: bool = False, checkout: Path | None = None) -> None:
    """The router, its steps wrapped; SIGUSR1 starts counting, SIGUSR2 writes `report`."""
    if checkout is not None:  # its packages, not this checkout's
        sys.path.insert(0, str(checkout))
    import importlib

    import fastapi.routing

    import classifier.embedding
    import classifier.head
    import classifier.static_embedder
    import router.api.openai
    import router.budgets
    import router.middleware
    import router.pipeline
    import router.planning
    import router.upstreams.json_post
    from router.cli import app

    steps_async = [
        (router.middleware.RequestContext, "__call__",
         "request in the server (RequestContext in -> out)"),
        (router.api.openai, "handle", "pipeline.handle (steps 1-8)"),
        (router.pipeline, "decide", "  classify + plan"),
        (router.planning, "classify", "    classify"),
        (router.pipeline, "reserve", "  reserve (+ cache probe)"),
        (router.pipeline, "run", "  run the strategy"),
        (router.upstreams.json_post.JSONPost, "__call__", "    upstream POST (aiohttp)"),
        (router.pipeline, "finish", "  finish"),
        (router.budgets.Budgets, "settle", "settle (background)"),
        (fastapi.routing, "solve_dependencies", "FastAPI solve_dependencies"),
        (fastapi.routing, "run_endpoint_function", "FastAPI endpoint call"),
    ]
    steps_sync = [
        (classifier.embedding.EmbeddingClassifier, "_score_batch", "classifier pass"),
        (classifier.static_embedder.StaticEmbedder, "encode", "  static table"),
        (classifier.head.Head, "lexical_features", "  hashed n-grams"),
        (classifier.head.Head, "predict_proba", "  heads (tier + task)"),
        (router.planning, "plan", "plan"),
    ]
    try:  # from the eighth pass on
        ahead = importlib.import_module("router.ahead")
        steps_async.append((ahead.Ahead, "take", "    the reservation sent ahead: its answer"))
    except ImportError:
        pass
    try:  # from the ninth pass on (the general pass's rows then count batches only)
        fused = importlib.import_module("classifier.fused")
        steps_sync += [
            (fused.LinearPass, "__call__", "  single-text pass (classifier.fused)"),
            (classifier.static_embedder.StaticEmbedder, "token_ids",
             "    word pieces (memoised per word)"),
            (classifier.static_embedder.StaticEmbedder, "pooled",
             "    embedding term (pooled rows)"),
            (fused.LinearPass, "_lexical", "    n-gram term (columns, counts, weights)"),
            (fused, "feature_row", "    features"),
            (fused, "rule_task", "    keyword rule"),
        ]
    except ImportError:
        pass
    _watch_gc(default_gc)
    for owner, name, label in steps_async:
        _timed_async(owner, name, label)
    for owner, name, label in steps_sync:
        _timed_sync(owner, name, label)
    began = [0.0]

    def reset(*_: Any) -> None:
        SPENT.clear()
        WALL.clear()
        began[0] = time.process_time()

    def write(*_: Any) -> None:
        import gc

        heap = {"gc_tracked": len(gc.get_objects()), "gc_frozen": gc.get_freeze_count()}
        walls = {f"{k} (wall)": statistics.median(v) for k, v in WALL.items() if v}
        calls = {f"{k} (calls)": len(v) for k, v in WALL.items()}
        report.write_text(json.dumps({"process": time.process_time() - began[0], **SPENT,
                                      **heap, **walls, **calls}))

    signal.signal(signal.SIGUSR1, reset)
    signal.signal(signal.SIGUSR2, write)
    sys.argv = ["ttc-router", "serve"]
    app()


def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="ttc-cpu-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stub_port, port = free_port(), free_port()
    stub = f"http://127.0.0.1:{stub_port}"
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.format(stub=stub))
    report = tmp / "report.json"
    router_env = {**env, "TTC_PORT": str(port), "TTC_POLICY_PATH": str(policy),
                  "TTC_DATA_DIR": str(tmp / "data"), "TTC_LOG_LEVEL": "warning",
                  "TTC_REDIS_PREFIX": f"ttc-cpu-{uuid.uuid4().hex[:8]}:"}
    procs = [start([sys.executable, "-m", "bench.stub_upstream", "--port", str(stub_port)], env,
                   tmp / "stub.log")]
    child_cmd = [sys.executable, __file__, "--child", str(report)]
    if args.default_gc:
        child_cmd.append("--default-gc")
    if args.checkout is not None:
        child_cmd += ["--checkout", str(args.checkout.resolve())]
    procs.append(start(child_cmd, router_env, tmp / "router.log"))
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        wait_ready(f"{stub}/v1/models")
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        asyncio.run(load(url, 2, 100, "warm"))
        os.kill(procs[1].pid, signal.SIGUSR1)
        result = asyncio.run(load(url, args.concurrency, args.requests, "cpu"))
        os.kill(procs[1].pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        spent: dict[str, float] = json.loads(report.read_text())
    finally:
        for proc in reversed(procs):
            stop(proc)
    n = max(int(result["requests"]), 1)
    return {"requests": n, "errors": result["errors"], "isolated": isolated_pass(args.requests),
            **{k: v if k.startswith("gc_") or k.endswith("(calls)") else
               v * 1e6 if k.endswith("(wall)") else v * 1e6 / n for k, v in spent.items()}}


def isolated_pass(n: int) -> float:
    """The same classifier pass in this process, back to back on the same kind of distinct
    prompts: what it costs with its tables and memos hot in the CPU's caches."""
    from classifier.embedding import load_classifier

    clf = load_classifier(warmup=True)
    texts = [f"What is the capital of France? (isolated-{i})" for i in range(n + 200)]
    for text in texts[:200]:
        clf._score_batch([text])
    began = time.thread_time()
    for text in texts[200:]:
        clf._score_batch([text])
    return (time.thread_time() - began) * 1e6 / n


def table(rows: dict[str, float], concurrency: int) -> str:
    n = int(rows["requests"])
    lines = [f"thread CPU per request, {n} requests at {concurrency} caller(s), "
             f"{int(rows['errors'])} errors (async rows: upper bounds; rows nest)",
             "| step | kind | CPU us / request | wall us / call, median (calls) |",
             "|---|---|---|---|",
             f"| whole router process (all threads) | process | {rows['process']:.0f} | - |"]
    lines += [f"| {label} | {'sync' if sync else 'async'} | {rows.get(label, 0.0):.0f} | "
              f"{_wall(rows, label)} |" for label, sync in ORDER]
    lines.append(f"| classifier pass, isolated (this process, back to back) | sync | "
                 f"{rows['isolated']:.0f} | - |")
    lines.append(f"| objects the cyclic GC tracks / frozen out of its reach, at the end | count | "
                 f"{rows.get('gc_tracked', 0):.0f} / {rows.get('gc_frozen', 0):.0f} | - |")
    for label in GC_ROWS:
        per_k = rows.get(f"{label} (count)", 0.0) * 1000 / 1e6  # count was scaled per request
        lines.append(f"| {label} ({per_k:.1f} collections / 1,000 requests) | sync | "
                     f"{rows.get(label, 0.0):.0f} | - |")
    return "\n".join(lines)


def _wall(rows: dict[str, float], label: str) -> str:
    calls = rows.get(f"{label} (calls)")
    return f"{rows[f'{label} (wall)']:.0f} ({calls:.0f})" if calls else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--default-gc", action="store_true",
                        help="serve without router.app.tune_gc (no freeze of the start-up "
                             "heap, Python's default young threshold of 700)")
    parser.add_argument("--checkout", type=Path,
                        help="measure the router of this checkout (e.g. a git worktree of an "
                             "earlier commit) instead of this one")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.default_gc, args.checkout)
        return
    print(table(run(args), args.concurrency)
          + ("\n(router.app.tune_gc off: --default-gc)" if args.default_gc else "")
          + (f"\n(the router of {args.checkout})" if args.checkout else ""))


if __name__ == "__main__":
    main()
