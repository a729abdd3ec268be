"""The per-request call log: every upstream call a request makes, with what it cost.

`compile_runtime` wraps each upstream client in a `Logged` upstream that knows the policy
model it serves, the stage that calls it (`generation`, `verifier:<name>`, `classifier`) and
that model's price. `start()` opens a log for the current request (a context variable, so the
strategy's concurrent tasks write to the same list); every call that reports its usage then
appends a `CallRecord`. A verifier service's requests (a PRM over HTTP) are not upstream
calls: `pipeline.finish` adds them from the usage the strategy accounted under
`verifier:<name>`. `ttc.cost_usd` equals the sum of the log's costs (the settle test checks
it for every strategy); the log is shown in `ttc.call_log` when the client asks for the trace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "stage": self.stage, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd}


_LOG: ContextVar[list[CallRecord] | None] = ContextVar("ttc_call_log", default=None)


def start() -> list[CallRecord]:
    """Open the call log of the current request (and the tasks it starts)."""
    log: list[CallRecord] = []
    _LOG.set(log)
    return log


def record(model: str, stage: str, usage: Usage, price: Price) -> None:
    log = _LOG.get()
    if log is not None:
        log.append(CallRecord(model, stage, usage.prompt_tokens,
                              usage.completion_tokens + usage.reasoning_tokens,
                              price.cost(usage)))


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
        gen = await self.inner.generate(request)
        record(self._model, self._stage, gen.usage, self._price)
        return gen

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        async for delta in self.inner.stream(request):
            if delta.usage is not None:
                record(self._model, self._stage, delta.usage, self._price)
            yield delta

    async def aclose(self) -> None:
        await self.inner.aclose()


__all__ = ["CallRecord", "Logged", "record", "start"]
