"""The classifier seam: texts in, probabilities over difficulty tiers out.

A classifier scores; the policy decides. `TierScores.tier` is the arg-max tier and
`confidence` its probability; whether that confidence is enough (or the LLM fallback should
be asked) is the policy's call, made in `router.pipeline`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from router.vocab.upstream import Usage


class Tier(StrEnum):
    """Difficulty tiers, ordered from cheapest to most compute."""

    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"
    VERY_HARD = "very_hard"

    @property
    def rank(self) -> int:
        return TIERS.index(self)


TIERS: tuple[Tier, ...] = (Tier.EASY, Tier.MEDIUM, Tier.HARD, Tier.VERY_HARD)

# "llm" (the LLM-prompt classifier or fallback decided), "fixed", "hint", "unavailable", or the
# embedding classifier's label: "lexical" or "<runtime>/<embedding model>" (what actually ran)
Source = str


@dataclass(frozen=True)
class TierScores:
    """Probabilities over `TIERS` (same order), the chosen tier, its confidence and source."""

    probabilities: tuple[float, ...]
    tier: Tier
    confidence: float
    source: Source = "embedding"
    fallback_note: str | None = None
    task: str | None = None  # task type (classifier.labels.TASKS) when a task head ran
    task_confidence: float | None = None
    # what the LLM fallback's call spent (billed to the tenant at the fallback model's price);
    # None when no call was made (confident scores, an answer from its cache, a timeout)
    fallback_usage: Usage | None = None

    @classmethod
    def from_probabilities(
        cls, probabilities: Sequence[float], source: Source = "embedding"
    ) -> TierScores:
        probs = tuple(float(p) for p in probabilities)
        if len(probs) != len(TIERS):
            raise ValueError(f"expected {len(TIERS)} probabilities, got {len(probs)}")
        best = max(range(len(probs)), key=probs.__getitem__)
        return cls(probabilities=probs, tier=TIERS[best], confidence=probs[best], source=source)

    @property
    def expected_tier(self) -> float:
        """Probability-weighted tier index (0 = easy ... 3 = very_hard)."""
        return sum(i * p for i, p in enumerate(self.probabilities))

    def as_dict(self) -> dict[str, float]:
        return {t.value: p for t, p in zip(TIERS, self.probabilities, strict=True)}


class Classifier(Protocol):
    """Scores texts by difficulty. Implementations must be safe to call concurrently."""

    async def classify(self, texts: Sequence[str]) -> list[TierScores]: ...


class FixedClassifier:
    """Always answers one tier with full confidence: the simplest real classifier."""

    def __init__(self, tier: Tier = Tier.EASY) -> None:
        self._scores = TierScores.from_probabilities(
            [1.0 if t is tier else 0.0 for t in TIERS], source="fixed"
        )

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        return [self._scores for _ in texts]
