"""`AnthropicUpstream` driving the real `anthropic` SDK against the fake Messages API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from bench.stub_upstream import ServerThread
from router.errors import InvalidRequest, UpstreamError
from router.upstreams.anthropic_api import AnthropicUpstream, rejoin, split_prefill
from router.upstreams.base import GenerationRequest, Message
from strategies import REGISTRY, Budget, Problem
from strategies.generator import UpstreamGenerator
from tests.router.upstreams.fake_anthropic import FakeAnthropic, Reply, api_key

QUESTION = (Message("system", "Be brief."), Message("user", "What is 2+2?"))
THOUGHT = "two and two make four so the answer is four"


def _reply(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]
    if last["role"] == "assistant":  # prefill: continue the partial solution
        done = str(last["content"])
        if "Step 2" in done:
            return Reply("\nAnswer: 4.\n")
        if "Step 1" in done:
            return Reply("\nStep 2: so 4.\n")
        return Reply("Step 1: add.\n")
    if "step by step" in str(last["content"]):
        return Reply("Step 1: add.\n")
    return Reply("The answer is 4.", thinking=THOUGHT)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeAnthropic, str]]:
    app = FakeAnthropic(reply=_reply)
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def upstream(fake: tuple[FakeAnthropic, str]) -> Iterator[AnthropicUpstream]:
    app, url = fake
    app.requests.clear()
    app.headers.clear()
    app.faults.clear()
    up = AnthropicUpstream(
        "claude", model="claude-test", api_key="sk-ant-test", base_url=url, max_retries=2
    )
    yield up


async def test_non_streaming_text_usage_and_request_shape(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    gen = await upstream.generate(
        GenerationRequest(messages=QUESTION, max_tokens=50, temperature=0.3, stop=("STOP",))
    )
    app = fake[0]
    body = app.requests[-1]
    assert body["model"] == "claude-test" and body["max_tokens"] == 50
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert "temperature" not in body  # the SDK has no sampling parameters
    assert body["stop_sequences"] == ["STOP"]
    assert "thinking" not in body
    assert api_key(app.headers[-1]) == "sk-ant-test"
    choice = gen.choices[0]
    assert choice.text == "The answer is 4." and choice.reasoning is None
    assert choice.finish_reason == "stop" and choice.completion_tokens == 4
    assert gen.usage.prompt_tokens == 5 and gen.usage.completion_tokens == 4
    assert gen.usage.reasoning_tokens == 0 and gen.usage.calls == 1


async def test_stop_sequence_and_max_tokens_map_to_finish_reasons(
    upstream: AnthropicUpstream,
) -> None:
    cut = await upstream.generate(GenerationRequest(messages=QUESTION, max_tokens=2))
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].text == "The answer"
    stopped = await upstream.generate(
        GenerationRequest(messages=QUESTION, max_tokens=50, stop=("is",))
    )
    assert stopped.choices[0].finish_reason == "stop" and stopped.choices[0].text == "The answer "


async def test_thinking_budget_blocks_and_billed_thinking_tokens(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    gen = await upstream.generate(
        GenerationRequest(messages=QUESTION, max_tokens=3000, thinking_budget=2048)
    )
    body = fake[0].requests[-1]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 3000  # thinking and answer share the API's max_tokens
    choice = gen.choices[0]
    assert choice.text == "The answer is 4."  # thinking never leaks into the answer
    assert choice.reasoning == THOUGHT
    assert gen.usage.reasoning_tokens == len(THOUGHT.split())
    assert gen.usage.completion_tokens == 4


async def test_thinking_budget_is_kept_within_the_api_limits(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    await upstream.generate(
        GenerationRequest(messages=QUESTION, max_tokens=3000, thinking_budget=5000)
    )
    assert fake[0].requests[-1]["thinking"]["budget_tokens"] == 1500  # below max_tokens
    await upstream.generate(
        GenerationRequest(messages=QUESTION, max_tokens=1500, thinking_budget=1600)
    )
    assert "thinking" not in fake[0].requests[-1]  # half of 1500 is under the 1024 floor


async def test_fake_refuses_what_the_api_refuses(fake: tuple[FakeAnthropic, str]) -> None:
    """The limits the upstream works around are real in the fake (each a 400)."""
    client = anthropic.AsyncAnthropic(api_key="k", base_url=fake[1], max_retries=0)
    user = {"role": "user", "content": "hi"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4000}}, "must be greater than"),
        ({"messages": [user, {"role": "assistant", "content": "Step 1\n\n"}]}, "trailing"),
        ({"stop_sequences": ["\n\n"]}, "non-whitespace"),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "extra_body": {"temperature": 0.5},
            },
            "temperature",
        ),
    ]
    for extra, message in cases:
        kwargs: dict[str, Any] = {"model": "m", "max_tokens": 2000, "messages": [user], **extra}
        with pytest.raises(anthropic.BadRequestError, match=message) as info:
            await client.messages.create(**kwargs)
        assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    await client.close()


async def test_streaming_text_deltas_usage_and_no_thinking_in_the_text(
    upstream: AnthropicUpstream,
) -> None:
    deltas = [
        d
        async for d in upstream.stream(
            GenerationRequest(messages=QUESTION, max_tokens=3000, thinking_budget=1024)
        )
    ]
    text = "".join(d.text for d in deltas)
    assert text == "The answer is 4."
    assert len([d for d in deltas if d.text]) == 2  # two words per delta
    final = deltas[-1]
    assert final.finish_reason == "stop" and final.usage is not None
    assert final.usage.prompt_tokens == 5 and final.usage.completion_tokens == 4
    assert final.usage.reasoning_tokens == len(THOUGHT.split())


def test_stream_events_come_in_the_documented_order(fake: tuple[FakeAnthropic, str]) -> None:
    body = {
        "model": "m",
        "max_tokens": 3000,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "hi"}],
    }
    r = httpx.post(f"{fake[1]}/v1/messages", json=body, headers={"x-api-key": "k"})
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    deltas = [line for line in r.text.splitlines() if '"content_block_delta"' in line]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    assert '"signature_delta"' in deltas[len(THOUGHT.split()) // 2]  # after the thinking


async def test_sdk_stream_helper_accumulates_thinking_with_its_signature(
    fake: tuple[FakeAnthropic, str],
) -> None:
    """The SDK's own accumulator rebuilds the message from the fake's events (it raises on
    events out of order)."""
    client = anthropic.AsyncAnthropic(api_key="k", base_url=fake[1], max_retries=0)
    async with client.messages.stream(
        model="m",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        message = await stream.get_final_message()
    await client.close()
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT
    assert thinking.signature.startswith("sig-")
    assert text.type == "text" and text.text == "The answer is 4."
    assert message.usage.output_tokens == len(THOUGHT.split()) + 4


def test_prefill_strip_and_rejoin() -> None:
    assert split_prefill("Step 1: add.\n\n") == ("Step 1: add.", "\n\n")
    assert rejoin("\n\n", "\n\nStep 2") == "Step 2"  # the model wrote the delimiter again
    assert rejoin("\n\n", "\nStep 2") == "Step 2"  # part of it
    assert rejoin("\n\n", "Step 2") == "Step 2"  # none of it
    assert rejoin("", " more") == " more"  # nothing stripped: untouched


async def test_prefill_continuation_strips_trailing_whitespace(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    gen = await upstream.generate(
        GenerationRequest(messages=QUESTION, prefill="Step 1: add.\n", max_tokens=50)
    )
    assert fake[0].requests[-1]["messages"][-1] == {
        "role": "assistant",
        "content": "Step 1: add.",
    }
    assert gen.choices[0].text == "Step 2: so 4.\n"  # continues "Step 1: add.\n"


async def test_step_search_runs_on_prefill_with_a_newline_delimiter(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    """Beam search continues partial solutions ending in the delimiter ".\\n": every prefill
    the fake received was stripped, and the chain reads as the model wrote it."""

    class Last:
        async def score(self, problem: Problem, candidates: Any) -> list[list[float]]:
            return [[1.0] * len(c) for c in candidates]

    params = {
        "width": 1,
        "expansions": 1,
        "max_depth": 4,
        "step_delimiter": ".\n",
        "answer_format": "number",
    }
    question = (Message("user", "What is 2+2? Go step by step."),)
    result = await REGISTRY["beam_search"].run(
        Problem(messages=question), UpstreamGenerator(upstream), Last(), params, Budget()
    )
    prefills = [b["messages"][-1]["content"] for b in fake[0].requests[1:]]
    assert prefills == ["Step 1: add.", "Step 1: add.\nStep 2: so 4."]
    assert result.text == "Step 1: add.\nStep 2: so 4.\nAnswer: 4"
    assert result.answer == "4"


async def test_400_is_the_clients_fault_and_is_not_retried(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    with pytest.raises(InvalidRequest, match="non-whitespace"):
        await upstream.generate(GenerationRequest(messages=QUESTION, stop=(" ",)))
    assert fake[0].requests == []


async def test_429_waits_for_retry_after_then_succeeds(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    fake[0].fail(429, retry_after="0.4")
    began = time.monotonic()
    gen = await upstream.generate(GenerationRequest(messages=QUESTION, max_tokens=50))
    assert time.monotonic() - began >= 0.4  # the header's wait, not the 0.25 s backoff
    assert gen.choices[0].text == "The answer is 4."
    assert len(fake[0].requests) == 2


async def test_529_overloaded_is_retried_then_gives_up(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    fake[0].fail(529)
    gen = await upstream.generate(GenerationRequest(messages=QUESTION, max_tokens=50))
    assert gen.choices[0].text == "The answer is 4." and len(fake[0].requests) == 2
    fake[0].requests.clear()
    fake[0].fail(529, count=3)
    with pytest.raises(UpstreamError, match="529"):
        await upstream.generate(GenerationRequest(messages=QUESTION, max_tokens=50))
    assert len(fake[0].requests) == 3  # one try and max_retries=2 retries


async def test_error_event_mid_stream_becomes_an_upstream_error(
    upstream: AnthropicUpstream, fake: tuple[FakeAnthropic, str]
) -> None:
    fake[0].fail("stream_error")
    seen: list[str] = []
    with pytest.raises(UpstreamError):
        async for d in upstream.stream(GenerationRequest(messages=QUESTION, max_tokens=50)):
            seen.append(d.text)
    assert seen == ["The answer"]
