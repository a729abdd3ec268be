"""One "router process" of the multi-process budget test: many concurrent reserve/settle.

    python -m tests.router.budget_worker URL PREFIX CAP_USD REQUESTS SEED

Prints "ready" once imported and connected, fires when a line arrives on stdin (so every
process starts together however long its imports took), then prints JSON: committed
micro-USD and tokens, and counts of ok / rejected / released requests.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from policies.schema import TenantPolicy
from router.budgets import BudgetCapExceeded, Budgets
from router.metrics import Metrics
from router.store import Store, make_client


async def main(url: str, prefix: str, cap: float, requests: int, seed: int) -> dict[str, int]:
    store = Store(make_client(url, max_connections=16, timeout_s=10.0), prefix)
    budgets = Budgets(store, Metrics())
    spec = TenantPolicy(daily_usd=cap, daily_tokens=10**9)
    rng = random.Random(seed)
    out = {"committed_micro": 0, "committed_tokens": 0, "ok": 0, "rejected": 0, "released": 0}

    async def request() -> None:
        estimate = rng.choice([500, 1000, 2000, 5000])  # micro-USD
        try:
            r = await budgets.reserve("shared", spec, estimate / 1e6, 100, 60)
        except BudgetCapExceeded:
            out["rejected"] += 1
            return
        await asyncio.sleep(rng.random() * 0.02)  # "running the strategy"
        if rng.random() < 0.1:  # failed before spending anything
            await budgets.release(r)
            out["released"] += 1
            return
        actual = rng.randint(0, estimate)
        tokens = rng.randint(1, 100)
        await budgets.settle(r, actual / 1e6, tokens, "hard", "best_of_n")
        out["committed_micro"] += actual
        out["committed_tokens"] += tokens
        out["ok"] += 1

    await store.client.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the go signal
    await asyncio.gather(*(request() for _ in range(requests)))
    await store.aclose()
    return out


if __name__ == "__main__":
    url, prefix, cap, n, seed = sys.argv[1:6]
    result = asyncio.run(main(url, prefix, float(cap), int(n), int(seed)))
    print(json.dumps(result))
