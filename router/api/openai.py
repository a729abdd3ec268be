"""`POST /v1/chat/completions`: the OpenAI Chat Completions API, routed."""

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
from router.errors import InvalidRequest
from router.jsonfast import FastJSONResponse, FastJSONRoute, dumps
from router.outcome import Outcome, Prepared
from router.pipeline import handle, prepare
from router.planning import Call
from router.schemas import ChatCompletionRequest
from router.state import AppState
from router.streaming import Done, Failed, KeepAlive, Text, events
from router.unsupported import OPENAI_TOOL_FIELDS, refuse_tools
from router.verification import parse as parse_verification

router = APIRouter(route_class=FastJSONRoute)


def to_call(body: ChatCompletionRequest, request: Request) -> Call:
    refuse_tools(body.model_extra, OPENAI_TOOL_FIELDS)
    if body.stream and body.n > 1:
        raise InvalidRequest("streaming supports n = 1 only", param="n")
    return Call(
        endpoint="chat",
        model=body.model,
        messages=body.to_messages(),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.token_limit(),
        max_tokens_param="max_completion_tokens" if body.max_completion_tokens else "max_tokens",
        n=body.n,
        stop=body.stops(),
        seed=body.seed,
        reasoning_effort=body.reasoning_effort,
        stream=body.stream,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        tier_hint=request.headers.get("x-ttc-tier") or (body.metadata or {}).get("ttc_tier"),
        trace=wants_trace(request),
        verification=parse_verification(
            (body.model_extra or {}).get("ttc"), body.metadata, "ttc"
        ),
        include_reasoning=wants_reasoning(request),
        latency=request_latency(request, body.metadata),
    )


def wants_reasoning(request: Request) -> bool:
    """`x-ttc-include-reasoning: true`: the client asks for the thinking as well."""
    return request.headers.get("x-ttc-include-reasoning", "").lower() in ("1", "true", "yes")


def reasonings(outcome: Outcome) -> list[str | None]:
    return outcome.reasonings or [None] * len(outcome.texts)


def message(text: str, reasoning: str | None) -> dict[str, Any]:
    """The assistant message; thinking rides in `reasoning_content` (the field vLLM and
    DeepSeek use) only when asked for."""
    out: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning:
        out["reasoning_content"] = reasoning
    return out


def usage_dict(outcome: Outcome) -> dict[str, Any]:
    u = outcome.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens + u.reasoning_tokens,
        "total_tokens": u.total_tokens,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request
) -> JSONResponse | StreamingResponse:
    state = app_state(request)  # not a dependency: FastAPI's solving costs more than this
    started = time.perf_counter()
    call = to_call(body, request)
    headers = request_headers(request)
    if call.stream:
        prepared = await prepare(state, call, headers)
        if isinstance(prepared, Outcome):  # cache hit: replay as a stream
            return StreamingResponse(
                _replay(prepared, call),
                media_type="text/event-stream",
                headers=outcome_headers(prepared),
            )
        return StreamingResponse(
            _sse(state, prepared, started),
            media_type="text/event-stream",
            headers=stream_headers(prepared),
        )
    outcome = await handle(state, call, headers)
    record_request(state, "chat", outcome, time.perf_counter() - started)
    payload = {
        "id": f"chatcmpl-{outcome.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": i,
                "message": message(text, reasoning if call.include_reasoning else None),
                "finish_reason": finish,
                "logprobs": None,
            }
            for i, (text, finish, reasoning) in enumerate(
                zip(outcome.texts, outcome.finish_reasons, reasonings(outcome), strict=True)
            )
        ],
        "usage": usage_dict(outcome),
        "ttc": ttc_object(outcome),
    }
    return FastJSONResponse(payload, headers=outcome_headers(outcome))


def _chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None) -> str:
    data = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {dumps(data).decode()}\n\n"


def _final(outcome: Outcome, call: Call) -> str:
    data: dict[str, Any] = {
        "id": f"chatcmpl-{outcome.request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": call.model,
        "choices": [],
        "ttc": ttc_object(outcome),
    }
    if call.include_usage:
        data["usage"] = usage_dict(outcome)
    return f"data: {dumps(data).decode()}\n\n"


async def _sse(state: AppState, prepared: Prepared, started: float) -> AsyncIterator[str]:
    call = prepared.call
    rid = prepared.request_id
    yield _chunk(rid, call.model, {"role": "assistant", "content": ""}, None)
    async for event in events(state, prepared):
        if isinstance(event, Text):
            yield _chunk(rid, call.model, {"content": event.text}, None)
        elif isinstance(event, KeepAlive):
            yield ": keep-alive\n\n"
        elif isinstance(event, Done):
            outcome = event.outcome
            yield _chunk(rid, call.model, {}, outcome.finish_reasons[0])
            yield _final(outcome, call)
            record_request(state, "chat", outcome, time.perf_counter() - started)
        elif isinstance(event, Failed):
            e = event.error
            body = error_body("/v1/chat/completions", e.status, e.message, e.type, e.param, e.code)
            state.metrics.errors.labels(endpoint="/v1/chat/completions", type=e.type).inc()
            yield f"data: {dumps(body).decode()}\n\n"
    yield "data: [DONE]\n\n"


async def _replay(outcome: Outcome, call: Call) -> AsyncIterator[str]:
    rid = outcome.request_id
    yield _chunk(rid, call.model, {"role": "assistant", "content": outcome.texts[0]}, None)
    yield _chunk(rid, call.model, {}, outcome.finish_reasons[0])
    yield _final(outcome, call)
    yield "data: [DONE]\n\n"
