"""Thinking models end to end: the official clients -> router -> upstream (the fake Anthropic
Messages API for thinking blocks; a scripted upstream for inline `<think>` tags). Clients get
the answer only unless they ask; thinking tokens are counted and billed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.upstreams.base import Capabilities
from tests.fakes import ScriptedUpstream
from tests.router.upstreams.fake_anthropic import FakeAnthropic, Reply

THOUGHT = "six sevens make forty two"
POLICY = """
models:
  claude:
    provider: anthropic
    base_url: {fake}
    model: claude-test
    capabilities: {{chat: true, prefill: true, thinking: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 10.0}}
    max_retries: 0
  r1:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: r1
    capabilities: {{chat: true, think_tags: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 10.0}}
tiers:
  easy: {{strategy: greedy, model: r1, max_tokens: 64}}
  medium: {{strategy: thinking, model: r1, max_tokens: 64}}
  hard: {{strategy: greedy, model: r1, max_tokens: 64}}
  very_hard:
    strategy: thinking
    model: claude
    max_tokens: 3000
    params: {{mode: native, budget_tokens: 2048}}
tenants:
  default: {{allow_tier_hint: true}}
anonymous_tenant: default
cache: {{enabled: false}}
"""


@dataclass
class Served:
    url: str
    fake: FakeAnthropic
    r1: ScriptedUpstream


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from router.app import create_app
    from router.settings import Settings

    fake = FakeAnthropic(reply=lambda body: Reply("The answer is 42.", thinking=THOUGHT))
    r1 = ScriptedUpstream(
        handler=lambda r: f"{THOUGHT}</think>\n\nThe answer is 42.",
        name="r1",
        capabilities=Capabilities(chat=True, think_tags=True),
    )
    tmp = tmp_path_factory.mktemp("thinking")
    with ServerThread(fake) as fake_server:
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY.format(fake=fake_server.url))
        settings = Settings(
            policy_path=policy,
            redis_url=redis_url,
            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
            data_dir=tmp,
        )
        app = create_app(settings, upstreams={"r1": r1}, classifier=FixedClassifier(Tier.EASY))
        with ServerThread(app) as server:
            yield Served(server.url, fake, r1)


def _anthropic(s: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=s.url, api_key="unused", max_retries=0)


def _openai(s: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{s.url}/v1", api_key="unused", max_retries=0)


def test_anthropic_client_gets_thinking_blocks_only_when_it_enables_thinking(
    served: Served,
) -> None:
    client = _anthropic(served)
    ask: dict[str, Any] = {
        "model": "ttc-very-hard",
        "max_tokens": 3000,
        "messages": [{"role": "user", "content": "What is 6*7?"}],
    }
    with_thinking = client.messages.create(
        **ask, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert [b.type for b in with_thinking.content] == ["thinking", "text"]
    thinking, text = with_thinking.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT
    assert text.type == "text" and text.text == "The answer is 42."
    sent = served.fake.requests[-1]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}  # the client's, capped
    words = len(THOUGHT.split()) + 4
    assert with_thinking.usage.output_tokens == words  # thinking billed as output
    plain = client.messages.create(**ask)
    assert [b.type for b in plain.content] == ["text"]
    assert served.fake.requests[-1]["thinking"]["budget_tokens"] == 2048  # the tier's budget


def test_openai_client_gets_the_answer_and_reasoning_tokens(served: Served) -> None:
    raw = _openai(served).chat.completions.with_raw_response.create(
        model="ttc-very-hard", messages=[{"role": "user", "content": "What is 6*7?"}]
    )
    completion = raw.parse()
    message = completion.choices[0].message
    assert message.content == "The answer is 42."
    assert "reasoning_content" not in (message.model_extra or {})
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == len(THOUGHT.split())
    assert usage.completion_tokens == len(THOUGHT.split()) + 4
    cost = float(raw.headers["x-ttc-cost-usd"])
    prompt = usage.prompt_tokens
    assert cost == pytest.approx((prompt * 1.0 + usage.completion_tokens * 10.0) / 1e6)


def test_reasoning_on_request_and_template_thinking_stripped(served: Served) -> None:
    client = _openai(served)
    ask: dict[str, Any] = {"messages": [{"role": "user", "content": "What is 6*7?"}]}
    plain = client.chat.completions.create(model="ttc-medium", **ask)
    assert plain.choices[0].message.content == "The answer is 42."
    asked = client.chat.completions.create(
        model="ttc-medium", extra_headers={"x-ttc-include-reasoning": "true"}, **ask
    )
    assert asked.choices[0].message.content == "The answer is 42."
    assert (asked.choices[0].message.model_extra or {})["reasoning_content"] == THOUGHT
    assert asked.usage is not None and asked.usage.completion_tokens_details is not None
    assert (asked.usage.completion_tokens_details.reasoning_tokens or 0) > 0


def test_streamed_greedy_answer_holds_back_the_thinking(served: Served) -> None:
    stream = _openai(served).chat.completions.create(
        model="ttc-easy",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        usage = chunk.usage or usage
    assert text == "The answer is 42."
    assert usage is not None and usage.completion_tokens_details is not None
    assert (usage.completion_tokens_details.reasoning_tokens or 0) > 0


def test_client_thinking_budget_outside_the_api_limits_is_400(served: Served) -> None:
    client = _anthropic(served)
    for budget, max_tokens in ((512, 3000), (4000, 3000)):
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.create(
                model="ttc-very-hard",
                max_tokens=max_tokens,
                messages=[{"role": "user", "content": "x"}],
                thinking={"type": "enabled", "budget_tokens": budget},
            )
        assert "thinking.budget_tokens" in str(info.value)


def test_scripted_r1_is_not_called_for_the_anthropic_tier(served: Served) -> None:
    before = len(served.r1.requests)
    _anthropic(served).messages.create(
        model="ttc-very-hard", max_tokens=3000, messages=[{"role": "user", "content": "hi"}]
    )
    assert len(served.r1.requests) == before
