"""The LLM-prompt fallback against a scripted upstream: agreement, timeout, garbage, errors."""

from __future__ import annotations

import pytest

from classifier.base import Tier, TierScores
from classifier.fallback import LLMFallback, parse_tier
from router.errors import UpstreamError
from router.metrics import Metrics
from router.upstreams.base import Capabilities, GenerationRequest
from tests.classifier.fakes import ScriptedUpstream

MEDIUM = TierScores.from_probabilities([0.2, 0.45, 0.3, 0.05])


def count(m: Metrics, outcome: str) -> float:
    v = m.registry.get_sample_value("ttc_classifier_fallback_total", {"outcome": outcome})
    return v or 0.0


@pytest.mark.parametrize(
    ("answer", "tier"),
    [
        ("medium", Tier.MEDIUM),
        (" Hard.", Tier.HARD),
        ("**very_hard**", Tier.VERY_HARD),
        ("Very hard", Tier.VERY_HARD),
        ("very-difficult", Tier.VERY_HARD),
        ("EASY\nBecause it is a fact.", Tier.EASY),
        ("<think>is it easy? no</think> hard", Tier.HARD),
        ("3", Tier.HARD),
        ("I cannot tell", None),
        ("", None),
        ("<think>unfinished reasoning about easy things", None),
    ],
)
def test_parse_tier_is_robust(answer: str, tier: Tier | None) -> None:
    assert parse_tier(answer) is tier


async def test_agreement_keeps_the_tier_and_marks_source_llm() -> None:
    m = Metrics()
    up = ScriptedUpstream(lambda r: "medium")
    out = await LLMFallback(up, timeout_s=1.0, metrics=m).refine("2+2*3?", MEDIUM)
    assert out.source == "llm" and out.tier is Tier.MEDIUM and out.fallback_note is None
    assert out.confidence > MEDIUM.confidence
    assert abs(sum(out.probabilities) - 1) < 1e-6
    assert count(m, "agree") == 1
    assert m.registry.get_sample_value("ttc_classifier_fallback_seconds_count") == 1


async def test_disagreement_takes_the_llm_tier() -> None:
    m = Metrics()
    out = await LLMFallback(ScriptedUpstream(lambda r: "very_hard"), metrics=m).refine(
        "Prove the Riemann hypothesis.", MEDIUM
    )
    assert out.tier is Tier.VERY_HARD and out.source == "llm"
    assert count(m, "disagree") == 1


async def test_timeout_keeps_embedding_scores_and_says_so() -> None:
    m = Metrics()
    up = ScriptedUpstream(lambda r: 5.0)  # hangs 5 s
    out = await LLMFallback(up, timeout_s=0.05, metrics=m).refine("slow", MEDIUM)
    assert out.fallback_note == "timeout"
    assert out.probabilities == MEDIUM.probabilities and out.source == "embedding"
    assert count(m, "timeout") == 1


async def test_garbage_answer_keeps_embedding_scores() -> None:
    m = Metrics()
    out = await LLMFallback(ScriptedUpstream(lambda r: "banana"), metrics=m).refine("q", MEDIUM)
    assert out.fallback_note == "garbage" and out.tier is Tier.MEDIUM
    assert count(m, "garbage") == 1


async def test_upstream_error_never_raises() -> None:
    m = Metrics()
    up = ScriptedUpstream(lambda r: UpstreamError("provider down"))
    out = await LLMFallback(up, metrics=m).refine("q", MEDIUM)
    assert out.fallback_note == "error" and out.source == "embedding"
    assert count(m, "error") == 1


async def test_success_is_cached_by_text_failures_are_not() -> None:
    answers = iter(["banana", "hard", "easy"])
    up = ScriptedUpstream(lambda r: next(answers))
    fb = LLMFallback(up)
    assert (await fb.refine("same text", MEDIUM)).fallback_note == "garbage"
    assert (await fb.refine("same text", MEDIUM)).tier is Tier.HARD
    assert (await fb.refine("same text", MEDIUM)).tier is Tier.HARD  # cached, no 3rd call
    assert len(up.requests) == 2


async def test_chat_upstreams_get_messages_and_completion_ones_a_few_shot_prompt() -> None:
    chat = ScriptedUpstream(lambda r: "easy")
    await LLMFallback(chat).refine("What is the capital of France?", MEDIUM)
    req: GenerationRequest = chat.requests[0]
    assert req.prompt is None and req.messages[0].role == "system"
    assert "very_hard" in req.messages[0].content and "capital of France" in req.messages[1].content

    raw = ScriptedUpstream(
        lambda r: " easy", capabilities=Capabilities(chat=False, completions=True)
    )
    out = await LLMFallback(raw).refine("What is the capital of France?", MEDIUM)
    req = raw.requests[0]
    assert not req.messages and req.prompt is not None
    assert req.prompt.rstrip().endswith("Difficulty:") and "\n" in req.stop
    assert out.tier is Tier.EASY
