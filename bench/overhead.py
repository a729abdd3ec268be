"""Router overhead against a zero-latency OpenAI-compatible stub, side by side in one run.

    python bench/overhead.py                # legs (a) and (b)
    python bench/overhead.py --litellm      # and leg (c), the LiteLLM proxy
    python bench/overhead.py --quick        # a few requests (used by the test suite)

Legs, all on loopback: (a) the client calls the stub directly; (b) the client calls
ttc-router (greedy on every tier, embedding classifier on, result cache on with distinct prompts
so every request misses, budgets on a real Redis) which calls the stub; (c) with `--litellm`,
the client calls the LiteLLM proxy (one worker, no database, no master key,
`LITELLM_LOCAL_MODEL_COST_MAP=True`, a one-model config pointing at the stub). LiteLLM is a
benchmark-only dependency: the script installs a pinned version into its own virtual
environment (`bench/.venv-litellm`, git-ignored) on first use; it is never imported here.
Each leg runs in its own process. Closed-loop load at fixed concurrency levels; added latency =
proxy percentile minus direct percentile at the same level. "max req/s with p99 < 50 ms" is the
highest throughput among the measured levels whose router p99 stays under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.processes import free_port, pct, start, stop, wait_ready  # noqa: E402

POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          max_concurrency: 256}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 16}}
  medium: {{strategy: greedy, model: stub, max_tokens: 16}}
  hard: {{strategy: greedy, model: stub, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: stub, max_tokens: 16}}
tenants:
  bench: {{daily_usd: 1000000}}
anonymous_tenant: bench
"""


async def load(
    url: str, concurrency: int, total: int, tag: str, seconds: float | None = None
) -> dict[str, float]:
    """Closed loop: `concurrency` callers send `total` distinct prompts (or stop after
    `seconds`)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if seconds is not None and time.perf_counter() - began > seconds:
                    return
                body = {
                    "model": "ttc-auto",
                    "max_tokens": 16,
                    "messages": [
                        {"role": "user", "content": f"What is the capital of France? ({tag}-{i})"}
                    ],
                }
                start = time.perf_counter()
                r = await client.post(url, json=body)
                latencies.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return {
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "p99": pct(latencies, 99),
        "mean": statistics.fmean(latencies),
        "rps": len(latencies) / wall,
        "requests": len(latencies),
        "errors": errors,
    }


LITELLM_VERSION = "1.81.13"  # pinned; releases 1.82.7/1.82.8 were compromised and yanked
LITELLM_VENV = REPO / "bench" / ".venv-litellm"
LITELLM_CONFIG = """
model_list:
  - model_name: ttc-auto
    litellm_params:
      model: openai/stub
      api_base: {stub}/v1
      api_key: sk-stub
"""


def ensure_litellm(venv: Path = LITELLM_VENV) -> Path:
    """The `litellm` proxy executable of the benchmark's own virtual environment."""
    exe = venv / "bin" / "litellm"
    marker = venv / f".litellm-{LITELLM_VERSION}"
    if exe.exists() and marker.exists():
        return exe
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
        check=True,
    )
    marker.touch()
    return exe


