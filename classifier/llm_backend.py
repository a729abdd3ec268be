"""`LLMClassifier`: the LLM-prompt classifier as a standalone backend (`TTC_CLASSIFIER_BACKEND
=llm`). No training data: one cheap call per uncached query, with the fallback's prompt, hard
timeout and cache (`classifier.fallback.LLMFallback`).

`resolve()` returns the `LLMFallback` for the current policy (its `classifier.fallback_model`
and `fallback_timeout_s`), so a policy reload that changes the model is picked up on the next
query. The answered tier gets the fallback's weight over a uniform prior (`source="llm"`); a
timeout, error or unparseable answer leaves the uniform prior with `fallback_note` set, which the
policy reads as "unsure" (the lowest tier wins ties: easy, the cheapest plan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from classifier.base import TIERS, TierScores

if TYPE_CHECKING:
    from classifier.fallback import LLMFallback

UNIFORM = TierScores.from_probabilities([1 / len(TIERS)] * len(TIERS), source="llm")


class LLMClassifier:
    """Scores each text by asking the policy's fallback model (concurrently, cached)."""

    def __init__(self, resolve: Callable[[], LLMFallback | None], name: str = "llm") -> None:
        self._resolve = resolve
        self.name = name

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        fallback = self._resolve()
        if fallback is None:
            return [
                TierScores(UNIFORM.probabilities, UNIFORM.tier, UNIFORM.confidence, "llm",
                           fallback_note="no_model") for _ in texts
            ]
        return list(await asyncio.gather(*(fallback.refine(t, UNIFORM) for t in texts)))

    def describe(self) -> dict[str, object]:
        fallback = self._resolve()
        model = None if fallback is None else getattr(fallback.upstream, "model", None)
        return {"backend": "llm", "embedding_model": None, "llm_model": model}
