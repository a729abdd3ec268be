"""A zero-latency OpenAI-compatible stub upstream, with injectable faults.

Serves `/v1/chat/completions`, `/v1/completions` (plain and SSE) and `/v1/models` from a raw
ASGI app (no framework cost, so benchmarks measure the router, not the stub). Faults are set
through `POST /control {"fault": ..., "count": N}` and apply to the next N generation requests:

    ok | error500 | error429 (Retry-After: 0) | hang (sleeps past any timeout) | drop (closes
    the connection) | malformed (invalid JSON) | cut_stream (SSE stops half-way)
    | stall_stream (SSE sends half, then hangs)

Optional control fields: `"after": M` lets the next M generation requests through before the
faults start (to fail a later call of a multi-call strategy), `"retry_after": "S"` sets the
Retry-After header of `error429`. Every generation request's `Authorization` header is kept in
`authorizations` (the first 1000), so tests can check which key reached the upstream.

Run standalone: `python -m bench.stub_upstream --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
from typing import Any

from starlette.types import Receive, Scope, Send

ANSWER = "The answer is 42."


class StubUpstream:
    def __init__(self, answer: str = ANSWER, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.fault = "ok"
        self.fault_count = 0
        self.fault_after = 0
        self.retry_after = "0"
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.authorizations: list[str] = []

    def _next_fault(self) -> str:
        if self.fault_after > 0:
            self.fault_after -= 1
            return "ok"
        if self.fault_count > 0:
            self.fault_count -= 1
            return self.fault
        return "ok"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if path == "/control":
            cmd = json.loads(body or b"{}")
            self.fault = cmd.get("fault", "ok")
            self.fault_count = int(cmd.get("count", 1))
            self.fault_after = int(cmd.get("after", 0))
            self.retry_after = str(cmd.get("retry_after", "0"))
            await _json(send, 200, {"ok": True})
            return
        if path.endswith("/models"):
            await _json(send, 200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
            return
        if not path.endswith(("/chat/completions", "/completions")):
            await _json(send, 404, {"error": {"message": "not found"}})
            return
        self.requests += 1
        request = json.loads(body or b"{}")
        if len(self.bodies) < 1000:
            self.bodies.append(request)
            headers = dict(scope.get("headers") or [])
            self.authorizations.append(headers.get(b"authorization", b"").decode("latin-1"))
        fault = self._next_fault()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if fault == "error500":
            await _json(send, 500, {"error": {"message": "stub failure", "type": "server_error"}})
            return
        if fault == "error429":
            await _json(
                send,
                429,
                {"error": {"message": "slow down"}},
                {b"retry-after": self.retry_after.encode()},
            )
            return
        if fault == "hang":
            await asyncio.sleep(3600)
            return
        if fault == "drop":
            raise ConnectionResetError("stub dropped the connection")
        if fault == "malformed":
            await _raw(send, 200, b"{not json", b"application/json")
            return
        chat = path.endswith("/chat/completions")
        n = int(request.get("n") or 1)
        if request.get("stream"):
            await self._stream(send, chat, cut=fault == "cut_stream", stall=fault == "stall_stream")
            return
        await _json(send, 200, self._completion(chat, n))

    def _completion(self, chat: bool, n: int) -> dict[str, Any]:
        words = len(self.answer.split())
        choices: list[dict[str, Any]] = []
        for i in range(n):
            if chat:
                choices.append(
                    {
                        "index": i,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.answer},
                    }
                )
            else:
                choices.append({"index": i, "finish_reason": "stop", "text": self.answer})
        return {
            "id": "stub-1",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": "stub",
            "choices": choices,
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": words * n,
                "total_tokens": 10 + words * n,
            },
        }

    async def _stream(self, send: Send, chat: bool, cut: bool, stall: bool = False) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        words = self.answer.split(" ")
        for i, word in enumerate(words):
            if cut and i == len(words) // 2:
                raise ConnectionResetError("stub cut the stream")
            if stall and i == len(words) // 2:
                await asyncio.sleep(3600)
            piece = word if i == 0 else " " + word
            choice: dict[str, Any] = {"index": 0, "finish_reason": None}
            if chat:
                choice["delta"] = {"content": piece}
            else:
                choice["text"] = piece
            chunk = {
                "id": "stub-1",
                "object": "chunk",
                "created": 0,
                "model": "stub",
                "choices": [choice],
            }
            await send(
                {
                    "type": "http.response.body",
                    "more_body": True,
                    "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                }
            )
        last: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        last["delta" if chat else "text"] = {} if chat else ""
        tail = {
            "id": "stub-1",
            "object": "chunk",
            "created": 0,
            "model": "stub",
            "choices": [last],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": len(words),
                "total_tokens": 10 + len(words),
            },
        }
        await send(
            {
                "type": "http.response.body",
                "more_body": True,
                "body": f"data: {json.dumps(tail)}\n\ndata: [DONE]\n\n".encode(),
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _json(
    send: Send, status: int, payload: dict[str, Any], extra: dict[bytes, bytes] | None = None
) -> None:
    await _raw(send, status, json.dumps(payload).encode(), b"application/json", extra)


async def _raw(
    send: Send, status: int, data: bytes, ctype: bytes, extra: dict[bytes, bytes] | None = None
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]
    headers += list((extra or {}).items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class ServerThread:
    """Runs an ASGI app under uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int = 0) -> None:
        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
        self.port = port
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(StubUpstream(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
