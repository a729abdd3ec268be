"""Admission control and event-loop lag: the two guards of tail latency.

`Admission` (pure ASGI) bounds the generation requests one worker serves at once
(`TTC_MAX_INFLIGHT`; 0 = unbounded). Past the bound it answers at once with 503, a
`retry-after` header and an OpenAI- (or Anthropic-) style error body, instead of queueing
without bound: under overload a client gets a fast, retryable answer and the requests already
admitted keep their latency. Health, readiness and metrics are never shed.

`watch_loop_lag` samples how late the event loop wakes a sleeper. Classification runs in a
worker thread and JSON is parsed with orjson, so this stays near zero; a blocked loop shows up
in `ttc_event_loop_lag_seconds` at once.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from router.jsonfast import dumps
from router.metrics import Metrics

SHED_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/route")


class Admission:
    def __init__(self, app: ASGIApp, *, max_inflight: int, retry_after_s: int = 1) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.retry_after = str(retry_after_s).encode()
        self.inflight = 0

    def _metrics(self, scope: Scope) -> Metrics | None:
        state = getattr(getattr(scope.get("app"), "state", None), "ttc", None)
        return getattr(state, "metrics", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or self.max_inflight <= 0
                or not scope["path"].startswith(SHED_PATHS)):
            await self.app(scope, receive, send)
            return
        metrics = self._metrics(scope)
        if self.inflight >= self.max_inflight:
            if metrics is not None:
                metrics.shed.inc()
            await self._reject(scope, send)
            return
        self.inflight += 1
        if metrics is not None:
            metrics.inflight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            if metrics is not None:
                metrics.inflight.dec()

    async def _reject(self, scope: Scope, send: Send) -> None:
        message = (f"the router is at its concurrency limit ({self.max_inflight} requests in "
                   f"flight); retry after {self.retry_after.decode()} s")
        body: dict[str, Any]
        if scope["path"].startswith("/v1/messages"):
            body = {"type": "error", "error": {"type": "overloaded_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": "overloaded", "param": None,
                              "code": "overloaded"}}
        data = dumps(body)
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"retry-after", self.retry_after),
            ],
        })
        await send({"type": "http.response.body", "body": data})


async def watch_loop_lag(metrics: Metrics, stop: asyncio.Event, interval_s: float = 0.25,
                         window: int = 40) -> None:
    """Until `stop`: every `interval_s`, how late the loop woke us; the gauge holds the
    largest lag of the last `window` samples (10 s)."""
    loop = asyncio.get_running_loop()
    recent: collections.deque[float] = collections.deque(maxlen=window)
    while not stop.is_set():
        began = loop.time()
        await asyncio.sleep(interval_s)
        lag = max(loop.time() - began - interval_s, 0.0)
        recent.append(lag)
        metrics.loop_lag.observe(lag)
        metrics.loop_lag_max.set(max(recent))


__all__ = ["Admission", "watch_loop_lag"]
