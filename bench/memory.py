"""Resident memory of a router serving the embedded model, and what grows with use.

    python bench/memory.py                       # 40 requests, llama.cpp prompt cache as set
    python bench/memory.py --cache-ram-mib 0     # the same with llama.cpp's RAM cache off
    python bench/memory.py --requests 10         # shorter

One process: the app (packaged default policy, packaged classifier, embedded local model) runs
in a server thread of this process, budgets on the Redis at TTC_BENCH_REDIS_URL (default
redis://127.0.0.1:6379/15, a fresh key prefix), so the process's RSS is the router's. Requests
are distinct few-shot prompts of ~300 tokens on `ttc-easy` (greedy, `max_tokens: 4`), so every
one is a cache miss and a new prompt for llama.cpp. Printed: RSS (psutil), the Python heap
traced by tracemalloc, and the top tracemalloc growth between the first and last sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _mb(n: float) -> str:
    return f"{n / 2**20:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--cache-ram-mib", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path(".ttc"))
    args = parser.parse_args()
    tracemalloc.start(1)
    proc = psutil.Process()
    rows: list[tuple[str, float, float]] = []

    def sample(label: str) -> None:
        rows.append((label, proc.memory_info().rss, tracemalloc.get_traced_memory()[0]))

    sample("interpreter")
    from bench.stub_upstream import ServerThread
    from router.app import create_app
    from router.settings import Settings

    extra = {} if args.cache_ram_mib is None else {"local_cache_ram_mib": args.cache_ram_mib}
    # the packaged default policy with a long easy deadline: a loaded machine answers late, and
    # what is measured here is memory, not time
    import yaml

    policy = yaml.safe_load((REPO / "policies" / "default.yaml").read_text())
    policy["tiers"]["easy"]["deadline_s"] = 280
    policy["models"]["local"]["timeout_s"] = 280
    policy_path = args.data_dir / "bench-memory-policy.yaml"
    args.data_dir.mkdir(parents=True, exist_ok=True)
    policy_path.write_text(yaml.safe_dump(policy))
    settings = Settings(
        redis_url=os.environ.get("TTC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
        redis_prefix=f"ttc-bench-mem-{uuid.uuid4().hex[:8]}:",
        data_dir=args.data_dir, log_level="warning", policy_path=policy_path, **extra,
    )
    sample("imports")
    server = ServerThread(create_app(settings))
    server.thread.start()
    deadline = time.monotonic() + 900  # loading the model takes minutes on a loaded machine
    while not server.server.started:
        if not server.thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("router did not start")
        time.sleep(0.1)
    try:
        with httpx.Client(timeout=300) as client:
            sample("started")
            first = tracemalloc.take_snapshot()
            began = time.perf_counter()
            for i in range(1, args.requests + 1):
                shots = "".join(f"Q: What is {i * 7 + k} plus {k + 3}?\nA: {i * 7 + 2 * k + 3}\n"
                                for k in range(20))
                r = client.post(f"{server.url}/v1/chat/completions", json={
                    "model": "ttc-easy", "max_tokens": 4,
                    "messages": [
                        {"role": "user", "content": shots + f"Q: What is {i} plus 1?\nA:"}
                    ],
                })
                r.raise_for_status()
                if i % 10 == 0 or i == args.requests:
                    sample(f"after {i} requests")
            elapsed = time.perf_counter() - began
            last = tracemalloc.take_snapshot()
    finally:
        server.__exit__()
    cache = "llama.cpp default" if args.cache_ram_mib is None else str(args.cache_ram_mib)
    print(f"\nrouter RSS, embedded model, cache_ram_mib={cache}, {args.requests} requests "
          f"in {elapsed:.0f}s, load average {os.getloadavg()[0]:.1f}")
    print(f"| {'phase':<22} | {'RSS MB':>8} | {'py heap MB':>10} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 12}|")
    for label, rss, heap in rows:
        print(f"| {label:<22} | {_mb(rss)} | {_mb(heap):>10} |")
    print("\ntop Python heap growth (tracemalloc, started -> last):")
    for stat in last.compare_to(first, "filename")[:5]:
        print(f"  {stat.size_diff / 2**20:+7.2f} MB  {stat.traceback[0].filename}")


if __name__ == "__main__":
    main()
