"""`UpstreamGenerator`: the `Generator` that strategies use, over any `Upstream`.

Prompt format: chat upstreams get the conversation as messages. Completion-only upstreams
(base models served through `/v1/completions`) get a raw prompt rendered by the upstream's
`prompt_format` (`router.vocab.prompting`), with that format's stop sequences added so the
model ends its turn instead of inventing the next one.

`n > 1` is one call when the upstream supports `n` (the choices share the prompt's KV cache),
otherwise `n` concurrent calls.

`resolve` (optional) looks up another upstream by its policy model name; with it the generator
is a `MultiModelGenerator` and `with_model(name)` returns a generator for that model (the
cascade strategy escalates through it). `with_logprobs()` returns a twin that asks for
per-token log-probabilities and puts them on each `Sample` (a `LogprobGenerator`). `think`
passes a native thinking budget / reasoning effort to upstreams with `Capabilities.thinking`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from router.vocab.errors import PolicyError
from router.vocab.prompting import prompt_format
from router.vocab.upstream import (
    Capabilities,
    Generation,
    GenerationRequest,
    Message,
    Upstream,
    Usage,
)
from strategies.base import Batch, Problem, Sample
from strategies.think import reasoning_share, split_thinking


def render_transcript(messages: Sequence[Message], fmt: str | None = None) -> str:
    """Raw-prompt form of a conversation in prompt format `fmt` (default: `transcript`)."""
    return prompt_format(fmt).render(messages)


def counted_thinking(gen: Generation) -> Usage:
    """The call's usage with its thinking counted as reasoning tokens: as reported when the
    upstream reports any, else estimated per choice by character share (`reasoning_share`) of
    separate reasoning or of `<think>` text."""
    u = gen.usage
    if u.reasoning_tokens:
        return u
    moved = 0
    for c in gen.choices:
        if c.reasoning:
            moved += reasoning_share(c.text, c.reasoning, c.completion_tokens)
        else:
            reasoning, answer = split_thinking(c.text)
            moved += reasoning_share(answer, reasoning, c.completion_tokens)
    moved = min(moved, u.completion_tokens)
    if not moved:
        return u
    return replace(
        u,
        completion_tokens=u.completion_tokens - moved,
        reasoning_tokens=u.reasoning_tokens + moved,
    )


class UpstreamGenerator:
    def __init__(
        self,
        upstream: Upstream,
        *,
        extra_stop: Sequence[str] = (),
        resolve: Callable[[str], Upstream] | None = None,
        logprobs: bool = False,
    ) -> None:
        self.upstream = upstream
        self.capabilities: Capabilities = upstream.capabilities
        self._extra_stop = tuple(extra_stop)
        self._resolve = resolve
        self._logprobs = logprobs

    def with_logprobs(self) -> UpstreamGenerator:
        """This generator, asking for per-token log-probabilities (`Sample.token_logprobs`)."""
        return UpstreamGenerator(
            self.upstream, extra_stop=self._extra_stop, resolve=self._resolve, logprobs=True
        )

    def with_model(self, name: str) -> UpstreamGenerator:
        """A generator for another model of the policy (same prompt handling)."""
        if self._resolve is None:
            raise PolicyError(f"no model resolver: cannot switch to model {name!r}")
        return UpstreamGenerator(
            self._resolve(name), extra_stop=self._extra_stop, resolve=self._resolve
        )

    async def think(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        budget_tokens: int | None = None,
        reasoning_effort: str | None = None,
    ) -> Batch:
        base = self.request_for(problem, "", n, temperature, max_tokens, (), None)
        request = GenerationRequest(
            **{
                **base.__dict__,
                "thinking_budget": budget_tokens,
                "reasoning_effort": reasoning_effort,
            }
        )
        return await self._run(request)

    def request_for(
        self,
        problem: Problem,
        prefix: str,
        n: int,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str],
        seed: int | None,
    ) -> GenerationRequest:
        stops = tuple(dict.fromkeys((*stop, *self._extra_stop)))
        caps = self.capabilities
        if caps.chat and (not prefix or caps.prefill) and not (caps.completions and prefix):
            return GenerationRequest(
                messages=problem.messages,
                prefill=prefix or None,
                n=n,
                temperature=temperature,
                max_tokens=max_tokens,
                stop=stops,
                seed=seed,
                logprobs=self._logprobs,
            )
        fmt = prompt_format(getattr(self.upstream, "prompt_format", None))
        return GenerationRequest(
            prompt=fmt.render(problem.messages) + prefix,
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=tuple(dict.fromkeys((*stops, *fmt.stop))),
            seed=seed,
            logprobs=self._logprobs,
        )

    async def _run(self, request: GenerationRequest) -> Batch:
        failed = 0
        if request.n == 1 or self.capabilities.n:
            gens: list[Generation] = [await self.upstream.generate(request)]
        else:
            single = GenerationRequest(**{**request.__dict__, "n": 1})
            outcomes = await asyncio.gather(
                *(self.upstream.generate(single) for _ in range(request.n)),
                return_exceptions=True,
            )
            gens = [g for g in outcomes if isinstance(g, Generation)]
            errors = [e for e in outcomes if not isinstance(e, Generation)]
            if not gens:  # every call failed: the first error speaks for them
                raise errors[0]
            for e in errors:
                if not isinstance(e, Exception):  # cancellation and the like
                    raise e
            failed = len(errors)
        samples = tuple(
            Sample(
                text=c.text,
                tokens=c.completion_tokens,
                finish_reason=c.finish_reason,
                token_logprobs=c.token_logprobs if request.logprobs else None,
                reasoning=c.reasoning,
            )
            for g in gens
            for c in g.choices
        )
        usage = counted_thinking(gens[0])
        for g in gens[1:]:
            usage = usage + counted_thinking(g)
        return Batch(samples=samples, usage=usage, failed=failed)

    def trims_lead(self, problem: Problem) -> bool:
        """Does a fresh answer follow a turn label the format added (`A:`, `Assistant:`)?
        Its leading whitespace is then formatting, not part of the answer."""
        caps = self.capabilities
        if caps.chat:
            return False
        return not prompt_format(getattr(self.upstream, "prompt_format", None)).verbatim(
            problem.messages
        )

    async def sample(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch:
        batch = await self._run(
            self.request_for(problem, "", n, temperature, max_tokens, stop, seed)
        )
        if not self.trims_lead(problem):
            return batch
        samples = tuple(replace(s, text=s.text.lstrip()) for s in batch.samples)
        return replace(batch, samples=samples)

    async def extend(
        self,
        problem: Problem,
        prefix: str,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
    ) -> Batch:
        if not self.capabilities.continues_partial:
            raise PolicyError(
                f"upstream {self.upstream.name!r} cannot continue a partial solution "
                "(needs completions or prefill)"
            )
        return await self._run(
            self.request_for(problem, prefix, n, temperature, max_tokens, stop, None)
        )
