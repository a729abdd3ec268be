"""LLM-prompt fallback: ask a cheap model for the tier when the embedding head is unsure.

`refine(text, scores)` never raises. On success it returns `source="llm"` scores whose
probabilities put `LLM_WEIGHT` on the model's one-word answer and the rest on the embedding
probabilities (so the LLM's tier wins, and the confidence says how far the two agreed). On a
timeout, an unparseable answer or an upstream error it returns the input scores with
`fallback_note` set to "timeout", "garbage" or "error". Successful answers are cached by text
hash; failures are not. What the call spent rides on the returned scores (`fallback_usage`)
for the pipeline to bill at the fallback model's price; a cached answer, a timeout or an error
spent nothing we can count.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import replace
from typing import TYPE_CHECKING

from classifier.base import TIERS, Tier, TierScores
from classifier.features import window
from router.vocab.errors import UpstreamTimeout
from router.vocab.upstream import GenerationRequest, Message, Usage

if TYPE_CHECKING:
    from router.vocab.metrics import FallbackMetrics as Metrics
    from router.vocab.upstream import Upstream

LLM_WEIGHT = 0.7

DEFINITIONS = (
    "easy: direct recall or a single step (a fact, a short rewrite, a basic function).\n"
    "medium: two to five standard steps (word problems, routine algebra, common coding tasks).\n"
    "hard: long multi-step reasoning that may need backtracking (competition maths, "
    "tricky algorithms, in-depth analysis).\n"
    "very_hard: deep search for a non-obvious idea (olympiad proofs, the hardest contest "
    "problems)."
)

SYSTEM_PROMPT = (
    "You rate how hard a query is for an AI assistant to answer correctly.\n"
    f"The four difficulty tiers:\n{DEFINITIONS}\n"
    "Reply with exactly one word: easy, medium, hard or very_hard."
)

FEW_SHOT = (
    ("What is the capital of Australia?", "easy"),
    ("A shop sells pens at 3 for $2. How much do 12 pens cost, with a 10% discount?", "medium"),
    ("Find all real x such that sqrt(x+3) + sqrt(2x-1) = 5, and count lattice paths...", "hard"),
    ("Prove that for every n > 1 there is a prime strictly between n and 2n.", "very_hard"),
)

_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_TIER_WORD = re.compile(r"very[\s_-]*(?:hard|difficult)|hard|medium|easy", re.I)


def parse_tier(answer: str) -> Tier | None:
    """The first tier word in a model's answer (reasoning blocks skipped); None if none."""
    text = _THINK.sub(" ", answer).strip().lower()
    m = _TIER_WORD.search(text)
    if m:
        word = m.group(0)
        return Tier.VERY_HARD if word.startswith("very") else Tier(word)
    bare = text.strip(" .*`'\"")
    if bare in ("1", "2", "3", "4"):
        return TIERS[int(bare) - 1]
    return None


def build_request(text: str, *, chat: bool) -> GenerationRequest:
    query = window(text)
    if chat:
        return GenerationRequest(
            messages=(
                Message("system", SYSTEM_PROMPT),
                Message("user", f"Query:\n<<<\n{query}\n>>>\nDifficulty (one word):"),
            ),
            max_tokens=10,
            temperature=0.0,
        )
    shots = "".join(f"Query: {q}\nDifficulty: {t}\n\n" for q, t in FEW_SHOT)
    prompt = f"{SYSTEM_PROMPT}\n\n{shots}Query: {query}\nDifficulty:"
    return GenerationRequest(prompt=prompt, max_tokens=6, temperature=0.0, stop=("\n",))


class LLMFallback:
    """Refines low-confidence embedding scores with one cheap-model call (hard timeout)."""

    def __init__(
        self,
        upstream: Upstream,
        timeout_s: float = 1.0,
        metrics: Metrics | None = None,
        *,
        cache_size: int = 4096,
    ) -> None:
        self.upstream = upstream
        self.timeout_s = timeout_s
        self.metrics = metrics
        self._cache: OrderedDict[str, Tier] = OrderedDict()
        self._cache_size = cache_size

    def _record(self, outcome: str, seconds: float | None) -> None:
        if self.metrics is not None:
            self.metrics.fallbacks.labels(outcome=outcome).inc()
            if seconds is not None:
                self.metrics.fallback_latency.observe(seconds)

    async def _ask(self, text: str) -> tuple[Tier | str, Usage | None]:
        """The model's tier, or the failure note, and what the call spent."""
        chat = self.upstream.capabilities.chat
        try:
            async with asyncio.timeout(self.timeout_s):
                gen = await self.upstream.generate(build_request(text, chat=chat))
        except (TimeoutError, UpstreamTimeout):
            return "timeout", None
        except Exception:
            return "error", None
        tier = parse_tier(gen.choices[0].text) if gen.choices else None
        return (tier if tier is not None else "garbage"), gen.usage

    async def refine(self, text: str, scores: TierScores) -> TierScores:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        start = time.perf_counter()
        seconds: float | None = None
        cached = self._cache.get(key)
        usage: Usage | None = None
        if cached is not None:
            self._cache.move_to_end(key)
            answer: Tier | str = cached
        else:
            try:
                answer, usage = await self._ask(text)
            except Exception:  # belt and braces: refine never raises
                answer = "error"
            seconds = time.perf_counter() - start
        if not isinstance(answer, Tier):
            self._record(answer, seconds)
            return replace(scores, fallback_note=answer, fallback_usage=usage)
        if cached is None:
            self._cache[key] = answer
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._record("agree" if answer is scores.tier else "disagree", seconds)
        probs = [
            LLM_WEIGHT * (1.0 if t is answer else 0.0) + (1 - LLM_WEIGHT) * p
            for t, p in zip(TIERS, scores.probabilities, strict=True)
        ]
        refined = TierScores.from_probabilities(probs, source="llm")
        return replace(refined, task=scores.task, task_confidence=scores.task_confidence,
                       fallback_usage=usage)
