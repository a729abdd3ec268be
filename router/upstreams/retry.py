"""Shared call discipline for upstreams: bounded concurrency, retries with backoff, timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from router.errors import InvalidRequest, RouterError, UpstreamError
from router.metrics import Metrics

T = TypeVar("T")


class Retryable(UpstreamError):
    """An upstream failure that is safe to retry (429, 5xx, connection dropped)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CallGuard:
    """Runs upstream calls with a concurrency cap, retry policy and metrics."""

    def __init__(
        self,
        name: str,
        *,
        max_concurrency: int,
        max_retries: int,
        metrics: Metrics | None,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 8.0,
    ) -> None:
        self.name = name
        self._sem = asyncio.Semaphore(max_concurrency)
        self._attempts = max_retries + 1
        self._metrics = metrics
        self._initial = backoff_initial_s
        self._max = backoff_max_s

    async def call(self, fn: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """Run `fn` (which raises `Retryable` for retryable failures); returns (value, seconds).

        The first attempt runs bare: most calls succeed at once, and tenacity's retry state
        costs more than the call's own bookkeeping. A retryable failure is handed to tenacity
        as its first attempt's outcome, so waits and the attempt count are the same as if it
        had run every attempt."""
        async with self._sem:
            try:
                return await self._attempt(fn)
            except Retryable as exc:
                if self._attempts <= 1:
                    raise
                first: Retryable | None = exc
            wait = wait_exponential_jitter(initial=self._initial, max=self._max)
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=lambda state: max(_retry_after(state), wait(state)),
                retry=retry_if_exception(lambda e: isinstance(e, Retryable)),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    if first is not None:  # replayed: attempt 1 already ran above
                        replay, first = first, None
                        raise replay
                    return await self._attempt(fn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, fn: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        start = time.perf_counter()
        try:
            value = await fn()
        except Exception as exc:
            self._record("error" if not isinstance(exc, Retryable) else "retry", start)
            raise
        return value, self._record("ok", start)

    def _record(self, outcome: str, start: float) -> float:
        elapsed = time.perf_counter() - start
        if self._metrics is not None:
            self._metrics.upstream_calls.labels(upstream=self.name, outcome=outcome).inc()
            self._metrics.upstream_latency.labels(upstream=self.name).observe(elapsed)
        return elapsed


def status_error(name: str, status: int, retry_after: str | None, detail: str) -> RouterError:
    """An upstream's HTTP error status in our terms: 429 and 5xx are retryable, 400 is the
    request's fault, anything else is an upstream error. Both SDK boundaries use this."""
    if status == 429 or status >= 500:
        return Retryable(f"upstream {name!r} answered {status}", parse_retry_after(retry_after))
    if status == 400:
        return InvalidRequest(f"upstream {name!r} rejected the request: {detail[:300]}")
    return UpstreamError(f"upstream {name!r} answered {status}: {detail[:300]}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form); None when absent or a date."""
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _retry_after(state: object) -> float:
    outcome = getattr(state, "outcome", None)
    exc = outcome.exception() if outcome is not None and outcome.failed else None
    if isinstance(exc, Retryable) and exc.retry_after is not None:
        return min(exc.retry_after, 30.0)
    return 0.0
