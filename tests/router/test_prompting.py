"""Raw prompts for completion-only upstreams: the format renders turns and ends the answer."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from router.upstreams.base import Capabilities, GenerationRequest, Message
from router.upstreams.prompting import PROMPT_FORMATS, prompt_format
from strategies.base import Problem
from strategies.generator import UpstreamGenerator
from tests.fakes import ScriptedUpstream

CONVERSATION = (
    Message("system", "Answer in one word."),
    Message("user", "What is the capital of France?"),
    Message("assistant", "Paris"),
    Message("user", "And of Italy?"),
)


@dataclass
class CompletionOnly(ScriptedUpstream):
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=False, completions=True, n=True)
    )
    prompt_format: str = "qa"


async def _request(upstream: ScriptedUpstream, *messages: Message) -> GenerationRequest:
    await UpstreamGenerator(upstream).sample(
        Problem(messages=messages), 1, temperature=0.0, max_tokens=8, stop=("###",)
    )
    return upstream.requests[-1]


async def test_qa_format_renders_turns_and_stops_at_the_end_of_the_line() -> None:
    request = await _request(CompletionOnly(), *CONVERSATION)
    assert request.prompt == (
        "Answer in one word.\nQ: What is the capital of France?\nA: Paris\nQ: And of Italy?\nA:"
    )
    assert request.stop == ("###", "\n")  # the caller's stops first, then the format's


@pytest.mark.parametrize(
    ("text", "verbatim"),
    [
        ("17+25=42\n31+48=79\n56+27=", True),
        ("Q: What is the capital of France?\nA:", True),
        ("The capital of France is", True),
        ("What is the capital of France?", False),
        ("Name a prime above 100.", False),
        ("Say hello!  ", False),
    ],
)
async def test_qa_format_continues_open_prompts_and_wraps_questions(
    text: str, verbatim: bool
) -> None:
    request = await _request(CompletionOnly(), Message("user", text))
    expected = text if verbatim else f"Q: {text.strip()}\nA:"
    assert request.prompt == expected


async def test_transcript_format_stops_before_the_next_turn() -> None:
    request = await _request(CompletionOnly(prompt_format="transcript"), *CONVERSATION)
    assert request.prompt is not None
    assert request.prompt.endswith("User: And of Italy?\n\nAssistant:")
    assert request.prompt.startswith("System: Answer in one word.\n\nUser: ")
    assert {"\nUser:", "\nAssistant:"} <= set(request.stop)
    lone = await _request(CompletionOnly(prompt_format="transcript"), Message("user", "Hi."))
    assert lone.prompt == "Hi."  # a lone message is sent as it is


async def test_chat_upstreams_get_messages_without_format_stops() -> None:
    request = await _request(ScriptedUpstream(), *CONVERSATION)
    assert request.prompt is None and request.messages == CONVERSATION
    assert request.stop == ("###",)


def test_registry_names_and_default() -> None:
    assert set(PROMPT_FORMATS) == {"transcript", "qa"}
    assert prompt_format(None) is PROMPT_FORMATS["transcript"]


async def test_answers_after_a_format_label_lose_the_label_space() -> None:
    upstream = CompletionOnly(handler=lambda request: " Paris")
    generator = UpstreamGenerator(upstream)
    question = Problem(messages=(Message("user", "What is the capital of France?"),))
    batch = await generator.sample(question, 2, temperature=0.0, max_tokens=8)
    assert [s.text for s in batch.samples] == ["Paris", "Paris"]
    continuation = Problem(messages=(Message("user", "Q: What is the capital of France?\nA:"),))
    batch = await generator.sample(continuation, 1, temperature=0.0, max_tokens=8)
    assert batch.samples[0].text == " Paris"  # the client's own prompt: continued as is
