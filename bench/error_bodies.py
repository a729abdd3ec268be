"""Router memory under a flood of large request bodies, bad and good, side by side.

    python bench/error_bodies.py                          # this tree
    python bench/error_bodies.py --baseline /tmp/a --baseline /tmp/b   # plus other checkouts

The setup of `bench/overhead.py` (zero-latency stub, greedy everywhere, the packaged
classifier, embedded Redis; one worker, `ttc-router serve`). Each kind of request is sent
`--requests` times by `--concurrency` callers, every router leg in turn, and the table gives the
router process's RSS before, at its peak (sampled every 10 ms) and after. Kinds: `not-json` (a
large body that is not JSON: 400), `bad-field` (valid JSON, large, one field of the wrong type:
400), `valid` (a large prompt: 200). An error path that leaves the request in a reference cycle
holds its body until the garbage collector runs; with Python's default young threshold that is
every 700 new objects, with the router's serving threshold (`router.app.tune_gc`) every 10,000,
unless the request middleware collects after an error answer to a large body, which it does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.overhead import start_router  # noqa: E402
from bench.processes import free_port, start, stop, wait_ready  # noqa: E402


def bodies(size: int) -> dict[str, bytes]:
    prompt = '{"model": "ttc-auto", "max_tokens": 16, "messages": [{"role": "user", "content": "'
    return {
        "not-json": b"{" + b"x" * size,
        "bad-field": (prompt + "y" * size + '"}], "temperature": "hot"}').encode(),
        "valid": (prompt + "y " * (size // 2) + '"}]}').encode(),
    }


async def flood(url: str, body: bytes, total: int, concurrency: int) -> dict[int, int]:
    """`total` posts of `body`; how many got each status."""
    statuses: dict[int, int] = {}
    counter = iter(range(total))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for _ in counter:
                async with session.post(url, data=body,
                                        headers={"content-type": "application/json"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def measure(pid: int, url: str, body: bytes, total: int, concurrency: int) -> dict[str, Any]:
    import psutil

    proc = psutil.Process(pid)
    before = peak = proc.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.01)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        statuses = asyncio.run(flood(url, body, total, concurrency))
    finally:
        done.set()
        watcher.join()
    after = proc.memory_info().rss
    return {"statuses": statuses, "before": before / 2**20, "peak": peak / 2**20,
            "after": after / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size-kib", type=int, default=1024, help="body size (default 1 MiB)")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="add a leg running the router of this checkout (repeatable)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ttc-bodies-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stub_port = free_port()
    stub = f"http://127.0.0.1:{stub_port}"
    procs = [start([sys.executable, "-m", "bench.stub_upstream", "--port", str(stub_port)], env,
                   tmp / "stub.log")]
    legs: dict[str, tuple[Any, str]] = {}
    try:
        legs["ttc-router"] = start_router(stub, tmp, env, 1, None)
        for checkout in args.baseline:
            legs[f"ttc-router ({checkout.name})"] = start_router(stub, tmp, env, 1, None,
                                                                checkout=checkout)
        procs += [proc for proc, _ in legs.values()]
        wait_ready(f"{stub}/v1/models")
        for _, base in legs.values():
            wait_ready(f"{base}/readyz")
        print(f"{args.requests} requests of {args.size_kib} KiB a kind, {args.concurrency} callers")
        print("| kind | leg | statuses | router RSS MiB: before / peak / after |")
        print("|---|---|---|---|")
        for kind, body in bodies(args.size_kib * 1024).items():
            for name, (proc, base) in legs.items():
                m = measure(proc.pid, f"{base}/v1/chat/completions", body, args.requests,
                            args.concurrency)
                codes = ", ".join(f"{k}: {v}" for k, v in sorted(m["statuses"].items()))
                print(f"| {kind} | {name} | {codes} | {m['before']:.0f} / {m['peak']:.0f} / "
                      f"{m['after']:.0f} |", flush=True)
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    main()
