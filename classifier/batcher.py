"""Micro-batching: concurrent single-item requests share one blocking batch call.

Requests that arrive within `max_wait_s` of the first waiting one (or while the previous
batch is still running) are run together by `fn(items)` in one dedicated worker thread, off
the event loop. Results go back to each caller in order. If `fn` raises, every caller of that
batch gets the exception and the next batch runs normally.

`submit_on_loop(item)` is the path for backends that cost less than the hand-off itself
(hashed n-grams, a static token table: under a millisecond a short text, about what the trip to
the worker thread and back costs): when the batcher is idle (nothing queued, no batch running)
the item joins a batch that runs on the event loop itself at the end of the current loop
iteration, so the items submitted in one iteration (a burst of requests) still share one pass,
with no thread hop; otherwise it returns None and the caller submits as usual. `fn` never runs
twice at once. The caller decides which items are cheap enough (`EmbeddingClassifier` bounds
the text length by a measured cost, so the loop is never blocked for long).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(RuntimeError):
    """`submit` after `aclose`, or a request still queued when the batcher closed."""


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        thread_name: str = "ttc-embed",
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_s >= 0")
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._thread_name = thread_name
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._busy = False  # a batch is being formed or is in the worker thread
        self.batches = 0  # batches run (for tests and stats)
        self.items = 0
        self.on_loop = 0  # batches run on the event loop (`submit_on_loop`)
        self._on_loop: list[tuple[T, asyncio.Future[R]]] = []

    def _start(self) -> asyncio.Queue[tuple[T, asyncio.Future[R]]]:
        loop = asyncio.get_running_loop()
        w = self._worker
        if self._queue is None or w is None or w.done() or w.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._executor = self._executor or ThreadPoolExecutor(1, self._thread_name)
            self._worker = loop.create_task(self._run(self._queue))
        return self._queue

    async def submit(self, item: T) -> R:
        if self._closed:
            raise BatcherClosed("batcher is closed")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._start().put_nowait((item, fut))
        return await fut

    def submit_on_loop(self, item: T) -> asyncio.Future[R] | None:
        """A future of `fn`'s result for `item`, computed on the event loop at the end of this
        iteration together with the other items submitted meanwhile; None if the batcher is
        busy (submit instead)."""
        if self._closed:
            raise BatcherClosed("batcher is closed")
        if self._busy or (self._queue is not None and not self._queue.empty()):
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        if not self._on_loop:
            loop.call_soon(self._run_on_loop)
        self._on_loop.append((item, fut))
        return fut

    def _run_on_loop(self) -> None:
        batch, self._on_loop = self._on_loop, []
        live = [(item, fut) for item, fut in batch if not fut.done()]
        if self._closed or self._busy:  # closed, or a thread batch started meanwhile
            for item, fut in live:
                if self._closed:
                    fut.set_exception(BatcherClosed("batcher closed"))
                else:
                    self._start().put_nowait((item, fut))
            return
        for i in range(0, len(live), self.max_batch):
            chunk = live[i : i + self.max_batch]
            self.on_loop += 1
            try:
                results = self._fn([item for item, _ in chunk])
                if len(results) != len(chunk):
                    raise RuntimeError(f"batch fn returned {len(results)} for {len(chunk)}")
            except Exception as e:  # this batch's callers get it
                for _, fut in chunk:
                    fut.set_exception(e)
                continue
            for (_, fut), res in zip(chunk, results, strict=True):
                fut.set_result(res)

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            self._busy = True  # forming or running a batch: `run_inline` waits its turn
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), left))
                    except TimeoutError:
                        break
                else:
                    batch.append(queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.done()]  # drop cancelled
            if not live:
                self._busy = False
                continue
            try:
                results = await loop.run_in_executor(
                    self._executor, self._fn, [item for item, _ in live]
                )
                if len(results) != len(live):
                    raise RuntimeError(f"batch fn returned {len(results)} for {len(live)}")
            except asyncio.CancelledError:
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(BatcherClosed("batcher closed mid-batch"))
                raise
            except Exception as e:  # this batch's callers get it; the worker carries on
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            finally:
                self._busy = False
                self.batches += 1
                self.items += len(live)
            for (_, fut), res in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(res)

    async def aclose(self) -> None:
        """Stop the worker; queued requests fail with `BatcherClosed`."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._queue is not None:
            while not self._queue.empty():
                _, fut = self._queue.get_nowait()
                if not fut.done():
                    fut.set_exception(BatcherClosed("batcher closed"))
        if self._executor is not None:
            self._executor.shutdown(wait=False)
