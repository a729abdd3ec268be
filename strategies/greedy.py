"""Greedy: one chain-of-thought sample, temperature 0 unless the params say otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.base import Budget, Candidate, Generator, Problem, Result, Verifier


class Greedy:
    name = "greedy"
    step_level = False
    allowed_params = frozenset({"temperature", "stop", "seed"})

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        errors = [f"unknown parameter {k!r}" for k in params if k not in self.allowed_params]
        t = params.get("temperature", 0.0)
        if not isinstance(t, int | float) or not 0 <= t <= 2:
            errors.append("temperature must be a number in [0, 2]")
        return errors

    def max_samples(self, params: Mapping[str, Any]) -> int:
        return 1

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        batch = await generator.sample(
            problem,
            1,
            temperature=float(params.get("temperature", 0.0)),
            max_tokens=budget.max_tokens_per_sample,
            stop=tuple(params.get("stop", ())),
            seed=params.get("seed"),
        )
        sample = batch.samples[0]
        return Result(
            text=sample.text,
            strategy=self.name,
            candidates=(Candidate(text=sample.text, tokens=sample.tokens),),
            usage=batch.usage,
            finish_reason=sample.finish_reason,
        )
