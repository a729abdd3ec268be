"""OpenAI-compatible upstream (vLLM, llama.cpp, SGLang, Ollama, OpenAI) via `openai.AsyncOpenAI`.

Chat requests go to `/v1/chat/completions`; raw prompts to `/v1/completions`. SDK exceptions
are translated here into `router.errors` (retryable ones into `Retryable`).

Token accounting: some servers (llama.cpp) report `usage.completion_tokens` for the first choice
only when `n > 1`. With `count_choice_tokens=True` the upstream requests logprobs and counts
each choice's tokens itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import openai

from router.errors import UpstreamError, UpstreamTimeout
from router.metrics import Metrics
from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    StreamDelta,
    Usage,
)
from router.upstreams.prompting import DEFAULT_FORMAT
from router.upstreams.retry import CallGuard, Retryable, status_error

T = TypeVar("T")


def translate(exc: Exception, name: str) -> Exception:
    """Map an `openai` SDK exception to our hierarchy."""
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout(f"upstream {name!r} timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Retryable(f"upstream {name!r} unreachable: {exc.__class__.__name__}")
    if isinstance(exc, openai.APIStatusError):
        return status_error(
            name, exc.status_code, exc.response.headers.get("retry-after"), str(exc)
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return UpstreamError(f"upstream {name!r} sent a malformed response")
    return exc



def _reasoning(choice: Any) -> str | None:
    """Thinking returned apart from the answer: `reasoning_content` (vLLM, DeepSeek) or
    `reasoning` (some OpenAI-compatible servers)."""
    extra = getattr(choice.message, "model_extra", None) or {}
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return value if isinstance(value, str) and value else None


class OpenAICompatUpstream:
    def __init__(
        self,
        name: str,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        capabilities: Capabilities | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 8,
        max_retries: int = 2,
        metrics: Metrics | None = None,
        count_choice_tokens: bool = False,
        extra_body: dict[str, Any] | None = None,
        prompt_format: str | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.prompt_format = prompt_format or DEFAULT_FORMAT  # raw prompts: see .prompting
        self.capabilities = capabilities or Capabilities()
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0
        )
        self._guard = CallGuard(
            name, max_concurrency=max_concurrency, max_retries=max_retries, metrics=metrics
        )
        self._count_choice_tokens = count_choice_tokens
        self._extra_body = dict(extra_body or {})

    async def aclose(self) -> None:
        await self._client.close()

    async def _sdk(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except openai.OpenAIError as exc:
            raise translate(exc, self.name) from exc
        except ValueError as exc:  # a 2xx body that is not JSON
            raise UpstreamError(f"upstream {self.name!r} sent a malformed response") from exc

    def _common(self, r: GenerationRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": r.max_tokens}
        kwargs["temperature"] = r.temperature
        if r.top_p is not None:
            kwargs["top_p"] = r.top_p
        if r.n != 1:
            kwargs["n"] = r.n
        if r.stop:
            kwargs["stop"] = list(r.stop)
        if r.seed is not None:
            kwargs["seed"] = r.seed
        if self._extra_body:
            kwargs["extra_body"] = dict(self._extra_body)
        return kwargs

    def _chat_messages(self, r: GenerationRequest) -> list[Any]:
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in r.messages]
        if r.prefill:
            messages.append({"role": "assistant", "content": r.prefill})
        return messages

    async def generate(self, request: GenerationRequest) -> Generation:
        gen, seconds = await self._guard.call(lambda: self._generate_once(request))
        usage = Usage(
            gen.usage.prompt_tokens,
            gen.usage.completion_tokens,
            gen.usage.reasoning_tokens,
            calls=1,
            upstream_seconds=seconds,
        )
        return Generation(choices=gen.choices, usage=usage, model=gen.model)

    async def _generate_once(self, r: GenerationRequest) -> Generation:
        kwargs = self._common(r)
        want_logprobs = r.logprobs or self._count_choice_tokens
        if r.prompt is not None:
            if want_logprobs:
                kwargs["logprobs"] = 1
            resp: Any = await self._sdk(
                lambda: self._client.completions.create(prompt=r.prompt, **kwargs)
            )
            choices: list[tuple[str, Any, list[float] | None, str | None]] = [
                (c.text, c.finish_reason, _completion_logprobs(c), None) for c in resp.choices
            ]
        else:
            if want_logprobs:
                kwargs["logprobs"] = True
            if r.reasoning_effort:
                kwargs["reasoning_effort"] = r.reasoning_effort
            messages = self._chat_messages(r)
            resp = await self._sdk(
                lambda: self._client.chat.completions.create(messages=messages, **kwargs)
            )
            choices = [
                (c.message.content or "", c.finish_reason, _chat_logprobs(c), _reasoning(c))
                for c in resp.choices
            ]
        if not choices:
            raise UpstreamError(f"upstream {self.name!r} returned no choices")
        usage = resp.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        reported = usage.completion_tokens if usage else 0
        details = getattr(usage, "completion_tokens_details", None) if usage else None
        reasoning = int(getattr(details, "reasoning_tokens", 0) or 0)
        out: list[Choice] = []
        for text, finish, lps, thought in choices:
            tokens = len(lps) if lps is not None else 0
            out.append(
                Choice(
                    text=text,
                    finish_reason=finish or "stop",
                    completion_tokens=tokens,
                    reasoning=thought,
                    token_logprobs=tuple(lps) if (lps is not None and r.logprobs) else None,
                )
            )
        counted = sum(c.completion_tokens for c in out)
        if not self._count_choice_tokens or counted == 0:
            counted = max(reported, counted)
            if len(out) == 1:
                out[0] = Choice(**{**out[0].__dict__, "completion_tokens": counted})
        completion = max(counted - reasoning, 0) if reasoning else counted
        return Generation(
            choices=tuple(out),
            usage=Usage(prompt_tokens, completion, reasoning, calls=1),
            model=getattr(resp, "model", self.model) or self.model,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        kwargs = self._common(request)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        if request.prompt is not None:
            opener = lambda: self._client.completions.create(  # noqa: E731
                prompt=request.prompt, **kwargs
            )
        else:
            messages = self._chat_messages(request)
            opener = lambda: self._client.chat.completions.create(  # noqa: E731
                messages=messages, **kwargs
            )
        stream: Any
        stream, _ = await self._guard.call(lambda: self._sdk(opener))
        finish: str | None = None
        usage = Usage(calls=1)
        pieces = 0
        try:
            async for chunk in stream:
                if getattr(chunk, "usage", None):
                    u = chunk.usage
                    usage = Usage(u.prompt_tokens or 0, u.completion_tokens or 0, calls=1)
                for c in chunk.choices or ():
                    text = c.text if request.prompt is not None else (c.delta.content or "")
                    if c.finish_reason:
                        finish = c.finish_reason
                    if text:
                        pieces += 1
                        yield StreamDelta(text=text)
        except openai.OpenAIError as exc:
            raise translate(exc, self.name) from exc
        if usage.completion_tokens == 0:
            usage = Usage(usage.prompt_tokens, pieces, calls=1)
        yield StreamDelta(finish_reason=finish or "stop", usage=usage)


def _completion_logprobs(choice: Any) -> list[float] | None:
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        return None
    content = getattr(lp, "content", None)
    if content is None and isinstance(getattr(lp, "model_extra", None), dict):
        content = lp.model_extra.get("content")
    if content:
        return [float(t["logprob"] if isinstance(t, dict) else t.logprob) for t in content]
    token_logprobs = getattr(lp, "token_logprobs", None)
    if token_logprobs:
        return [float(x) for x in token_logprobs if x is not None]
    return None


def _chat_logprobs(choice: Any) -> list[float] | None:
    lp = getattr(choice, "logprobs", None)
    if lp is None or not getattr(lp, "content", None):
        return None
    return [float(t.logprob) for t in lp.content]
