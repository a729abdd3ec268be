"""The upstream seam: one LLM provider behind two methods.

Every provider (an OpenAI-compatible server, Anthropic, the embedded llama.cpp model, a test
fake) implements `Upstream`. Requests and results are plain dataclasses so strategies and the
pipeline never touch an SDK type. Provider errors are translated into `router.errors` classes
inside the implementation, at this boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Capabilities:
    """What an upstream can do; the policy loader checks strategies against it."""

    chat: bool = True
    completions: bool = False  # raw prompt continuation (/v1/completions)
    n: bool = False  # several choices in one call (shared prompt KV cache)
    logprobs: bool = False
    prefill: bool = False  # continue a partial assistant message
    thinking: bool = False  # extended thinking / reasoning effort
    think_tags: bool = False  # thinking in the text, its template opening <think> in the prompt

    @property
    def continues_partial(self) -> bool:
        """Step-level search needs raw completions or assistant prefill."""
        return self.completions or self.prefill


@dataclass(frozen=True)
class GenerationRequest:
    """One call. Exactly one of `messages` (chat) or `prompt` (raw completion) is set.

    `prefill` continues a partial assistant turn on chat upstreams that support it.
    """

    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    prefill: str | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    thinking_budget: int | None = None
    reasoning_effort: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    calls: int = 0
    upstream_seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.calls + other.calls,
            self.upstream_seconds + other.upstream_seconds,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.reasoning_tokens


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str = "stop"
    completion_tokens: int = 0
    reasoning: str | None = None
    token_logprobs: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Generation:
    """Result of one upstream call. `usage.completion_tokens` sums every choice."""

    choices: tuple[Choice, ...]
    usage: Usage
    model: str = ""


@dataclass(frozen=True)
class StreamDelta:
    """One streamed piece: text, or the final usage/finish reason (text empty)."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


class Upstream(Protocol):
    """An LLM provider bound to one model."""

    name: str
    model: str
    capabilities: Capabilities

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, usage: Usage) -> float:
        out = usage.completion_tokens + usage.reasoning_tokens
        return (usage.prompt_tokens * self.input_per_mtok + out * self.output_per_mtok) / 1e6


__all__ = [
    "Capabilities",
    "Choice",
    "Generation",
    "GenerationRequest",
    "Message",
    "Price",
    "Role",
    "StreamDelta",
    "Upstream",
    "Usage",
]
