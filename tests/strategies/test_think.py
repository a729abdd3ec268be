"""Thinking kept apart from the answer in every upstream shape, counted as reasoning tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    Message,
    Usage,
)
from strategies import REGISTRY, Budget, Problem
from strategies.generator import UpstreamGenerator, counted_thinking
from strategies.think import ThinkFilter, reasoning_share, split_thinking
from tests.fakes import ScriptedUpstream

Q = Problem(messages=(Message("user", "What is 6*7?"),))


@pytest.mark.parametrize(
    ("text", "reasoning", "answer"),
    [
        ("<think>6*7 is 42</think>The answer is 42.", "6*7 is 42", "The answer is 42."),
        ("  <think>\nhm\n</think>\n\n42", "hm", "42"),  # inline, with whitespace
        ("6*7 is 42</think>42", "6*7 is 42", "42"),  # the template opened <think>
        (
            "<think>still thinking when the budget ran out",
            "still thinking when the budget ran out",
            "",
        ),
        ("no tags at all", None, "no tags at all"),
    ],
)
def test_split_thinking_shapes(text: str, reasoning: str | None, answer: str) -> None:
    assert split_thinking(text) == (reasoning, answer)


def _stream(f: ThinkFilter, text: str, size: int = 3) -> str:
    out = "".join(f.feed(text[i : i + size]) for i in range(0, len(text), size))
    return out + f.finish()


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_the_stream_filter_shows_the_answer_only(size: int) -> None:
    inline = ThinkFilter()
    assert _stream(inline, "<think>a b c</think>The answer.", size) == "The answer."
    assert inline.reasoning == "a b c"
    template = ThinkFilter(template=True)
    assert _stream(template, "a b c</think>\nThe answer.", size) == "The answer."
    plain = ThinkFilter()
    assert _stream(plain, "<thin is not a tag", size) == "<thin is not a tag"
    assert _stream(ThinkFilter(), "<think>cut off", size) == ""
    assert _stream(ThinkFilter(template=True), "no thinking came", size) == "no thinking came"


def test_reasoning_share_and_counted_thinking() -> None:
    assert reasoning_share("abcd", "abcdefghijkl", 16) == 12
    assert reasoning_share("abcd", None, 16) == 0
    inline = Generation(
        (Choice("<think>" + "x" * 30 + "</think>" + "y" * 10, completion_tokens=20),),
        Usage(5, 20, calls=1),
    )
    u = counted_thinking(inline)
    assert (u.completion_tokens, u.reasoning_tokens) == (5, 15)
    apart = Generation(
        (Choice("y" * 10, completion_tokens=40, reasoning="x" * 30),), Usage(5, 40, calls=1)
    )
    assert counted_thinking(apart).reasoning_tokens == 30
    reported = Generation(
        (Choice("<think>x</think>y", completion_tokens=9),), Usage(5, 6, 3, calls=1)
    )
    assert counted_thinking(reported) == reported.usage  # the upstream's own count wins


@dataclass
class ThinkingUpstream(ScriptedUpstream):
    """A chat upstream with native thinking that returns its thinking apart (like Anthropic
    blocks or `reasoning_content`)."""

    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=True, thinking=True)
    )

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        choice = Choice("42", completion_tokens=1, reasoning="six sevens are forty-two")
        return Generation((choice,), Usage(10, 1, 6, calls=1))


async def test_native_thinking_answer_only_and_reasoning_kept() -> None:
    up = ThinkingUpstream()
    params = {"mode": "native", "budget_tokens": 2048, "system_prompt": "default"}
    result = await REGISTRY["thinking"].run(Q, UpstreamGenerator(up), None, params, Budget())
    assert result.text == "42" and result.reasoning == "six sevens are forty-two"
    assert result.usage.reasoning_tokens == 6
    sent = up.requests[0]
    assert sent.thinking_budget == 2048
    assert sent.messages[0].role == "system" and "<think>" in sent.messages[0].content


async def test_plain_mode_strips_inline_thinking() -> None:
    up = ScriptedUpstream(
        handler=lambda r: "<think>six sevens</think>42",
        capabilities=Capabilities(chat=True),
    )
    result = await REGISTRY["thinking"].run(Q, UpstreamGenerator(up), None, {}, Budget())
    assert result.text == "42" and result.reasoning == "six sevens"
    assert result.usage.reasoning_tokens > 0  # the thinking words were counted as reasoning
    assert up.requests[0].messages == Q.messages  # no system prompt unless asked


async def test_force_mode_with_a_template_that_opens_think() -> None:
    """The template opened <think>: the first call's text has no start tag, yet it is
    thinking; the answer is the continuation after the end tag."""

    def handler(r: GenerationRequest) -> str:
        return "42" if r.prompt and "</think>" in r.prompt else "six sevens"

    caps = Capabilities(chat=False, completions=True, think_tags=True)
    up = ScriptedUpstream(handler=handler, capabilities=caps)
    params = {"mode": "force", "budget_tokens": 64, "answer_max_tokens": 8}
    result = await REGISTRY["thinking"].run(Q, UpstreamGenerator(up), None, params, Budget())
    assert result.text == "42" and result.reasoning == "six sevens"
    assert "thinking ended within the budget" in result.notes
    assert result.usage.reasoning_tokens == 2  # the thinking call's words
