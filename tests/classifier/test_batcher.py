"""Micro-batching: sharing, routing results, isolating failures, running off the loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from classifier.batcher import BatcherClosed, MicroBatcher


class Recorder:
    """A batch function that doubles numbers, records each batch and fails on -1."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.delay = delay

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        if -1 in items:
            raise ValueError("poisoned batch")
        return [i * 2 for i in items]


async def test_concurrent_calls_share_one_batch_and_get_their_own_result() -> None:
    fn = Recorder()
    b = MicroBatcher(fn, max_batch=64, max_wait_s=0.05)
    results = await asyncio.gather(*(b.submit(i) for i in range(20)))
    assert results == [i * 2 for i in range(20)]
    assert len(fn.batches) == 1 and sorted(fn.batches[0]) == list(range(20))
    await b.aclose()


async def test_batches_are_capped_and_run_in_a_worker_thread() -> None:
    fn = Recorder()
    b = MicroBatcher(fn, max_batch=8, max_wait_s=0.05)
    results = await asyncio.gather(*(b.submit(i) for i in range(20)))
    assert results == [i * 2 for i in range(20)]
    assert [len(x) for x in fn.batches] == [8, 8, 4]
    assert threading.get_ident() not in fn.threads
    await b.aclose()


async def test_requests_arriving_during_a_batch_join_the_next_one() -> None:
    fn = Recorder(delay=0.1)
    b = MicroBatcher(fn, max_batch=64, max_wait_s=0.0)
    first = asyncio.ensure_future(b.submit(0))
    await asyncio.sleep(0.03)  # batch [0] is running in the thread now
    rest = await asyncio.gather(*(b.submit(i) for i in range(1, 6)))
    assert await first == 0 and rest == [2, 4, 6, 8, 10]
    assert fn.batches == [[0], [1, 2, 3, 4, 5]]
    await b.aclose()


async def test_an_exception_reaches_only_its_batch() -> None:
    fn = Recorder(delay=0.05)
    b = MicroBatcher(fn, max_batch=3, max_wait_s=0.0)
    out = await asyncio.gather(
        *(b.submit(i) for i in (-1, 1, 2, 3, 4, 5)), return_exceptions=True
    )
    assert fn.batches == [[-1, 1, 2], [3, 4, 5]]
    assert all(isinstance(o, ValueError) for o in out[:3])
    assert out[3:] == [6, 8, 10]
    assert await b.submit(7) == 14  # the worker survived
    await b.aclose()


async def test_a_cancelled_caller_does_not_break_the_others() -> None:
    fn = Recorder()
    b = MicroBatcher(fn, max_batch=64, max_wait_s=0.05)
    doomed = asyncio.ensure_future(b.submit(1))
    keep = asyncio.ensure_future(b.submit(2))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await keep == 4
    assert fn.batches == [[2]]
    await b.aclose()


async def test_closed_batcher_refuses_work() -> None:
    b = MicroBatcher(Recorder(), max_wait_s=0.0)
    assert await b.submit(3) == 6
    await b.aclose()
    with pytest.raises(BatcherClosed):
        await b.submit(1)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=0)


async def test_submit_on_loop_batches_one_iteration_on_the_loop_only_when_idle() -> None:
    fn = Recorder(delay=0.05)
    b = MicroBatcher(fn, max_batch=2, max_wait_s=0.0)
    futs = [b.submit_on_loop(i) for i in (3, 4, 5)]
    assert all(f is not None for f in futs)
    assert await asyncio.gather(*futs) == [6, 8, 10]  # type: ignore[arg-type]
    assert fn.batches == [[3, 4], [5]] and fn.threads == {threading.get_ident()}
    assert b.on_loop == 2 and b.batches == 0
    running = asyncio.ensure_future(b.submit(1))
    await asyncio.sleep(0.01)  # [1] is in the worker thread now
    assert b.submit_on_loop(2) is None  # busy: the caller must submit
    queued = asyncio.ensure_future(b.submit(4))
    await asyncio.sleep(0)
    assert b.submit_on_loop(5) is None  # still busy, [4] waits for the next batch
    assert await running == 2 and await queued == 8
    assert await b.submit_on_loop(7) == 14  # type: ignore[misc]  # idle again
    assert len(fn.threads) == 2
    await b.aclose()
    with pytest.raises(BatcherClosed):
        b.submit_on_loop(1)


async def test_a_failing_loop_batch_fails_only_its_callers() -> None:
    b = MicroBatcher(Recorder(), max_batch=64, max_wait_s=0.0)
    bad = [b.submit_on_loop(i) for i in (-1, 1)]
    out = await asyncio.gather(*bad, return_exceptions=True)  # type: ignore[arg-type]
    assert all(isinstance(o, ValueError) for o in out)
    assert await b.submit_on_loop(2) == 4  # type: ignore[misc]
    await b.aclose()
