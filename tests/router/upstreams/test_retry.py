"""CallGuard: the bare first attempt and tenacity's retries behave as one retry policy."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.errors import InvalidRequest
from router.metrics import Metrics
from router.upstreams.retry import CallGuard, Retryable


class Flaky:
    """Fails with `errors` in order, then answers "ok"; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def guard(retries: int, metrics: Metrics | None = None) -> CallGuard:
    return CallGuard("up", max_concurrency=2, max_retries=retries, metrics=metrics,
                     backoff_initial_s=0.001, backoff_max_s=0.002)


def count(metrics: Metrics, outcome: str) -> float:
    return float(metrics.upstream_calls.labels(upstream="up", outcome=outcome)._value.get())


def test_first_attempt_success_is_counted_once() -> None:
    metrics = Metrics()
    fn = Flaky()
    value, seconds = asyncio.run(guard(2, metrics).call(fn))
    assert (value, fn.calls) == ("ok", 1)
    assert seconds >= 0
    assert count(metrics, "ok") == 1 and count(metrics, "retry") == 0


def test_retryable_failures_are_retried_up_to_the_attempt_count() -> None:
    metrics = Metrics()
    fn = Flaky(Retryable("503"), Retryable("503"))
    value, _ = asyncio.run(guard(2, metrics).call(fn))
    assert (value, fn.calls) == ("ok", 3)
    assert count(metrics, "retry") == 2 and count(metrics, "ok") == 1

    fn = Flaky(Retryable("a"), Retryable("b"), Retryable("c"))
    with pytest.raises(Retryable, match="c"):
        asyncio.run(guard(2).call(fn))
    assert fn.calls == 3  # 1 + max_retries, never more


def test_no_retries_and_non_retryable_errors_raise_at_once() -> None:
    fn = Flaky(Retryable("429"))
    with pytest.raises(Retryable):
        asyncio.run(guard(0).call(fn))
    assert fn.calls == 1

    metrics = Metrics()
    fn = Flaky(InvalidRequest("bad"))
    with pytest.raises(InvalidRequest):
        asyncio.run(guard(3, metrics).call(fn))
    assert fn.calls == 1 and count(metrics, "error") == 1


def test_retry_after_of_the_first_failure_sets_the_first_wait() -> None:
    fn = Flaky(Retryable("429", retry_after=0.2))
    began = time.perf_counter()
    value, _ = asyncio.run(guard(1).call(fn))
    assert value == "ok" and fn.calls == 2
    assert time.perf_counter() - began >= 0.2  # the replayed failure's Retry-After was honoured
