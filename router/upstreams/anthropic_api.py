"""Anthropic Messages upstream via `anthropic.AsyncAnthropic`, incl. extended thinking.

No `n`: several samples are concurrent calls (the generator does that). Assistant prefill
continues a partial solution, so step-level strategies can run here. The API refuses a prefill
that ends in whitespace, so the trailing whitespace (a step delimiter such as a blank line) is
stripped before the call and re-added to the continuation (`split_prefill`, `rejoin`).

Extended thinking: `GenerationRequest.max_tokens` counts thinking and answer together, as the
API's `max_tokens` does; the budget must stay >= 1024 and below it (`thinking_request`).
Thinking blocks never reach the answer text: they come back as `Choice.reasoning`, and
`usage.output_tokens_details.thinking_tokens` becomes `Usage.reasoning_tokens` (billed with
the output tokens, of which the API counts them a part).

No `temperature`/`top_p`: the SDK's `messages.create` (2.x) has no sampling parameters, so
samples are drawn at the API's default temperature (what best-of-N and voting want).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anthropic

from router.errors import UpstreamError, UpstreamTimeout
from router.metrics import Metrics
from router.upstreams.anthropic_limits import MIN_THINKING_BUDGET
from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    StreamDelta,
    Usage,
)
from router.upstreams.retry import CallGuard, Retryable, status_error

T = TypeVar("T")

ANTHROPIC_CAPABILITIES = Capabilities(
    chat=True, completions=False, n=False, logprobs=False, prefill=True, thinking=True
)


def translate(exc: Exception, name: str) -> Exception:
    if isinstance(exc, anthropic.APITimeoutError):
        return UpstreamTimeout(f"upstream {name!r} timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return Retryable(f"upstream {name!r} unreachable: {exc.__class__.__name__}")
    if isinstance(exc, anthropic.APIStatusError):
        return status_error(
            name, exc.status_code, exc.response.headers.get("retry-after"), str(exc)
        )
    return exc


def split_prefill(prefill: str) -> tuple[str, str]:
    """(prefill without trailing whitespace, the whitespace taken off)."""
    stripped = prefill.rstrip()
    return stripped, prefill[len(stripped) :]


def rejoin(tail: str, text: str) -> str:
    """The continuation of `stripped + tail` given the model's continuation of `stripped`:
    the part of `tail` the model wrote again is dropped, and when it wrote something else the
    leading whitespace goes (the stripped delimiter stands in for it)."""
    k = 0
    while k < min(len(tail), len(text)) and text[k] == tail[k]:
        k += 1
    return text[k:] if k == len(tail) else text[k:].lstrip()


def thinking_request(max_tokens: int, budget: int | None) -> tuple[int, dict[str, Any] | None]:
    """(max_tokens, thinking block) for a request of `max_tokens` in all with a thinking
    `budget`: the budget shrinks to half of `max_tokens` when it would not fit below it, and
    thinking is off when even that is under the API's floor."""
    if not budget:
        return max_tokens, None
    if budget >= max_tokens:
        budget = max_tokens // 2
    if budget < MIN_THINKING_BUDGET:
        return max_tokens, None
    return max_tokens, {"type": "enabled", "budget_tokens": budget}


def output_split(usage: Any) -> tuple[int, int]:
    """(answer tokens, thinking tokens) of an API usage object."""
    out = int(getattr(usage, "output_tokens", 0) or 0)
    details = getattr(usage, "output_tokens_details", None)
    thinking = int(getattr(details, "thinking_tokens", 0) or 0) if details is not None else 0
    thinking = min(thinking, out)
    return out - thinking, thinking


class AnthropicUpstream:
    def __init__(
        self,
        name: str,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        capabilities: Capabilities | None = None,
        timeout_s: float = 120.0,
        max_concurrency: int = 8,
        max_retries: int = 2,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.capabilities = capabilities or ANTHROPIC_CAPABILITIES
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unused", base_url=base_url, timeout=timeout_s, max_retries=0
        )
        self._guard = CallGuard(
            name, max_concurrency=max_concurrency, max_retries=max_retries, metrics=metrics
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def _sdk(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except anthropic.AnthropicError as exc:
            raise translate(exc, self.name) from exc
        except ValueError as exc:  # a 2xx body that is not JSON
            raise UpstreamError(f"upstream {self.name!r} sent a malformed response") from exc

    def _kwargs(self, r: GenerationRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in r.messages if m.role == "system")
        messages: list[dict[str, Any]] = [
            {"role": m.role, "content": m.content} for m in r.messages if m.role != "system"
        ]
        if r.prompt is not None:
            messages = [{"role": "user", "content": r.prompt}]
        if r.prefill:
            stripped, _ = split_prefill(r.prefill)
            if stripped:
                messages.append({"role": "assistant", "content": stripped})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": r.max_tokens,
        }
        if system:
            kwargs["system"] = system
        if r.stop:
            kwargs["stop_sequences"] = list(r.stop)
        kwargs["max_tokens"], thinking = thinking_request(r.max_tokens, r.thinking_budget)
        if thinking is not None and not r.prefill:
            kwargs["thinking"] = thinking  # the API takes no prefill while thinking
        return kwargs

    async def generate(self, request: GenerationRequest) -> Generation:
        if request.n != 1:
            raise UpstreamError(f"upstream {self.name!r} does not support n > 1 in one call")
        gen, seconds = await self._guard.call(lambda: self._generate_once(request))
        u = gen.usage
        return Generation(
            choices=gen.choices,
            usage=Usage(u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, 1, seconds),
            model=gen.model,
        )

    async def _generate_once(self, r: GenerationRequest) -> Generation:
        kwargs = self._kwargs(r)
        resp: Any = await self._sdk(lambda: self._client.messages.create(**kwargs))
        text = "".join(b.text for b in resp.content if getattr(b, "type", "") == "text")
        thinking = "".join(
            getattr(b, "thinking", "") for b in resp.content if getattr(b, "type", "") == "thinking"
        )
        if r.prefill:
            text = rejoin(split_prefill(r.prefill)[1], text)
        finish = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}.get(
            resp.stop_reason or "end_turn", "stop"
        )
        out, thought = output_split(resp.usage)
        return Generation(
            choices=(
                Choice(
                    text=text,
                    finish_reason=finish,
                    completion_tokens=out,
                    reasoning=thinking or None,
                ),
            ),
            usage=Usage(resp.usage.input_tokens, out, thought, calls=1),
            model=resp.model,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        kwargs = self._kwargs(request)
        kwargs["stream"] = True
        stream: Any
        stream, _ = await self._guard.call(
            lambda: self._sdk(lambda: self._client.messages.create(**kwargs))
        )
        prompt_tokens = 0
        output_tokens = thinking_tokens = 0
        finish = "stop"
        try:
            async for event in stream:
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    prompt_tokens = event.message.usage.input_tokens
                elif (
                    kind == "content_block_delta"
                    and getattr(event.delta, "type", "") == "text_delta"
                ):
                    yield StreamDelta(text=event.delta.text)
                elif kind == "message_delta":
                    output_tokens, thinking_tokens = output_split(event.usage)
                    if event.delta.stop_reason == "max_tokens":
                        finish = "length"
        except anthropic.AnthropicError as exc:
            raise translate(exc, self.name) from exc
        usage = Usage(prompt_tokens, output_tokens, thinking_tokens, calls=1)
        yield StreamDelta(finish_reason=finish, usage=usage)
