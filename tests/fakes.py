"""In-process implementations of our seams for unit tests (no SDK patching)."""

from __future__ import annotations

import asyncio
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


@dataclass
class ScriptedUpstream:
    """An `Upstream` whose answers come from a handler function of the request."""

    handler: Handler = lambda request: "scripted answer"
    name: str = "scripted"
    model: str = "scripted-model"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=True, completions=True, n=True, prefill=True)
    )
    delay_s: float = 0.0
    requests: list[GenerationRequest] = field(default_factory=list)

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        texts = [self.handler(request) for _ in range(request.n)]
        choices = tuple(Choice(text=t, completion_tokens=len(t.split())) for t in texts)
        return Generation(
            choices=choices,
            usage=Usage(10, sum(c.completion_tokens for c in choices), calls=1),
            model=self.model,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        gen = await self.generate(request)
        words = gen.choices[0].text.split(" ")
        for i, word in enumerate(words):
            yield StreamDelta(text=word if i == 0 else " " + word)
        yield StreamDelta(finish_reason="stop", usage=gen.usage)

    async def aclose(self) -> None:
        return None
