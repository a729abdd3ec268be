"""3 router processes sharing one Redis, 200 concurrent requests against one tenant cap.

Each OS process runs `tests/router/budget_worker.py`: its own event loop, connection pool and
`Budgets`, all firing their reserve/settle calls at the same instant. This is the race that
read-then-write budget checks lose (spend overshoots the cap). The HTTP-level variant (three
`ttc-router serve` processes) belongs with the API tests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from router.budgets import Budgets
from router.metrics import Metrics
from router.store import Store
from tests.router import store_fixtures as fx

state_redis_url = fx.state_redis_url
store = fx.store

REPO = Path(__file__).resolve().parents[2]
CAP_USD = 0.05


async def test_three_processes_share_one_cap(store: Store, state_redis_url: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.router.budget_worker", state_redis_url, store.prefix,
            str(CAP_USD), str(n), str(seed),
            cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for seed, n in enumerate((67, 67, 66))
    ]
    # every process imports and connects first (a loaded machine can take seconds), then all
    # fire together: a late starter would find the cap spent and reject everything
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.strip() == b"ready", line
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    results = []
    for proc in procs:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()[-2000:]
        results.append(json.loads(stdout.decode().strip().splitlines()[-1]))

    spend = await Budgets(store, Metrics()).spend("shared", "day")
    committed = sum(r["committed_micro"] for r in results)
    assert sum(r["ok"] + r["rejected"] + r["released"] for r in results) == 200
    assert all(r["ok"] for r in results) and sum(r["rejected"] for r in results) > 0
    # Committed spend never exceeds the cap ...
    assert spend["usd"] <= CAP_USD
    # ... and reserved + committed are exactly accounted: every micro-dollar the workers
    # committed is there, and nothing is left reserved.
    assert round(spend["usd"] * 1e6) == committed
    assert spend["tokens"] == sum(r["committed_tokens"] for r in results)
    assert spend["reserved_usd"] == 0 and spend["reserved_tokens"] == 0
    assert spend["by_tier"]["hard"]["requests"] == sum(r["ok"] for r in results)
    # no live reservation is left: only settled ids' tombstones ("=", kept so a retried
    # settle counts nothing twice; reclaimed after 10 minutes)
    held = await store.client.hvals(store.key("b", "{shared}", "resd"))
    assert held and set(held) == {"="}
