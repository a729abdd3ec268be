"""Sample pools for `bench/allocation.py`: every question's greedy sample and sampled pools are
drawn once from the live model, saved, and served to the calibration grid (each N sees the first
N samples, charged what the live call would cost), plus the integer exact checker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from router.calibrate import Checker, EvalItem
from router.upstreams.base import Capabilities, Upstream, Usage
from strategies import Batch, Problem, UpstreamGenerator
from strategies.answers import extract_answer

T = TypeVar("T")
_REPO = Path(__file__).resolve().parent.parent
MAX_TOKENS = 8


class PoolGenerator:
    """Serves greedy calls from the question's greedy sample and sampled calls from its pool
    (in order: every N sees the first N samples), charging each call the live price."""

    def __init__(self, capabilities: Capabilities, greedy: Batch, pool: Batch) -> None:
        self.capabilities = capabilities
        self._greedy, self._pool, self._cursor = greedy, pool, 0

    async def sample(self, problem: Problem, n: int, *, temperature: float, max_tokens: int,
                     stop: Sequence[str] = (), seed: int | None = None) -> Batch:
        if temperature == 0:
            return self._greedy
        take = self._pool.samples[self._cursor : self._cursor + n]
        if len(take) < n:
            raise RuntimeError("sample pool exhausted")
        self._cursor += n
        return Batch(take, Usage(self._pool.usage.prompt_tokens, sum(s.tokens for s in take),
                                 calls=1))

    async def extend(self, problem: Problem, prefix: str, n: int, *, temperature: float,
                     max_tokens: int, stop: Sequence[str] = ()) -> Batch:
        raise NotImplementedError("pooled samples cannot continue a prefix")


def as_int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text.strip())
    except ValueError:
        return None


class IntegerChecker(Checker):
    def matches(self, item: EvalItem, answer: str | None) -> bool:
        return as_int(answer) is not None and as_int(answer) == as_int(item.reference)


class IntegerExact:
    """The exact-checker verifier: 1.0 when a candidate's number equals the reference."""

    async def score(self, problem: Problem, candidates: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        ref = as_int(problem.reference)
        return [[1.0 if as_int(extract_answer("".join(c), "number")) == ref else 0.0]
                for c in candidates]


@dataclass
class Pools:
    greedy: dict[str, Batch]
    sampled: dict[str, Batch]
    oracle: dict[str, Batch]


def _batch_json(b: Batch) -> dict[str, Any]:
    return {"samples": [[s.text, s.tokens, s.finish_reason] for s in b.samples],
            "usage": [b.usage.prompt_tokens, b.usage.completion_tokens, b.usage.calls]}


def _batch(d: dict[str, Any]) -> Batch:
    from strategies import Sample

    p, c, calls = d["usage"]
    return Batch(tuple(Sample(t, k, f) for t, k, f in d["samples"]), Usage(p, c, calls=calls))


def save_pools(pools: Pools, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: {k: _batch_json(b) for k, b in getattr(pools, name).items()}
                                for name in ("greedy", "sampled", "oracle")}))


def load_pools(path: Path, items: Sequence[EvalItem]) -> Pools | None:
    """Samples drawn by an earlier run for exactly these items (a crash later on loses none)."""
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    if {it.key for it in items} != set(raw["greedy"]):
        return None
    return Pools(*({k: _batch(v) for k, v in raw[name].items()}
                   for name in ("greedy", "sampled", "oracle")))


async def draw(upstream: Upstream, items: Sequence[EvalItem], n: int, oracle: int,
               concurrency: int = 2) -> Pools:
    """Greedy sample, pool of `n`, and (`oracle` > 0) an independent pool of `oracle`."""
    live = UpstreamGenerator(upstream)
    sem = asyncio.Semaphore(concurrency)

    async def bounded(aw: Awaitable[T]) -> T:
        async with sem:
            return await aw

    def sampled(it: EvalItem, k: int = n) -> Awaitable[Batch]:
        return bounded(live.sample(it.problem(), k, temperature=0.7, max_tokens=MAX_TOKENS,
                                   stop=("\n",)))

    greedy = await asyncio.gather(*(bounded(live.sample(
        it.problem(), 1, temperature=0.0, max_tokens=MAX_TOKENS, stop=("\n",))) for it in items))
    pools = await asyncio.gather(*(sampled(it) for it in items))
    extra = await asyncio.gather(*(sampled(it, oracle) for it in items)) if oracle else pools
    keys = [it.key for it in items]
    return Pools(dict(zip(keys, greedy, strict=True)), dict(zip(keys, pools, strict=True)),
                 dict(zip(keys, extra, strict=True)))


DrawPart = Callable[[Upstream, Sequence[EvalItem], int], Awaitable["Pools"]]


async def sample_pools(train: Sequence[EvalItem], test: Sequence[EvalItem], oracle: int,
                       outdir: Path, draw_part: DrawPart) -> tuple[Pools, Pools]:
    """Both parts' pools from the embedded model (`draw_part(upstream, items, oracle_n)`; the
    training part gets no oracle pool), or from `outdir` where an earlier run saved them."""
    from router.upstreams.local import LocalModelConfig, LocalModelServer, LocalUpstream

    cached = [load_pools(outdir / f"pools-{part}.json", its)
              for part, its in (("train", train), ("test", test))]
    if cached[0] is not None and cached[1] is not None:
        return cached[0], cached[1]
    server = LocalModelServer(LocalModelConfig(data_dir=_REPO / ".ttc", parallel=16,
                                               ctx_per_slot=512))
    await server.astart()
    upstream = LocalUpstream("local", server, timeout_s=900)  # a loaded machine queues calls
    try:
        train_pools = cached[0] or await draw_part(upstream, train, 0)
        save_pools(train_pools, outdir / "pools-train.json")
        test_pools = cached[1] or await draw_part(upstream, test, oracle)
        save_pools(test_pools, outdir / "pools-test.json")
    finally:
        await upstream.aclose()
    return train_pools, test_pools
