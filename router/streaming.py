"""Streaming: real token streaming for single-sample plans; keep-alives during search.

`events()` yields `Text` pieces, `KeepAlive` ticks while a search strategy works, and one final
`Done` with the settled `Outcome`. The API layer turns them into OpenAI or Anthropic SSE.
A failure after the first byte becomes an `Failed` event (the reservation is released).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from router.errors import RouterError, UpstreamError
from router.limits import no_answer
from router.pipeline import Outcome, Prepared, finish, release, run, settle
from router.state import AppState
from router.upstreams.base import Usage
from router.verification import problem_for
from strategies import Result, StreamsTokens
from strategies.generator import UpstreamGenerator
from strategies.think import ThinkFilter, reasoning_share

CHUNK_CHARS = 48  # a selected answer is sent in pieces of about this size
ESTIMATED_NOTE = ("usage estimated: the deadline cut the stream before the upstream reported "
                  "it (prompt from the router's estimate, one token per streamed piece)")


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class KeepAlive:
    pass


@dataclass(frozen=True)
class Done:
    outcome: Outcome


@dataclass(frozen=True)
class Failed:
    error: RouterError


Event = Text | KeepAlive | Done | Failed


def streams_tokens(prepared: Prepared) -> bool:
    """One choice of a strategy that answers with one sample (`StreamsTokens`): its tokens
    go to the client as they come."""
    return isinstance(prepared.decision.strategy_impl, StreamsTokens) and prepared.call.n == 1


async def events(state: AppState, prepared: Prepared) -> AsyncIterator[Event]:
    settled = False
    try:
        if streams_tokens(prepared):
            async for event in _token_stream(state, prepared):
                if isinstance(event, Done):
                    settled = True
                yield event
        else:
            async for event in _search_stream(state, prepared):
                if isinstance(event, Done):
                    settled = True
                yield event
    except RouterError as exc:
        yield Failed(exc)
    except Exception:
        yield Failed(UpstreamError("the upstream stream failed"))
    finally:
        if not settled:
            await release(state, prepared)


async def _token_stream(state: AppState, prepared: Prepared) -> AsyncIterator[Event]:
    d = prepared.decision
    upstream = prepared.runtime.upstream(d.model)
    generator = UpstreamGenerator(upstream)
    impl = d.strategy_impl
    params = impl.stream_params(d.params) if isinstance(impl, StreamsTokens) else d.params
    request = generator.request_for(
        problem_for(prepared.call),
        "",
        1,
        float(params.get("temperature", 0.0)),
        d.max_tokens,
        tuple(params.get("stop", ())),
        params.get("seed"),
    )
    trim = generator.trims_lead(problem_for(prepared.call))  # the label's space
    pieces: list[str] = []
    usage = Usage()  # calls == 0 until the upstream reports usage
    finish_reason = "stop"
    began = time.perf_counter()
    stopped: str | None = None
    answer_only = ThinkFilter(template=upstream.capabilities.think_tags)  # thinking held back
    shown_pieces: list[str] = []
    deltas = upstream.stream(request)
    try:
        while True:  # the tier's deadline holds here too (router.limits: the contract)
            left = d.deadline_s - (time.perf_counter() - began)
            try:
                async with asyncio.timeout(max(left, 0.0)):  # no task per delta (`wait_for`)
                    delta = await anext(deltas)
            except StopAsyncIteration:
                break
            except TimeoutError:
                stopped, finish_reason = "deadline", "deadline"
                break
            if delta.text:
                pieces.append(delta.text)
                shown = answer_only.feed(delta.text)
                if trim and not shown_pieces:  # as `sample()` does
                    shown = shown.lstrip()
                if shown:
                    shown_pieces.append(shown)
                    yield Text(shown)
            if delta.usage is not None:
                usage = delta.usage
            if delta.finish_reason:
                finish_reason = delta.finish_reason
    finally:
        prepared.clock.upstream_s += time.perf_counter() - began
        closing = getattr(deltas, "aclose", None)
        if closing is not None:
            await closing()
    estimated = usage.calls == 0  # cut (or ended) before the upstream reported usage
    if estimated:
        usage = Usage(d.prompt_tokens, len(pieces), 0, 1)
    rest = answer_only.finish()
    if trim and not shown_pieces:
        rest = rest.lstrip()
    if rest:
        shown_pieces.append(rest)
        yield Text(rest)
    answer, reasoning = "".join(shown_pieces), answer_only.reasoning or None
    thought = (
        0 if usage.reasoning_tokens else reasoning_share(answer, reasoning, usage.completion_tokens)
    )
    usage = Usage(
        usage.prompt_tokens,
        usage.completion_tokens - thought,
        usage.reasoning_tokens + thought,
        usage.calls,
        time.perf_counter() - began,
    )
    outcome = Outcome(
        request_id=prepared.request_id,
        decision=d,
        texts=[answer],
        finish_reasons=[finish_reason],
        reasonings=[reasoning],
        usage=usage,
        cost_usd=0.0,
        cache="miss" if prepared.cache_key else "bypass",
        overhead_ms=0.0,
        candidates=1,
        notes=(*d.notes, ESTIMATED_NOTE) if estimated else d.notes,
        revision=prepared.loaded.revision,
        anytime=stopped is not None,
        stopped=stopped,
    )
    outcome = await settle(state, prepared, outcome)
    if (error := no_answer(outcome.texts, stopped, d)) is not None:
        raise error
    yield Done(outcome)


async def _search_stream(state: AppState, prepared: Prepared) -> AsyncIterator[Event]:
    task: asyncio.Task[list[Result]] = asyncio.create_task(run(state, prepared))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=state.settings.keepalive_s)
            if done:
                break
            yield KeepAlive()
        results = task.result()
    finally:
        if not task.done():
            task.cancel()
    outcome = await finish(state, prepared, results)
    text = outcome.texts[0] if outcome.texts else ""
    for i in range(0, len(text), CHUNK_CHARS):
        yield Text(text[i : i + CHUNK_CHARS])
    yield Done(outcome)
