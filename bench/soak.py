"""Soak: sustained concurrent load through ttc-router against the zero-latency stub upstream.

    python bench/soak.py                      # full run: 180 s at concurrency 16
    python bench/soak.py --quick              # CI: 30 s of load, 20 s warm-up
    python bench/soak.py --duration 600 --concurrency 32 --json out.json

Everything runs on loopback in separate processes: the stub (`bench.stub_upstream`), the router
(`ttc-router serve`: embedding classifier, result cache and budgets on Redis — the embedded one
unless `--redis-url`), and this load generator. The workload mixes, per request: 60 % chat
completions with a unique prompt (cache miss), 15 % streamed chat, 15 % a repeated prompt (cache
hit), 10 % Anthropic `/v1/messages`. The policy puts easy/medium on greedy, hard on
self-consistency (n = 4) and very_hard on best-of-4, so the search path is exercised as well.

Reported: requests, throughput, errors (any non-200, or a stream that does not end cleanly) by
kind, latency percentiles after warm-up, and the router process's resident memory: at the end
of warm-up, at the end (mean of the last 5 s), the peak, and the growth from warm-up to the end.
`--check` exits 1 when there were errors or memory grew by more than `--max-growth` percent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if sys.path[0] != str(REPO):  # run as `python bench/<script>.py`
    sys.path.insert(0, str(REPO))

from bench.processes import free_port, pct, start, stop, wait_ready  # noqa: E402

POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub,
          capabilities: {{chat: true, completions: true, n: true}}, max_concurrency: 256,
          price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 32}}
  medium: {{strategy: greedy, model: stub, max_tokens: 32}}
  hard: {{strategy: self_consistency, model: stub, params: {{n: 4, round_size: 2}},
          max_tokens: 32}}
  very_hard: {{strategy: best_of_n, model: stub, params: {{n: 4}}, max_tokens: 32}}
budgets: {{on_exceeded: reject}}
tenants:
  soak: {{daily_usd: 1000000}}
anonymous_tenant: soak
cache: {{enabled: true, ttl_s: 600}}
"""

PROMPTS = [
    "What is the capital of France?",
    "What is 17 + 25?",
    "Solve for x: 3x + 7 = 22, showing each step.",
    "Prove that the square root of 2 is irrational.",
    "Write a Python function that returns the n-th Fibonacci number.",
    "A train leaves at 3 pm at 60 km/h; another at 4 pm at 80 km/h. When does it catch up?",
    "How many primes are there below 100?",
    "Find all integer solutions of x^2 - y^2 = 2024 and explain why the list is complete.",
]


@dataclass
class Record:
    at: float
    kind: str
    ms: float
    ok: bool
    status: int


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def kind_of(i: int) -> str:
    r = i % 20
    if r < 12:
        return "chat"
    if r < 15:
        return "stream"
    if r < 18:
        return "repeat"
    return "messages"


