"""CPU per upstream call: the `aiohttp` transport (non-streaming calls over one pooled aiohttp
session, `router/upstreams/json_post.py`) against `httpx` (the openai SDK over its httpx2 client).

    python bench/upstream_transport.py                 # 300 calls a level, 1 and 8 callers
    python bench/upstream_transport.py --calls 1000 --rounds 3

`OpenAICompatUpstream.generate` against the zero-latency stub (`bench/stub_upstream.py`) served
in a thread of the same process, so "CPU ms/call" is the process's CPU over the calls: the
upstream client's share plus the stub's, which is the same for both transports (the difference
between the rows is the client's). Rounds alternate the transports so both see the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# run as `python bench/<script>.py`: bench/ itself must not shadow `multipart`, `strategies`
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.stub_upstream import ServerThread, StubUpstream  # noqa: E402
from router.upstreams.base import GenerationRequest, Message  # noqa: E402
from router.upstreams.openai_compat import OpenAICompatUpstream, Transport  # noqa: E402


async def _level(up: OpenAICompatUpstream, calls: int, callers: int) -> tuple[float, float]:
    req = GenerationRequest(messages=(Message("user", "What is 2 + 2?"),), max_tokens=16)
    sem = asyncio.Semaphore(callers)

    async def one() -> None:
        async with sem:
            await up.generate(req)

    await one()  # connect
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (time.process_time() - c0) / calls * 1e3, (time.perf_counter() - t0) / calls * 1e3


async def run(calls: int, rounds: int, levels: list[int]) -> list[tuple[str, int, float, float]]:
    rows = []
    with ServerThread(StubUpstream()) as server:
        for _ in range(rounds):
            transport: Transport
            for transport in ("httpx", "aiohttp"):
                up = OpenAICompatUpstream(
                    "stub", base_url=f"{server.url}/v1", model="stub", transport=transport
                )
                for callers in levels:
                    cpu, wall = await _level(up, calls, callers)
                    rows.append((transport, callers, cpu, wall))
                await up.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    rows = asyncio.run(run(args.calls, args.rounds, args.callers))
    print("| transport | callers | CPU ms/call (client + stub) | wall ms/call |")
    print("|---|---|---|---|")
    for transport, callers, cpu, wall in rows:
        print(f"| {transport} | {callers} | {cpu:.3f} | {wall:.3f} |")


if __name__ == "__main__":
    main()
