"""Pure ASGI middleware: request id, per-request log context, body size limit, JSON bodies,
and the 500 for an exception no handler knows."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.errors import INTERNAL_MESSAGE, error_body
from router.ids import new_id
from router.jsonfast import dumps

log = structlog.get_logger("router.access")
COLLECT_AFTER_ERROR_BYTES = 64 * 1024  # an error answer to a body this large collects garbage
errors_log = structlog.get_logger("router.api.errors")


class RequestContext:
    """Binds request id into structlog contextvars, echoes it, caps request bodies."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            raw_id if raw_id and len(raw_id) <= 128 and raw_id.isprintable() else new_id()
        )
        scope.setdefault("state", {})["request_id"] = request_id
        _json_body(scope, headers)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        limit = self.max_body_bytes
        declared = headers.get(b"content-length")
        too_big = False
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
        received = 0
        rejected = False
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                hdrs = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in hdrs):
                    hdrs.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = hdrs
            await send(message)

        async def limited_receive() -> Message:
            # A body streamed without Content-Length is counted as it arrives: past the limit
            # we answer 413 ourselves and tell the app the client went away.
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    await _reject_too_large(scope, send_with_id, limit)
                    return {"type": "http.disconnect"}
            return message

        async def app_send(message: Message) -> None:
            if not rejected:  # the 413 has been sent; drop whatever the app answers
                await send_with_id(message)

        start = time.perf_counter()
        if too_big:
            await _reject_too_large(scope, send_with_id, limit)
        else:
            try:
                await self.app(scope, limited_receive, app_send)
            except Exception as exc:
                # after our 413 the app's complaint about the cut body is moot
                if not rejected:
                    if status:  # the answer had started (a stream): the server cuts it
                        raise
                    # Answered here, not re-raised: Starlette's outermost middleware would
                    # answer too, then re-raise, and uvicorn would close the connection under
                    # the client's next request.
                    status = 500
                    await _internal_error(scope, send_with_id, exc)
        if status >= 400 and received >= COLLECT_AFTER_ERROR_BYTES:
            # An error path can leave the request in a reference cycle (FastAPI's answer to a
            # body that is not JSON does: exception, traceback, frame, request, body). With
            # the young threshold raised for serving (`router.app.tune_gc`) that garbage would
            # wait for 10,000 new objects, and a flood of large bad bodies would hold hundreds
            # of MB: collect it now. Large successful requests leave no such cycle.
            gc.collect(1)
        if not log.is_enabled_for(logging.INFO):
            return
        log.info(
            "request",
            method=scope.get("method"),
            path=scope.get("path"),
            status=status,
            ms=round((time.perf_counter() - start) * 1000, 2),
        )


def _json_body(scope: Scope, headers: dict[bytes, bytes]) -> None:
    """Every request body of this API is JSON, whatever its Content-Type says.

    `curl -d` sends `application/x-www-form-urlencoded`, and the OpenAI API reads such a body
    as JSON; so do we, instead of answering "Input should be a valid dictionary". A body that
    is not JSON still gets 400 "the request body is not valid JSON"."""
    if scope.get("method") not in ("POST", "PUT", "PATCH"):
        return
    kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind == b"application/json" or kind.endswith(b"+json"):
        return
    scope["headers"] = [
        (k, v) for k, v in scope.get("headers") or [] if k.lower() != b"content-type"
    ] + [(b"content-type", b"application/json")]


async def _reject_too_large(scope: Scope, send: Send, limit: int) -> None:
    path = scope.get("path", "")
    message = f"request body exceeds {limit} bytes"
    if path.startswith("/v1/messages"):
        body = {"type": "error", "error": {"type": "request_too_large", "message": message}}
    else:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "body",
                "code": "request_too_large",
            }
        }
    await _send_json(send, 413, body)


async def _internal_error(scope: Scope, send: Send, exc: Exception) -> None:
    """A bug: logged with its traceback, counted, answered 500 in the endpoint's error shape."""
    path = scope.get("path", "")
    errors_log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    state = getattr(getattr(scope.get("app"), "state", None), "ttc", None)
    if state is not None:
        state.metrics.errors.labels(endpoint=path, type="internal_error").inc()
    await _send_json(send, 500,
                     error_body(path, 500, INTERNAL_MESSAGE, "internal_error", None, None))


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
