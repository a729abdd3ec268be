"""Streaming: real token streaming for single-sample plans; keep-alives during search.

`events()` yields `Text` pieces, `KeepAlive` ticks while a search strategy works, and one final
`Done` with the settled `Outcome`. The API layer turns them into OpenAI or Anthropic SSE.
A failure after the first byte becomes an `Failed` event (the reservation is released).

A client that hangs up mid-stream of tokens is billed for what the upstream had streamed until
then (its reported usage, else the prompt estimate and one token a piece, as for a stream the
deadline cut), and the rest of the reservation is let go: the tokens were generated, and
hanging up before the last chunk must not make an answer free. A search that the client leaves
before its answer is cancelled and billed its call log (`router.calllog`: what its finished
calls reported, and the estimate of each call the cancellation cut), so hanging up cannot
spend upstream compute past a tenant's caps either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from router.calllog import CallRecord
from router.errors import RouterError, UpstreamError
from router.limits import no_answer
from router.outcome import Outcome, Prepared
from router.pipeline import bill, finish, record_outcome, release, run, settle
from router.state import AppState
from router.upstreams.base import Usage
from router.verification import problem_for
from strategies import Result, StreamsTokens
from strategies.generator import UpstreamGenerator
from strategies.think import ThinkFilter, reasoning_share

log = structlog.get_logger(__name__)

CHUNK_CHARS = 48  # a selected answer is sent in pieces of about this size
ESTIMATED_NOTE = ("usage estimated: the deadline cut the stream before the upstream reported "
                  "it (prompt from the router's estimate, one token per streamed piece)")
GONE_NOTE = ("the client went away mid-stream: billed for what the upstream had streamed by "
             "then (its reported usage, else estimated as for a stream the deadline cut)")


@dataclass
class Received:
    """What a token stream has had from the upstream so far: the bill if the client goes."""

    started: bool = False  # the upstream call went out
    pieces: int = 0
    usage: Usage | None = None  # as the upstream reported it
    done: bool = False  # the stream ended and its own settle runs
    search: asyncio.Task[list[Result]] | None = None  # a search strategy's run


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
    received = Received()
    try:
        if streams_tokens(prepared):
            async for event in _token_stream(state, prepared, received):
                if isinstance(event, Done):
                    settled = True
                yield event
        else:
            async for event in _search_stream(state, prepared, received):
                if isinstance(event, Done):
                    settled = True
                yield event
    except RouterError as exc:
        yield Failed(exc)
    except Exception:
        yield Failed(UpstreamError("the upstream stream failed"))
    except (GeneratorExit, asyncio.CancelledError):  # the client went away
        if not settled and not received.done:
            settled = bill_gone(state, prepared, received)  # never suspends, so it runs
        raise
    finally:
        # once `done`, the stream's own settle has billed (a deadline with no answer too):
        # a release now could reach Redis first and void that settle
        if not settled and not received.done:
            await release(state, prepared)


def bill_gone(state: AppState, prepared: Prepared, received: Received) -> bool:
    """Bill a stream whose client hung up; False when no upstream call went out (then the
    reservation is released). A token stream: what the upstream had sent (`Received`). A
    search: cancelled, then its call log, once the cancellation has reached every call."""
    search = received.search
    if search is not None:
        search.cancel()
        search.add_done_callback(lambda task: _bill_calls(state, prepared, task))
        return True
    if not received.started:
        return False
    d = prepared.decision
    usage = received.usage or Usage(d.prompt_tokens, received.pieces, 0, 1)
    outcome = Outcome(
        request_id=prepared.request_id,
        decision=d,
        texts=[],
        finish_reasons=[],  # nothing to cache
        usage=usage,
        cost_usd=0.0,
        cache="miss" if prepared.cache_key else "bypass",
        overhead_ms=0.0,
        candidates=1,
        notes=(*d.notes, GONE_NOTE),
        revision=prepared.loaded.revision,
        anytime=True,
        stopped="client",
    )
    bill(state, prepared, outcome)
    record_outcome(state, prepared, outcome)
    log.info("stream_client_gone", request_id=prepared.request_id,
             tenant=prepared.tenant.name, cost_usd=outcome.cost_usd,
             tokens=usage.total_tokens, estimated=received.usage is None)
    return True


def _bill_calls(state: AppState, prepared: Prepared, task: asyncio.Task[list[Result]]) -> None:
    """Commit a cancelled search's call log against its reservation (released if empty)."""
    if not task.cancelled():
        task.exception()  # retrieved here: the client that would have seen it is gone
    calls = prepared.calls
    usd = sum(c.cost_usd for c in calls)
    tokens = sum(c.prompt_tokens + c.completion_tokens for c in calls)
    d = prepared.decision
    if prepared.reservation is not None:
        if calls:
            state.budgets.settle_later(prepared.reservation, usd, tokens, d.tier_label,
                                       d.strategy)
        else:
            state.budgets.release_later(prepared.reservation)
    if usd:
        state.metrics.spend.labels(tenant=prepared.tenant.name, tier=d.tier_label).inc(usd)
    log.info("stream_client_gone", request_id=prepared.request_id,
             tenant=prepared.tenant.name, cost_usd=usd, tokens=tokens, calls=len(calls),
             estimated=sum(c.estimated for c in calls))


async def _token_stream(
    state: AppState, prepared: Prepared, received: Received
) -> AsyncIterator[Event]:
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
    received.started = True
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
                received.pieces += 1
                shown = answer_only.feed(delta.text)
                if trim and not shown_pieces:  # as `sample()` does
                    shown = shown.lstrip()
                if shown:
                    shown_pieces.append(shown)
                    yield Text(shown)
            if delta.usage is not None:
                usage = received.usage = delta.usage
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
        # traced: no strategy events (one call, streamed), but `ttc.call_log` comes with it
        traces=[{"events": [], "streamed_pieces": len(pieces)}] if prepared.call.trace else None,
    )
    received.done = True  # from here on this stream settles itself
    outcome = await settle(state, prepared, outcome)
    if estimated:  # the call reported nothing, so the log has no entry: its estimate, billed
        own = prepared.loaded.policy.models[d.model].price.to_price()  # in `usage` above
        outcome.calls.append(CallRecord(d.model, "generation", usage.prompt_tokens,
                                        usage.completion_tokens + usage.reasoning_tokens,
                                        own.cost(usage), estimated=True))
    if (error := no_answer(outcome.texts, stopped, d)) is not None:
        raise error
    yield Done(outcome)


async def _search_stream(
    state: AppState, prepared: Prepared, received: Received
) -> AsyncIterator[Event]:
    task: asyncio.Task[list[Result]] = asyncio.create_task(run(state, prepared))
    received.search = task
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
    received.done = True  # from here on this stream settles itself
    outcome = await finish(state, prepared, results)
    text = outcome.texts[0] if outcome.texts else ""
    for i in range(0, len(text), CHUNK_CHARS):
        yield Text(text[i : i + CHUNK_CHARS])
    yield Done(outcome)
