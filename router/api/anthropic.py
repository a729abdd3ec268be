"""`POST /v1/messages`: the Anthropic Messages API, routed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from router.api.common import (
    app_state,
    outcome_headers,
    record_request,
    request_headers,
    request_latency,
    stream_headers,
    ttc_object,
    wants_trace,
)
from router.api.errors import error_body
from router.api.openai import wants_reasoning
from router.errors import InvalidRequest
from router.jsonfast import FastJSONResponse, FastJSONRoute, dumps
from router.outcome import Outcome, Prepared
from router.pipeline import handle, prepare
from router.planning import Call
from router.schemas import MessagesRequest
from router.state import AppState
from router.streaming import Done, Failed, KeepAlive, Text, events
from router.unsupported import ANTHROPIC_TOOL_FIELDS, refuse_tools
from router.verification import parse as parse_verification

router = APIRouter(route_class=FastJSONRoute)

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "deadline": "deadline"}


def to_call(body: MessagesRequest, request: Request) -> Call:
    refuse_tools(body.model_extra, ANTHROPIC_TOOL_FIELDS)
    budget = None
    if body.thinking is not None and body.thinking.type == "enabled":
        budget = body.thinking.budget_tokens
        check_thinking_budget(budget, body.max_tokens)
    return Call(
        endpoint="messages",
        model=body.model,
        messages=body.to_messages(),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(body.stop_sequences or ()),
        thinking_budget=budget,
        stream=body.stream,
        tier_hint=request.headers.get("x-ttc-tier")
        or str((body.metadata or {}).get("ttc_tier") or "")
        or None,
        trace=wants_trace(request),
        verification=parse_verification(
            (body.metadata or {}).get("ttc"), body.metadata, "metadata.ttc"
        ),
        include_reasoning=budget is not None or wants_reasoning(request),
        latency=request_latency(request, body.metadata),
    )


def check_thinking_budget(budget: int | None, max_tokens: int) -> None:
    """The Messages API's rule for `thinking.budget_tokens`: at least 1024, below max_tokens."""
    from router.vocab.anthropic_limits import MIN_THINKING_BUDGET

    if budget is None or budget < MIN_THINKING_BUDGET:
        raise InvalidRequest(
            f"thinking.budget_tokens must be at least {MIN_THINKING_BUDGET}",
            param="thinking.budget_tokens",
        )
    if budget >= max_tokens:
        raise InvalidRequest(
            "thinking.budget_tokens must be less than max_tokens", param="thinking.budget_tokens"
        )


def thinking_blocks(outcome: Outcome, include: bool) -> list[dict[str, Any]]:
    """A `thinking` block for the chosen answer's thinking, when the client enabled thinking
    (or sent `x-ttc-include-reasoning`). The signature is empty: the router's blocks are not
    Anthropic's, so they cannot be replayed to the API as signed thinking."""
    reasoning = outcome.reasonings[0] if outcome.reasonings else None
    if not include or not reasoning:
        return []
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}]


def _message(
    outcome: Outcome, model: str, text: str | None = None, include_reasoning: bool = False
) -> dict[str, Any]:
    u = outcome.usage
    return {
        "id": f"msg_{outcome.request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            *thinking_blocks(outcome, include_reasoning),
            {"type": "text", "text": outcome.texts[0] if text is None else text},
        ],
        "stop_reason": STOP_REASONS.get(outcome.finish_reasons[0], "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": u.prompt_tokens,
            "output_tokens": u.completion_tokens + u.reasoning_tokens,
        },
        "ttc": ttc_object(outcome),
    }


@router.post("/v1/messages", response_model=None)
async def messages(
    body: MessagesRequest, request: Request
) -> JSONResponse | StreamingResponse:
    state = app_state(request)  # not a dependency: FastAPI's solving costs more than this
    started = time.perf_counter()
    call = to_call(body, request)
    headers = request_headers(request)
    if call.stream:
        prepared = await prepare(state, call, headers)
        if isinstance(prepared, Outcome):
            return StreamingResponse(
                _replay(prepared, call.model),
                media_type="text/event-stream",
                headers=outcome_headers(prepared),
            )
        return StreamingResponse(
            _sse(state, prepared, started),
            media_type="text/event-stream",
            headers=stream_headers(prepared),
        )
    outcome = await handle(state, call, headers)
    record_request(state, "messages", outcome, time.perf_counter() - started)
    return FastJSONResponse(
        _message(outcome, call.model, include_reasoning=call.include_reasoning),
        headers=outcome_headers(outcome),
    )


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {dumps(data).decode()}\n\n"


def _start(request_id: str, model: str) -> list[str]:
    message: dict[str, Any] = {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return [
        _event("message_start", {"type": "message_start", "message": message}),
        _event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]


def _end(outcome: Outcome) -> list[str]:
    u = outcome.usage
    return [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": STOP_REASONS.get(outcome.finish_reasons[0], "end_turn"),
                    "stop_sequence": None,
                },
                "usage": {
                    "input_tokens": u.prompt_tokens,
                    "output_tokens": u.completion_tokens + u.reasoning_tokens,
                },
                "ttc": ttc_object(outcome),
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]


def _delta(text: str) -> str:
    return _event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
    )


async def _sse(state: AppState, prepared: Prepared, started: float) -> AsyncIterator[str]:
    for line in _start(prepared.request_id, prepared.call.model):
        yield line
    async for event in events(state, prepared):
        if isinstance(event, Text):
            yield _delta(event.text)
        elif isinstance(event, KeepAlive):
            yield _event("ping", {"type": "ping"})
        elif isinstance(event, Done):
            for line in _end(event.outcome):
                yield line
            record_request(state, "messages", event.outcome, time.perf_counter() - started)
        elif isinstance(event, Failed):
            e = event.error
            state.metrics.errors.labels(endpoint="/v1/messages", type=e.type).inc()
            body = error_body("/v1/messages", e.status, e.message, e.type, e.param, e.code)
            yield _event("error", body)


async def _replay(outcome: Outcome, model: str) -> AsyncIterator[str]:
    for line in _start(outcome.request_id, model):
        yield line
    yield _delta(outcome.texts[0])
    for line in _end(outcome):
        yield line
