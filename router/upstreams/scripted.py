"""A scripted `Upstream`: answers come from a function of the request, in process.

For tests and for users who want to run the router without a model (the way httpx ships
`MockTransport`): pass one to `create_app(upstreams={"model-name": ScriptedUpstream(...)})`.

    def handler(request: GenerationRequest) -> str:
        return "The answer is 42."

    up = ScriptedUpstream(handler)

Usage is reported the way a real provider reports it: prompt tokens counted over everything
the request sends (messages, raw prompt, prefill) at `chars_per_token`, completion tokens over
each choice's text (whitespace-separated words unless `count` says otherwise), one call per
`generate`. Every request is kept in `requests`, and the usage reported so far in `usage`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    StreamDelta,
    Usage,
)

Handler = Callable[[GenerationRequest], str]


def _words(text: str) -> int:
    return len(text.split())


def _default(request: GenerationRequest) -> str:
    return "scripted answer"


@dataclass
class ScriptedUpstream:
    """An `Upstream` whose answers come from `handler(request)`, one call per choice."""

    handler: Handler = _default
    name: str = "scripted"
    model: str = "scripted-model"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=True, completions=True, n=True, prefill=True)
    )
    delay_s: float = 0.0
    chars_per_token: float = 4.0  # what the prompt costs, as a tokenizer would count it
    count: Callable[[str], int] = _words  # completion tokens of a choice's text
    requests: list[GenerationRequest] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)  # everything it has reported, summed

    def prompt_tokens(self, request: GenerationRequest) -> int:
        chars = sum(len(m.content) + 4 for m in request.messages)
        chars += len(request.prompt or "") + len(request.prefill or "")
        return math.ceil(chars / self.chars_per_token)

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        texts = [self.handler(request) for _ in range(request.n)]
        choices = tuple(Choice(text=t, completion_tokens=self.count(t)) for t in texts)
        usage = Usage(self.prompt_tokens(request), sum(c.completion_tokens for c in choices),
                      calls=1)
        self.usage = self.usage + usage
        return Generation(choices=choices, usage=usage, model=self.model)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        gen = await self.generate(request)
        words = gen.choices[0].text.split(" ")
        for i, word in enumerate(words):
            yield StreamDelta(text=word if i == 0 else " " + word)
        yield StreamDelta(finish_reason="stop", usage=gen.usage)

    async def aclose(self) -> None:
        return None


__all__ = ["Handler", "ScriptedUpstream"]
