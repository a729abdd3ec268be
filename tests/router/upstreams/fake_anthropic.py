"""A local fake of the Anthropic Messages API: our own small ASGI app, spoken to by the real
`anthropic` SDK over HTTP.

It answers `POST /v1/messages` the way the hosted API does (as documented and as its error
messages read): content blocks (`thinking` with a `signature`, then `text`), `usage` with
`output_tokens_details.thinking_tokens`, `stop_reason`/`stop_sequence`, SSE events in their
documented order, and error bodies `{"type": "error", "error": {"type", "message"}}`. It
enforces the request limits the router must respect (each a 400 `invalid_request_error`):

- `thinking.budget_tokens` >= 1024 and < `max_tokens`; temperature only 1 with thinking;
  no assistant prefill while thinking is enabled;
- a final assistant message (prefill) must not end in whitespace;
- each stop sequence must contain non-whitespace.

Replies come from `reply(body) -> Reply` (what the model "says" next, given the request).
Tokens are words. Faults are queued with `fail(status, count, retry_after=...)`: 429
`rate_limit_error` with `retry-after`, 529 `overloaded_error`, 500 `api_error`, or
`"stream_error"` (an SSE `error` event after the first text delta).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Reply:
    text: str
    thinking: str | None = None  # emitted as a thinking block when the request enables it


def _words(text: str) -> int:
    return len(text.split())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _truncate_words(text: str, n: int) -> str:
    out, seen = [], 0
    for piece in text.split(" "):
        if piece.strip():
            if seen == n:
                break
            seen += 1
        out.append(piece)
    return " ".join(out)


def api_key(headers: dict[str, str]) -> str | None:
    """The key a request presents: `x-api-key`, or `authorization: Bearer` (SDK 2.x sends the
    API key that way)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)


class BadRequest(Exception):
    pass


@dataclass
class FakeAnthropic:
    reply: Callable[[dict[str, Any]], Reply] = lambda body: Reply("Hello from the fake.")
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    faults: list[tuple[int | str, str]] = field(default_factory=list)
    chunk_words: int = 2  # words per text delta when streaming

    def fail(self, status: int | str, count: int = 1, *, retry_after: str = "0") -> None:
        self.faults.extend([(status, retry_after)] * count)

    # -- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] != "/v1/messages" or scope["method"] != "POST":
            await self._error(send, 404, f"{scope['method']} {scope['path']} not found")
            return
        if not api_key(headers):
            await self._error(send, 401, "x-api-key header is required")
            return
        try:
            body = json.loads(raw)
            self.validate(body)
        except (ValueError, BadRequest) as exc:
            await self._error(send, 400, str(exc))
            return
        self.requests.append(body)
        self.headers.append(headers)
        fault: int | str | None = None
        if self.faults:
            fault, retry_after = self.faults.pop(0)
            if isinstance(fault, int):
                extra = {"retry-after": retry_after} if fault == 429 else {}
                await self._error(send, fault, f"fake fault {fault}", extra)
                return
        message_obj = self.respond(body)
        if body.get("stream"):
            await self._stream(send, message_obj, cut=fault == "stream_error")
        else:
            await self._json(send, 200, message_obj)

    # -- the API's request rules -------------------------------------------------------
    def validate(self, body: dict[str, Any]) -> None:
        if not isinstance(body.get("model"), str):
            raise BadRequest("model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise BadRequest("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: at least one message is required")
        if messages[0].get("role") != "user":
            raise BadRequest('messages: first message must use the "user" role')
        for seq in body.get("stop_sequences") or []:
            if not str(seq).strip():
                raise BadRequest("stop_sequences: each stop sequence must contain non-whitespace")
        last = messages[-1]
        prefill = last.get("role") == "assistant"
        if (
            prefill
            and _content_text(last.get("content", ""))
            != _content_text(last.get("content", "")).rstrip()
        ):
            raise BadRequest(
                "messages: final assistant content cannot end with trailing whitespace"
            )
        thinking = body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise BadRequest(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if budget >= max_tokens:
                raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
            if body.get("temperature") not in (None, 1, 1.0):
                raise BadRequest("`temperature` may only be set to 1 when thinking is enabled")
            if prefill:
                raise BadRequest(
                    "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but "
                    "found `text`. When `thinking` is enabled, a final `assistant` message must "
                    "start with a thinking block"
                )

    # -- replies -----------------------------------------------------------------------
    def respond(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.reply(body)
        thinking_on = (body.get("thinking") or {}).get("type") == "enabled"
        thinking = reply.thinking if thinking_on and reply.thinking is not None else None
        left = body["max_tokens"]
        blocks: list[dict[str, Any]] = []
        thinking_tokens = 0
        stop_reason, stop_sequence = "end_turn", None
        if thinking is not None:
            thinking_tokens = min(_words(thinking), left)
            thinking = _truncate_words(thinking, thinking_tokens)
            left -= thinking_tokens
            blocks.append(
                {"type": "thinking", "thinking": thinking, "signature": f"sig-{len(self.requests)}"}
            )
        text = reply.text
        for seq in body.get("stop_sequences") or []:
            if seq in text:
                text, stop_reason, stop_sequence = text.split(seq)[0], "stop_sequence", seq
        if _words(text) > left:
            text, stop_reason, stop_sequence = _truncate_words(text, left), "max_tokens", None
        blocks.append({"type": "text", "text": text})
        system = body.get("system") or ""
        prompt = (
            _content_text(system)
            + " "
            + " ".join(_content_text(m["content"]) for m in body["messages"])
        )
        return {
            "id": f"msg_fake_{len(self.requests):04d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                "input_tokens": _words(prompt),
                "output_tokens": thinking_tokens + _words(text),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens_details": {"thinking_tokens": thinking_tokens},
            },
        }

    async def _json(
        self, send: Send, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _error(
        self, send: Send, status: int, message: str, extra: dict[str, str] | None = None
    ) -> None:
        body = {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": "req_fake",
        }
        await self._json(send, status, body, extra)

    async def _stream(self, send: Send, message: dict[str, Any], *, cut: bool) -> None:
        """message_start, ping, per block: content_block_start, deltas (thinking deltas then a
        signature_delta; text deltas), content_block_stop; message_delta; message_stop."""
        headers = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_fake")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def event(name: str, data: dict[str, Any]) -> None:
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)

        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = {**usage, "output_tokens": 1}
        await event("message_start", {"type": "message_start", "message": start})
        await event("ping", {"type": "ping"})
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            empty = (
                {"type": "thinking", "thinking": "", "signature": ""}
                if kind == "thinking"
                else {"type": "text", "text": ""}
            )
            await event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": empty},
            )
            key, delta_type = (
                ("thinking", "thinking_delta") if kind == "thinking" else ("text", "text_delta")
            )
            words = block[key].split(" ")
            for i in range(0, len(words), self.chunk_words):
                piece = " ".join(words[i : i + self.chunk_words])
                piece = piece if i == 0 else " " + piece
                await event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": delta_type, key: piece},
                    },
                )
                if cut and kind == "text":
                    await event(
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
            if kind == "thinking":
                await event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    },
                )
            await event("content_block_stop", {"type": "content_block_stop", "index": index})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message["stop_sequence"],
                },
                "usage": {
                    "output_tokens": usage["output_tokens"],
                    "output_tokens_details": usage["output_tokens_details"],
                },
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await send({"type": "http.response.body", "body": b""})
