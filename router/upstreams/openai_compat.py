"""OpenAI-compatible upstream (vLLM, llama.cpp, SGLang, Ollama, OpenAI) via `openai.AsyncOpenAI`.

Chat requests go to `/v1/chat/completions`; raw prompts to `/v1/completions`. SDK exceptions
are translated here into `router.errors` (retryable ones into `Retryable`).

Token accounting: some servers (llama.cpp) report `usage.completion_tokens` for the first choice
only when `n > 1`. With `count_choice_tokens=True` the upstream requests logprobs and counts
each choice's tokens itself.

Transport: `aiohttp` by default. Non-streaming calls then go through one pooled aiohttp
session of our own (`router.upstreams.json_post`) with the SDK client's base URL and headers:
the SDK's request path costs about 1 ms of CPU a call more than aiohttp alone
(`bench/upstream_transport.py`; figures in docs/benchmarks.md). Streams go through the SDK over
its aiohttp client (`openai.DefaultAioHttpClient`, the `aiohttp` extra of `openai`). Failures
map to the same errors on both paths, and retries stay ours (`CallGuard`, SDK retries off).
`transport="httpx"` sends every call through the SDK over its default httpx2 client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeVar

import aiohttp
import openai

from router import jsonfast
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
from router.upstreams.json_post import JSONPost
from router.upstreams.prompting import DEFAULT_FORMAT
from router.upstreams.retry import CallGuard, Retryable, status_error

T = TypeVar("T")
Transport = Literal["aiohttp", "httpx"]


def _dropped(exc: BaseException) -> bool:
    """A connection lost or refused under the aiohttp transport, which the SDK's vendored
    transport reports as a connect *timeout* (it maps every `aiohttp.ClientConnectionError` to
    `httpx.ConnectTimeout`); the cause chain still holds aiohttp's own exception."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
            cause, aiohttp.ServerTimeoutError
        ):
            return True
        cause = cause.__cause__
    return False


def translate(exc: Exception, name: str) -> Exception:
    """Map an `openai` SDK exception to our hierarchy."""
    if isinstance(exc, openai.APITimeoutError) and not _dropped(exc):
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



def _reasoning(message: dict[str, Any]) -> str | None:
    """Thinking returned apart from the answer: `reasoning_content` (vLLM, DeepSeek) or
    `reasoning` (some OpenAI-compatible servers)."""
    value = message.get("reasoning_content") or message.get("reasoning")
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
        transport: Transport = "aiohttp",
    ) -> None:
        self.name = name
        self.model = model
        self.prompt_format = prompt_format or DEFAULT_FORMAT  # raw prompts: see .prompting
        self.capabilities = capabilities or Capabilities()
        if transport not in ("aiohttp", "httpx"):
            raise ValueError(f"unknown transport {transport!r}; known: aiohttp, httpx")
        self.transport = transport
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            timeout=timeout_s,
            max_retries=0,
            # None: the SDK's own httpx2 client
            http_client=openai.DefaultAioHttpClient() if transport == "aiohttp" else None,
        )
        self._post: JSONPost | None = None
        if transport == "aiohttp":
            headers = {**self._client.default_headers, **self._client.auth_headers}
            self._post = JSONPost(
                name, str(self._client.base_url),
                {k: v for k, v in headers.items() if isinstance(v, str)},
                timeout_s=timeout_s, max_connections=max_concurrency,
            )
        self._guard = CallGuard(
            name, max_concurrency=max_concurrency, max_retries=max_retries, metrics=metrics
        )
        self._count_choice_tokens = count_choice_tokens
        self._extra_body = dict(extra_body or {})

    async def aclose(self) -> None:
        if self._post is not None:
            await self._post.aclose()
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

    def _payload(self, r: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The request body as the API documents it (no SDK transform, no model objects)."""
        body = self._common(r)
        body.update(body.pop("extra_body", None) or {})
        want_logprobs = r.logprobs or self._count_choice_tokens
        if r.prompt is not None:
            body["prompt"] = r.prompt
            if want_logprobs:
                body["logprobs"] = 1
            return "/completions", body
        body["messages"] = self._chat_messages(r)
        if want_logprobs:
            body["logprobs"] = True
        if r.reasoning_effort:
            body["reasoning_effort"] = r.reasoning_effort
        return "/chat/completions", body

    async def _generate_once(self, r: GenerationRequest) -> Generation:
        path, body = self._payload(r)
        try:
            return self._parse(r, await self._answer(path, body))
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise UpstreamError(f"upstream {self.name!r} sent a malformed response") from exc

    async def _answer(self, path: str, body: dict[str, Any]) -> Any:
        """The decoded JSON answer of one non-streaming call."""
        if self._post is not None:
            return await self._post(path, body)
        # the SDK's raw path: no request transform, no response models
        raw = await self._sdk(
            lambda: self._client.post(path, cast_to=bytes, content=jsonfast.dumps(body))
        )
        return jsonfast.loads(raw)

    def _parse(self, r: GenerationRequest, resp: dict[str, Any]) -> Generation:
        chat = r.prompt is None
        choices = [
            (
                (c["message"].get("content") or "") if chat else (c.get("text") or ""),
                c.get("finish_reason"),
                _logprobs(c.get("logprobs")),
                _reasoning(c["message"]) if chat else None,
            )
            for c in resp["choices"]
        ]
        if not choices:
            raise UpstreamError(f"upstream {self.name!r} returned no choices")
        usage = resp.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        reported = int(usage.get("completion_tokens") or 0)
        details = usage.get("completion_tokens_details") or {}
        reasoning = int(details.get("reasoning_tokens") or 0)
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
            model=str(resp.get("model") or self.model),
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


def _logprobs(lp: Any) -> list[float] | None:
    """Per-token log-probabilities of a choice: chat `content[].logprob`, or completions
    `token_logprobs` (llama.cpp answers completions in the chat shape, also handled)."""
    if not isinstance(lp, dict):
        return None
    content = lp.get("content")
    if content:
        return [float(t["logprob"]) for t in content]
    token_logprobs = lp.get("token_logprobs")
    if token_logprobs:
        return [float(x) for x in token_logprobs if x is not None]
    return None
