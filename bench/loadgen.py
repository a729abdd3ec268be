"""The closed-loop load generator of the overhead benchmarks (`bench/overhead.py`,
`bench/hotpath_cpu.py`, `bench/hotpath_profile.py`), and the pooling of its rounds."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

import aiohttp
import httpx

from bench.processes import pct


async def load(
    url: str, concurrency: int, total: int, tag: str, seconds: float | None = None,
    client: str = "aiohttp",
) -> dict[str, Any]:
    """Closed loop: `concurrency` callers send `total` distinct prompts (or stop after
    `seconds`), through `client` ("aiohttp" or "httpx"). Percentiles, throughput and counts,
    plus the wall time and every latency (`merge` pools rounds from them).

    aiohttp by default: httpx's connection pool is the bottleneck past a few callers. Against
    the bare stub on this machine httpx served 1,700 req/s at 8 callers and 370 at 32 with a
    414 ms p99, where aiohttp serves 10,000 at both (`--client httpx` reruns any table with
    httpx), so the tail it reported at 32 and 64 callers was the load generator's, whichever
    leg it measured."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    def body(i: int) -> dict[str, Any]:
        return {"model": "ttc-auto", "max_tokens": 16,
                "messages": [{"role": "user",
                              "content": f"What is the capital of France? ({tag}-{i})"}]}

    async def post_aiohttp(session: aiohttp.ClientSession, i: int) -> tuple[int, bytes]:
        async with session.post(url, json=body(i)) as r:
            return r.status, await r.read()

    async def post_httpx(session: httpx.AsyncClient, i: int) -> tuple[int, bytes]:
        r = await session.post(url, json=body(i))
        return r.status_code, r.content

    async def worker(post: Any, session: Any) -> None:
        nonlocal errors
        for i in counter:
            if seconds is not None and time.perf_counter() - began > seconds:
                return
            start = time.perf_counter()
            try:
                status, text = await post(session, i)
            except (TimeoutError, aiohttp.ClientError, httpx.HTTPError) as exc:
                errors += 1  # a dropped connection is an error, not a crash
                _error(tag, type(exc).__name__)
                continue
            latencies.append((time.perf_counter() - start) * 1000)
            if status != 200:
                errors += 1
                _error(tag, f"{status} {text[:200]!r}")

    began = time.perf_counter()
    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency,
                              max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as hx:
            began = time.perf_counter()
            await asyncio.gather(*(worker(post_httpx, hx) for _ in range(concurrency)))
    else:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as ah:
            began = time.perf_counter()
            await asyncio.gather(*(worker(post_aiohttp, ah) for _ in range(concurrency)))
    wall = time.perf_counter() - began
    return {
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "p99": pct(latencies, 99),
        "mean": statistics.fmean(latencies),
        "rps": len(latencies) / wall,
        "requests": len(latencies),
        "errors": errors,
        "wall": wall,
        "latencies": latencies,
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One leg's rounds (`--rounds`) as one measurement: percentiles over every latency,
    throughput over the summed wall time, CPU per request over every request, the last RSS."""
    latencies = [x for p in parts for x in p["latencies"]]
    requests = sum(p["requests"] for p in parts)
    out: dict[str, Any] = {
        "p50": pct(latencies, 50),
        "p95": pct(latencies, 95),
        "p99": pct(latencies, 99),
        "mean": statistics.fmean(latencies),
        "rps": requests / sum(p["wall"] for p in parts),
        "requests": requests,
        "errors": sum(p["errors"] for p in parts),
    }
    if "cpu_ms" in parts[0]:
        out["cpu_ms"] = sum(p["cpu_ms"] * p["requests"] for p in parts) / max(requests, 1)
        out["rss_mb"], out["rss_max_mb"] = parts[-1]["rss_mb"], parts[-1]["rss_max_mb"]
    return out


def _error(tag: str, what: str) -> None:
    """What failed, on stderr (the table only counts errors)."""
    print(f"error ({tag}): {what}", file=sys.stderr, flush=True)


__all__ = ["load", "merge"]
