"""The LLM fallback against the real embedded model (llama.cpp + Gemma 3 270M, raw prompts)."""

from __future__ import annotations

import pytest

from classifier.base import TIERS, TierScores
from classifier.fallback import LLMFallback
from router.metrics import Metrics

pytestmark = pytest.mark.model

UNSURE = TierScores.from_probabilities([0.3, 0.3, 0.25, 0.15])


async def test_real_local_model_answers_the_difficulty_prompt(local_upstream: object) -> None:
    m = Metrics()
    fb = LLMFallback(local_upstream, timeout_s=60.0, metrics=m)  # type: ignore[arg-type]
    out = await fb.refine("What is the capital of France?", UNSURE)
    # a base model continuing the few-shot prompt answers with a tier word
    assert out.source == "llm" and out.tier in TIERS, out
    agree = m.registry.get_sample_value("ttc_classifier_fallback_total", {"outcome": "agree"})
    disagree = m.registry.get_sample_value(
        "ttc_classifier_fallback_total", {"outcome": "disagree"}
    )
    assert (agree or 0) + (disagree or 0) == 1


async def test_real_local_model_past_the_deadline_keeps_the_embedding_tier(
    local_upstream: object,
) -> None:
    fb = LLMFallback(local_upstream, timeout_s=0.001)  # type: ignore[arg-type]
    out = await fb.refine("Prove Fermat's last theorem for n = 4.", UNSURE)
    assert out.fallback_note == "timeout" and out == TierScores(
        UNSURE.probabilities, UNSURE.tier, UNSURE.confidence, "embedding", "timeout"
    )
