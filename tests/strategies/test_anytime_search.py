"""A beam search cut by its deadline while the verifier scores the first steps still answers
with those steps (issue 11: the default very_hard tier returned nothing on a slow machine)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from strategies import REGISTRY, Budget, Problem
from tests.strategies.fakes import ScriptedGenerator, problem


class SlowVerifier:
    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        await asyncio.sleep(5)
        return [[0.5] for _ in candidates]


async def test_deadline_during_scoring_keeps_the_generated_steps() -> None:
    gen = ScriptedGenerator({"": ["first step"]})
    result = await REGISTRY["beam_search"].run(
        problem(), gen, SlowVerifier(), {"width": 2, "expansions": 1, "max_depth": 3},
        Budget(deadline_s=0.3),
    )
    assert result.anytime and result.stopped == "deadline"
    assert result.text.startswith("first step")
    assert result.finish_reason == "deadline"
