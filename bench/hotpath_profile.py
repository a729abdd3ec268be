"""A sampling profile of the router's hot path under load (py-spy), with flame graphs.

    python bench/hotpath_profile.py             # 20 s at 8 callers -> bench/out/profile-*.svg
    python bench/hotpath_profile.py --label after --seconds 30 --concurrency 8
    python bench/hotpath_profile.py --quick     # 4 s
    python bench/hotpath_profile.py --classifier lexical   # as the overhead benchmark's legs

The same setup as `bench/overhead.py` (zero-latency stub upstream, greedy on every tier, the
packaged classifier on distinct prompts, result cache and dollar caps on, embedded Redis unless
`--redis-url`). py-spy attaches to the router process (`--subprocesses` when `--workers` > 1)
while a closed-loop load runs, and writes:

    bench/out/profile-<label>.svg   the flame graph
    bench/out/profile-<label>.txt   collapsed stacks (input of the table below)

and prints the share of busy samples (inclusive) in the router's main areas, so a change to
the hot path shows up as a row that shrinks. Busy: samples of a thread waiting for work (the
event loop in its poll, an idle worker thread) are left out. py-spy counts a thread that
another process preempted as busy, so on a loaded machine socket writes (each wakes a peer)
weigh more than their CPU. py-spy needs ptrace rights (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.loadgen import load  # noqa: E402
from bench.overhead import POLICY  # noqa: E402
from bench.processes import free_port, start, stop, wait_ready  # noqa: E402

OUT = REPO / "bench" / "out"

# Rows of the summary: a label and the frame substrings that count towards it (inclusive).
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP server (uvicorn, h11/httptools)", ("uvicorn/",)),
    ("Starlette/FastAPI routing, middleware", ("starlette/", "fastapi/")),
    ("request parsing + validation (pydantic)", ("router/api/", "pydantic")),
    ("classifier", ("classifier/",)),
    ("planning", ("router/planning.py",)),
    ("budgets + cache (Redis client)", ("router/budgets.py", "router/cache.py", "redis/")),
    ("upstream call (aiohttp; streams: openai SDK)",
     ("router/upstreams/", "aiohttp/", "openai/", "httpx/", "httpcore/")),
    ("  openai request transform", ("_async_transform_recursive", "_transform_recursive")),
    ("  openai response model construction", ("openai/_models.py", "_response.py")),
    ("JSON encode/decode", ("json/", "orjson", "jsonable_encoder")),
    ("logging (structlog)", ("structlog/",)),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("asyncio / event loop", ("asyncio/", "uvloop")),
]


# Leaves where a thread waits for work: the event loop inside uvloop's poll (py-spy shows the
# frame that entered the loop), an idle worker thread. Left out of every share.
IDLE = ("Runner.run (asyncio/runners.py", "_worker (concurrent/futures/thread.py:8",
        "WorkerThread.run (anyio")


def _busy(stack: str) -> bool:
    return not stack.rsplit(";", 1)[-1].startswith(IDLE)


def summarise(collapsed: Path) -> list[tuple[str, float]]:
    """Inclusive share of busy samples per area (a sample counts once per area)."""
    per_area: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not _busy(stack):
            continue
        count = int(count_s)
        total += count
        for label, needles in AREAS:
            if any(n in stack for n in needles):
                per_area[label] += count
    return [(label, per_area[label] / total if total else 0.0) for label, _ in AREAS]


def top_frames(collapsed: Path, n: int = 15) -> list[tuple[str, float]]:
    """Leaf (self-time) frames with the most busy samples."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not _busy(stack):
            continue
        total += int(count_s)
        leaves[stack.rsplit(";", 1)[-1]] += int(count_s)
    return [(frame, c / total) for frame, c in leaves.most_common(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="current")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--redis-url", default=os.environ.get("TTC_REDIS_URL"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--classifier", default=None,
                        help="TTC_CLASSIFIER_BACKEND of the router (as bench/overhead.py)")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="profile the router of another checkout (e.g. main, for a before)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick:
        args.seconds = 4
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        sys.exit("py-spy not found: pip install py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ttc-profile-"))
    stub_port, router_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stub = start([sys.executable, "-m", "bench.stub_upstream", "--port", str(stub_port)],
                 env, tmp / "stub.log")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.format(stub=f"http://127.0.0.1:{stub_port}"))
    router_env = {
        **env, "TTC_PORT": str(router_port), "TTC_POLICY_PATH": str(policy),
        "TTC_DATA_DIR": str(tmp), "TTC_LOG_LEVEL": "warning",
        "TTC_REDIS_PREFIX": f"ttc-profile-{uuid.uuid4().hex[:8]}:",
    }
    if args.redis_url:
        router_env["TTC_REDIS_URL"] = args.redis_url
    if args.classifier:
        router_env["TTC_CLASSIFIER_BACKEND"] = args.classifier
    serve = [sys.executable, "-m", "router.cli", "serve"]
    if args.workers > 1:
        serve += ["--workers", str(args.workers)]
    if args.repo != REPO:
        router_env["PYTHONPATH"] = str(args.repo)
    with (tmp / "router.log").open("wb") as log:
        router = subprocess.Popen(serve, env=router_env, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=args.repo)
    svg = args.out / f"profile-{args.label}.svg"
    raw = args.out / f"profile-{args.label}.txt"
    try:
        wait_ready(f"http://127.0.0.1:{stub_port}/v1/models")
        wait_ready(f"http://127.0.0.1:{router_port}/readyz")
        url = f"http://127.0.0.1:{router_port}/v1/chat/completions"
        asyncio.run(load(url, 2, 40, "warmup"))
        common = [pyspy, "record", "--pid", str(router.pid), "--rate", str(args.rate),
                  "--duration", str(args.seconds), "--nonblocking"]
        if args.workers > 1:
            common.append("--subprocesses")
        spies = [
            subprocess.Popen([*common, "--format", "flamegraph", "-o", str(svg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen([*common, "--format", "raw", "-o", str(raw)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        total = args.concurrency * 2000  # more than the window can serve; cut by the clock
        result = asyncio.run(_timed(url, args.concurrency, total, args.seconds + 1))
        for spy in spies:
            spy.wait(timeout=args.seconds + 60)
    finally:
        stop(router)
        stop(stub)
    print(f"profile of {result['requests']} requests at {args.concurrency} callers "
          f"({result['rps']:.0f} req/s while sampled); flame graph: {svg}")
    print("\n| area (inclusive) | share of busy samples |\n|---|---|")
    for label, share in summarise(raw):
        print(f"| {label} | {share:.1%} |")
    print("\n| leaf frame (self) | share |\n|---|---|")
    for frame, share in top_frames(raw):
        print(f"| `{frame[:110]}` | {share:.1%} |")


async def _timed(url: str, concurrency: int, total: int, seconds: float) -> dict[str, float]:
    out = await load(url, concurrency, total, "p", seconds=seconds)
    return {"requests": out["requests"], "rps": out["rps"]}


if __name__ == "__main__":
    main()
