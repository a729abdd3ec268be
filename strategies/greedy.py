"""Greedy: one chain-of-thought sample, temperature 0 unless the params say otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.answers import extract_answer
from strategies.base import Budget, Candidate, Generator, Problem, Result, Verifier
from strategies.params import COMMON, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext

SPECS: dict[str, Spec] = {**COMMON, "temperature": Spec("float", 0.0, 0.0, 2.0)}
CLIENT_KNOBS = ("temperature", "seed", "stop")


class Greedy:
    name = "greedy"
    step_level = False
    requires_verifier = False

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def max_samples(self, params: Mapping[str, Any]) -> int:
        return 1

    def stream_params(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return resolve(params, SPECS)

    def client_params(
        self, params: Mapping[str, Any], client: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A single sample honours the client's sampling knobs (temperature, seed, stop)."""
        return {**params, **{k: client[k] for k in CLIENT_KNOBS if k in client}}

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        p = resolve(params, SPECS)
        ctx = RunContext(self.name, budget, p, problem)
        try:
            batch = await ctx.sample(
                generator, 1, temperature=p["temperature"], stop=tuple(p["stop"]), seed=p["seed"]
            )
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
            return ctx.result(None, ())
        sample = batch.samples[0]
        best = Candidate(
            text=sample.text, answer=extract_answer(sample.text, ctx.fmt), tokens=sample.tokens
        )
        ctx.note(kind="sample", tokens=sample.tokens, answer=best.answer)
        return ctx.result(best, (best,), finish_reason=sample.finish_reason)
