"""The shipped artifact with the packaged MiniLM: loads offline and gets obvious cases right."""

from __future__ import annotations

import asyncio

from classifier import classification_text, load_classifier
from classifier.base import Tier
from router.upstreams.base import Message

EASY = [
    "who wrote the novel pride and prejudice",
    "What is the capital of Canada?",
    "when did the first man land on the moon",
]
HARD = [
    "Let $n \\geq 2$ be an integer. Prove that for all positive reals $a_1, \\ldots, a_n$ with "
    "$a_1 a_2 \\cdots a_n = 1$, $\\sum_{i=1}^n \\frac{a_i^{n-1}}{a_i^{n-1} + (n-1)} \\geq 1$, "
    "and determine all cases of equality.",
    "Find all functions $f:\\mathbb{R}\\to\\mathbb{R}$ such that "
    "$f(x^2 + y f(x)) = x f(x + y)$ for all real numbers $x, y$.",
]


async def test_shipped_classifier_orders_obvious_cases() -> None:
    clf = load_classifier()
    try:
        easy = await clf.classify(EASY)
        hard = await clf.classify(HARD)
        assert [s.tier for s in easy] == [Tier.EASY] * len(EASY), [s.as_dict() for s in easy]
        assert all(s.tier in (Tier.HARD, Tier.VERY_HARD) for s in hard), [
            s.as_dict() for s in hard
        ]
        assert max(s.expected_tier for s in easy) < min(s.expected_tier for s in hard)
        # the documented window from a chat, and concurrent callers, through the same path
        text = classification_text(
            [Message("system", "Be brief."), Message("user", "What is the capital of Canada?")]
        )
        many = await asyncio.gather(*(clf.classify([text]) for _ in range(4)))
        assert all(m[0].source == "embedding" and m[0].tier is Tier.EASY for m in many)
        huge = await clf.classify(["x " * 200_000])  # a long input never crashes
        assert huge[0].tier in Tier
    finally:
        await clf.aclose()