def start_litellm(exe: Path, stub: str, tmp: Path, env: dict[str, str]) -> tuple[Any, str]:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(stub=stub))
    lenv = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "LITELLM_MASTER_KEY")}
    lenv.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        NO_DOCS="True",
    )
    cmd = [
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return start(cmd, lenv, tmp / "litellm.log"), f"http://127.0.0.1:{port}"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="ttc-bench-"))
    stub_port, router_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    stub = start(
        [sys.executable, "-m", "bench.stub_upstream", "--port", str(stub_port)],
        env,
        tmp / "stub.log",
    )
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY.format(stub=f"http://127.0.0.1:{stub_port}"))
    router_env = {
        **env,
        "TTC_PORT": str(router_port),
        "TTC_POLICY_PATH": str(policy),
        "TTC_DATA_DIR": str(tmp),
        "TTC_LOG_LEVEL": "warning",
        "TTC_REDIS_PREFIX": f"ttc-bench-{uuid.uuid4().hex[:8]}:",
    }
    if args.redis_url:
        router_env["TTC_REDIS_URL"] = args.redis_url
    router = start([sys.executable, "-m", "router.cli", "serve"], router_env, tmp / "router.log")
    litellm, litellm_base = (None, "")
    if args.litellm:
        litellm, litellm_base = start_litellm(
            ensure_litellm(), f"http://127.0.0.1:{stub_port}", tmp, env
        )
    rows: list[dict[str, Any]] = []
    try:
        wait_ready(f"http://127.0.0.1:{stub_port}/v1/models")
        wait_ready(f"http://127.0.0.1:{router_port}/readyz")
        direct_url = f"http://127.0.0.1:{stub_port}/v1/chat/completions"
        router_url = f"http://127.0.0.1:{router_port}/v1/chat/completions"
        asyncio.run(load(router_url, 2, 20, "warmup"))
        if litellm is not None:
            wait_ready(f"{litellm_base}/health/liveliness")
            asyncio.run(load(f"{litellm_base}/v1/chat/completions", 2, 20, "warmup"))
        for c in args.concurrency:
            total = max(args.requests, c * 4)
            d = asyncio.run(load(direct_url, c, total, f"d{c}"))
            r = asyncio.run(load(router_url, c, total, f"r{c}"))
            row = {"concurrency": c, "requests": total, "direct": d, "router": r}
            if litellm is not None:
                url = f"{litellm_base}/v1/chat/completions"
                row["litellm"] = asyncio.run(load(url, c, total, f"l{c}"))
            rows.append(row)
    finally:
        if litellm is not None:
            stop(litellm)
        stop(router)
        stop(stub)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| concurrency | requests | direct p50/p95/p99 ms | router p50/p95/p99 ms "
        "| added p50/p95/p99 ms | direct req/s | router req/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d, r = row["direct"], row["router"]
        added = [r[k] - d[k] for k in ("p50", "p95", "p99")]
        lines.append(
            f"| {row['concurrency']} | {row['requests']} "
            f"| {d['p50']:.1f} / {d['p95']:.1f} / {d['p99']:.1f} "
            f"| {r['p50']:.1f} / {r['p95']:.1f} / {r['p99']:.1f} "
            f"| {added[0]:.1f} / {added[1]:.1f} / {added[2]:.1f} "
            f"| {d['rps']:.0f} | {r['rps']:.0f} | {int(d['errors'] + r['errors'])} |"
        )
    if any("litellm" in row for row in rows):
        lines += ["", *litellm_table(rows)]
    ok = [row["router"]["rps"] for row in rows if row["router"]["p99"] < 50]
    lines.append("")
    lines.append(
        f"max router req/s with p99 < 50 ms: {max(ok):.0f}"
        if ok
        else "no measured level kept router p99 under 50 ms"
    )
    return "\n".join(lines)


def litellm_table(rows: list[dict[str, Any]]) -> list[str]:
    """Leg (c): added latency over direct for both proxies, and ttc-router / LiteLLM."""
    lines = [
        "| concurrency | LiteLLM p50/p95/p99 ms | LiteLLM added p50/p95/p99 ms "
        "| ttc-router added p50/p95/p99 ms | LiteLLM req/s | ttc-router req/s "
        "| added p50 ratio ttc/LiteLLM | req/s ratio ttc/LiteLLM | LiteLLM errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        d, r, lt = row["direct"], row["router"], row["litellm"]
        ra = [r[k] - d[k] for k in ("p50", "p95", "p99")]
        la = [lt[k] - d[k] for k in ("p50", "p95", "p99")]
        ratio = f"{ra[0] / la[0]:.2f}" if la[0] > 0 else "n/a"
        lines.append(
            f"| {row['concurrency']} | {lt['p50']:.1f} / {lt['p95']:.1f} / {lt['p99']:.1f} "
            f"| {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} | {ra[0]:.1f} / {ra[1]:.1f} / {ra[2]:.1f} "
            f"| {lt['rps']:.0f} | {r['rps']:.0f} | {ratio} | {r['rps'] / lt['rps']:.2f} "
            f"| {int(lt['errors'])} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few requests, one level")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TTC_REDIS_URL"),
        help="Redis for budgets/cache (default: the embedded one)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--litellm",
        action="store_true",
        help=f"add leg (c): the LiteLLM proxy {LITELLM_VERSION} (installed on first use)",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.concurrency = 10, [2]
    rows = run(args)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
