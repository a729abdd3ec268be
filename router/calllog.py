"""The per-request call log: every upstream call a request makes, with what it cost.

`compile_runtime` wraps each upstream client in a `Logged` upstream that knows the policy
model it serves, the stage that calls it (`generation`, `verifier:<name>`, `classifier`) and
that model's price. `start()` opens a log for the current request (a context variable, so the
strategy's concurrent tasks write to the same list); every call that reports its usage then
appends a `CallRecord`. A verifier service's requests (a PRM over HTTP) are not upstream
calls: `pipeline.finish` adds them from the usage the strategy accounted under
`verifier:<name>`. `ttc.cost_usd` equals the sum of the log's costs (the settle test checks
it for every strategy); the log is shown in `ttc.call_log` when the client asks for the trace.

A non-streaming call cut before it reports its usage (cancelled at the deadline, or timed out)
still ran upstream: it is recorded with an estimate (`estimated: true`): its prompt at 3
characters a token plus its full `max_tokens` for each choice, the most it could have cost.
`pipeline.settle` bills the estimated records on top of the accounted usage and says so in
`ttc.notes` (`CUT_NOTE`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from router.vocab.errors import UpstreamTimeout
from router.vocab.upstream import (
    Generation,
    GenerationRequest,
    Price,
    StreamDelta,
    Upstream,
    Usage,
)


@dataclass(frozen=True)
class CallRecord:
    model: str  # the policy model (or `verifier:<name>`) that served the call
    stage: str  # generation | verifier:<name> | classifier
    prompt_tokens: int
    completion_tokens: int  # reasoning tokens included
    cost_usd: float
    estimated: bool = False  # cut before it reported its usage: an estimate (CUT_NOTE)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "stage": self.stage, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
                "estimated": self.estimated}


CHARS_PER_TOKEN = 3  # the router's conservative prompt estimate
CUT_NOTE = ("upstream calls cut before they reported usage (deadline or timeout) are billed an "
            "estimate: the prompt at 3 characters a token plus the call's full max_tokens")


def estimate(request: GenerationRequest) -> Usage:
    """The most a call that reported nothing may have cost: its prompt at 3 characters a
    token and its full `max_tokens` for each choice."""
    chars = sum(len(m.content) + 8 for m in request.messages) + len(request.prompt or "")
    prompt = math.ceil(chars / CHARS_PER_TOKEN) + 16
    return Usage(prompt, request.max_tokens * max(1, request.n), calls=1)


_LOG: ContextVar[list[CallRecord] | None] = ContextVar("ttc_call_log", default=None)


def start() -> list[CallRecord]:
    """Open the call log of the current request (and the tasks it starts)."""
    log: list[CallRecord] = []
    _LOG.set(log)
    return log


def record(model: str, stage: str, usage: Usage, price: Price, *, estimated: bool = False
           ) -> None:
    log = _LOG.get()
    if log is not None:
        log.append(CallRecord(model, stage, usage.prompt_tokens,
                              usage.completion_tokens + usage.reasoning_tokens,
                              price.cost(usage), estimated))


class Logged:
    """An upstream whose calls go to the request's call log (everything else is the
    wrapped client's)."""

    def __init__(self, inner: Upstream, model: str, stage: str, price: Price) -> None:
        self.inner = inner
        self._model, self._stage, self._price = model, stage, price
        self.name = inner.name
        self.model = inner.model
        self.capabilities = inner.capabilities

    def __getattr__(self, attr: str) -> Any:  # prompt_format and other optional attributes
        return getattr(self.inner, attr)

    async def generate(self, request: GenerationRequest) -> Generation:
        try:
            gen = await self.inner.generate(request)
        except (asyncio.CancelledError, UpstreamTimeout):  # it ran, but reported nothing
            record(self._model, self._stage, estimate(request), self._price, estimated=True)
            raise
        record(self._model, self._stage, gen.usage, self._price)
        return gen

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        async for delta in self.inner.stream(request):
            if delta.usage is not None:
                record(self._model, self._stage, delta.usage, self._price)
            yield delta

    async def aclose(self) -> None:
        await self.inner.aclose()


__all__ = ["CUT_NOTE", "CallRecord", "Logged", "estimate", "record", "start"]