async def one(client: httpx.AsyncClient, kind: str, i: int) -> tuple[bool, int]:
    prompt = f"{PROMPTS[i % len(PROMPTS)]} (#{i} {uuid.uuid4().hex[:8]})"
    if kind == "repeat":
        prompt = PROMPTS[i % len(PROMPTS)]
    messages = [{"role": "user", "content": prompt}]
    if kind == "messages":
        body = {"model": "ttc-auto", "max_tokens": 32, "messages": messages}
        r = await client.post("/v1/messages", json=body)
        return r.status_code == 200 and r.json()["content"][0]["text"] != "", r.status_code
    if kind == "stream":
        body = {"model": "ttc-auto", "messages": messages, "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            text = (await r.aread()).decode()
        clean = text.rstrip().endswith("data: [DONE]") and '"error"' not in text
        return r.status_code == 200 and clean, r.status_code
    r = await client.post("/v1/chat/completions", json={"model": "ttc-auto", "messages": messages})
    return r.status_code == 200 and bool(
        r.json()["choices"][0]["message"]["content"]
    ), r.status_code


async def drive(url: str, concurrency: int, seconds: float, run: Run) -> None:
    counter = iter(range(10**9))
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                i = next(counter)
                kind = kind_of(i)
                began = time.perf_counter()
                try:
                    ok, status = await one(client, kind, i)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    ok, status = False, 0
                    name = f"{kind}:{type(exc).__name__}"
                    run.errors[name] = run.errors.get(name, 0) + 1
                run.records.append(
                    Record(time.monotonic(), kind, (time.perf_counter() - began) * 1000, ok, status)
                )

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def sample_rss(pid: int, run: Run, stop_event: threading.Event) -> None:
    import psutil

    proc = psutil.Process(pid)
    while not stop_event.is_set():
        try:
            run.rss.append((time.monotonic(), int(proc.memory_info().rss)))
        except psutil.Error:
            return
        stop_event.wait(1.0)


def summarise(run: Run, began: float, warmup_s: float, seconds: float) -> dict[str, Any]:
    warm_at = began + warmup_s
    steady = [r for r in run.records if r.at >= warm_at]
    lat = [r.ms for r in steady] or [0.0]
    failed = [r for r in run.records if not r.ok]
    by_kind: dict[str, dict[str, int]] = {}
    for r in run.records:
        entry = by_kind.setdefault(r.kind, {"requests": 0, "errors": 0})
        entry["requests"] += 1
        entry["errors"] += 0 if r.ok else 1
    rss_warm = [v for t, v in run.rss if t <= warm_at][-1:] or [run.rss[0][1]]
    end = run.rss[-1][0]
    rss_end = [v for t, v in run.rss if t >= end - 5]
    warm_mb = rss_warm[0] / 2**20
    end_mb = statistics.fmean(rss_end) / 2**20
    return {
        "seconds": seconds,
        "warmup_s": warmup_s,
        "requests": len(run.records),
        "rps": len(steady) / max(seconds - warmup_s, 1e-9),
        "errors": len(failed),
        "error_statuses": sorted({r.status for r in failed}),
        "exceptions": run.errors,
        "by_kind": by_kind,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat),
        "mean_ms": statistics.fmean(lat),
        "rss_start_mb": run.rss[0][1] / 2**20,
        "rss_warm_mb": warm_mb,
        "rss_end_mb": end_mb,
        "rss_peak_mb": max(v for _, v in run.rss) / 2**20,
        "rss_growth_pct": (end_mb - warm_mb) / warm_mb * 100,
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ttc-soak-"))
    stub_port, router_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
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
        "TTC_REDIS_PREFIX": f"ttc-soak-{uuid.uuid4().hex[:8]}:",
    }
    if args.redis_url:
        router_env["TTC_REDIS_URL"] = args.redis_url
    router = start([sys.executable, "-m", "router.cli", "serve"], router_env, tmp / "router.log")
    run = Run()
    stop_event = threading.Event()
    not_ready: list[str] = []
    try:
        wait_ready(f"http://127.0.0.1:{stub_port}/v1/models")
        wait_ready(f"http://127.0.0.1:{router_port}/healthz")
        ready = httpx.get(f"http://127.0.0.1:{router_port}/readyz", timeout=10).json()
        not_ready = sorted(k for k, v in ready["checks"].items() if not v["ok"])
        if set(not_ready) - {"classifier"}:
            raise RuntimeError(f"router not ready: {ready}")
        sampler = threading.Thread(
            target=sample_rss, args=(router.pid, run, stop_event), daemon=True
        )
        sampler.start()
        began = time.monotonic()
        asyncio.run(drive(f"http://127.0.0.1:{router_port}", args.concurrency, args.duration, run))
        seconds = time.monotonic() - began
        stop_event.set()
        sampler.join(timeout=5)
    finally:
        stop_event.set()
        stop(router)
        stop(stub)
    result = summarise(run, began, args.warmup, seconds)
    result.update(concurrency=args.concurrency, logs=str(tmp), not_ready=not_ready)
    return result


def table(r: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v['requests']}/{v['errors']}" for k, v in sorted(r["by_kind"].items()))
    rows = [
        ("duration / warm-up", f"{r['seconds']:.0f} s / {r['warmup_s']:.0f} s"),
        ("concurrency", str(r["concurrency"])),
        ("requests (after warm-up req/s)", f"{r['requests']} ({r['rps']:.0f} req/s)"),
        ("errors", f"{r['errors']} {r['error_statuses'] or ''} {r['exceptions'] or ''}".strip()),
        ("requests/errors by kind", kinds),
        (
            "latency p50 / p95 / p99 / max",
            f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f} ms",
        ),
        (
            "router RSS start / warm / end / peak",
            f"{r['rss_start_mb']:.1f} / "
            f"{r['rss_warm_mb']:.1f} / {r['rss_end_mb']:.1f} / {r['rss_peak_mb']:.1f} MiB",
        ),
        ("RSS growth after warm-up", f"{r['rss_growth_pct']:+.2f} %"),
    ]
    if r["not_ready"]:  # e.g. no classifier artifact: requests go to the uniform fallback
        rows.append(("router not ready in", ", ".join(r["not_ready"])))
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="30 s of load, 20 s warm-up")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before RSS baseline")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TTC_REDIS_URL"),
        help="Redis for budgets/cache (default: the embedded one)",
    )
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 on any error or RSS growth over --max-growth"
    )
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent")
    args = parser.parse_args()
    if args.quick:
        # The warm-up covers the classifier's bounded memos filling up (n-gram columns, then
        # words: up to ~30 MB by design, and every unique prompt here brings new words): at
        # ~470 req/s, 5 s of warm-up left them filling during the measured window, which
        # read as +7 % "growth" that a 60 s run shows flat (+0.8 %).
        args.duration, args.warmup, args.concurrency = 30.0, 20.0, 8
    result = soak(args)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.check and (result["errors"] or result["rss_growth_pct"] > args.max_growth):
        sys.exit(1)


if __name__ == "__main__":
    main()
