"""Best-of-N: N samples from one upstream call (`n=N`, shared prompt KV cache where the
upstream supports it), scored by the verifier.

`mode: plain` returns the best single candidate by aggregated score; `mode: weighted` sums the
scores of candidates with equivalent answers and returns the best-scored member of the winning
answer. Without a verifier every candidate scores 1.0, so weighted becomes a majority vote and
plain returns the first sample. Candidates are split into steps at `step_delimiter` for PRMs.
With an outcome checker (code tests, reference answer) the pick is the best score (pass rate),
ties broken by the vote, in either mode.

Posterior (early-stopping) form: with `stop_score` and/or `stop_share` set and a verifier,
samples are drawn in rounds of `round_size`, each round scored as it arrives, and sampling stops
(up to N samples in all) once the best aggregated score so far reaches `stop_score`, or once the
leading answer holds at least `stop_share` of the summed scores so far (the score-weighted vote
is decisive); the pick is then made among the samples drawn, as above. With an outcome checker
and `stop_score: 1.0` that is "stop at the first sample that passes every test". Off by default
(one call of N); without a verifier both are ignored (every score would be 1.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.aggregate import AGGREGATIONS, aggregate
from strategies.answers import extract_answer, group_answers
from strategies.base import (
    Budget,
    Candidate,
    Generator,
    Problem,
    Result,
    Sample,
    Verifier,
)
from strategies.params import COMMON, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext
from strategies.select import is_outcome, pick_outcome
from strategies.steps import split_steps

SPECS: dict[str, Spec] = {
    **COMMON,
    "n": Spec("int", 8, 1, 256),
    "mode": Spec("str", "weighted", choices=("plain", "weighted")),
    "aggregation": Spec("str", "last", choices=AGGREGATIONS),
    "step_delimiter": Spec("str", "\n\n"),
    "stop_score": Spec("float", None, 0.0, 1.0),
    "stop_share": Spec("float", None, 0.5, 1.0),
    "round_size": Spec("int", 4, 1, 256),
}


def pick_weighted(answers: list[str | None], scores: list[float]) -> int | None:
    """Index of the best-scored candidate of the answer with the highest summed score."""
    groups = group_answers(answers)
    if not groups:
        return None
    best_group = max(groups, key=lambda g: sum(scores[i] for i in g))
    return max(best_group, key=lambda i: scores[i])


class BestOfN:
    name = "best_of_n"
    step_level = False
    requires_verifier = False

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def max_samples(self, params: Mapping[str, Any]) -> int:
        return int(params.get("n", SPECS["n"].default))

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
        n: int = p["n"]
        staged = verifier is not None and (p["stop_score"], p["stop_share"]) != (None, None)
        size = p["round_size"] if staged else n
        samples: list[Sample] = []
        steps: list[list[str]] = []
        step_scores: list[list[float]] = []
        answers: list[str | None] = []  # extracted per round when staged
        rounds = 0
        while len(samples) < n and ctx.stopped is None:
            seed = None if p["seed"] is None else p["seed"] + rounds
            try:
                batch = await ctx.sample(
                    generator,
                    min(size, n - len(samples)),
                    temperature=p["temperature"],
                    stop=tuple(p["stop"]),
                    seed=seed,
                )
            except OutOfBudget as exc:
                ctx.stopped = exc.reason
                break
            rounds += 1
            new = list(batch.samples)
            new_steps = [split_steps(s.text, p["step_delimiter"]) for s in new]
            new_scores: list[list[float]] = [[1.0] for _ in new]
            if verifier is not None:
                try:
                    new_scores = await ctx.score(verifier, new_steps)
                except OutOfBudget as exc:
                    ctx.stopped = exc.reason
                    new_scores = [[0.0] for _ in new]
            samples += new
            steps += new_steps
            step_scores += new_scores
            if not staged or not new:  # one call of N; or nothing arrived
                break
            answers += [extract_answer(s.text, ctx.fmt) for s in new]
            if self._decided(p, answers, step_scores, ctx):
                break
        if not samples:
            return ctx.result(None, ())
        scores = [aggregate(s, p["aggregation"]) for s in step_scores]
        if len(answers) != len(samples):
            answers = [extract_answer(s.text, ctx.fmt) for s in samples]
        candidates = [
            Candidate(
                text=s.text,
                answer=answers[i],
                score=scores[i],
                tokens=s.tokens,
                steps=tuple(steps[i]),
                step_scores=tuple(step_scores[i]),
            )
            for i, s in enumerate(samples)
        ]
        if is_outcome(verifier):  # tests / reference: best score, ties by the vote
            pick = pick_outcome(answers, scores)
        else:
            pick = pick_weighted(answers, scores) if p["mode"] == "weighted" else None
        if pick is None:
            pick = max(range(len(samples)), key=lambda i: scores[i])
        ctx.note(kind="scored", scores=scores, answers=answers, pick=pick)
        best = candidates[pick]
        notes = (f"{len(samples)} of {n} samples in {rounds} rounds",) if staged else ()
        return ctx.result(best, candidates, finish_reason=samples[pick].finish_reason,
                          notes=notes)

    @staticmethod
    def _decided(
        p: Mapping[str, Any], answers: list[str | None], step_scores: list[list[float]],
        ctx: RunContext,
    ) -> bool:
        """The early stop: the best score so far reaches `stop_score`, or the leading answer
        holds `stop_share` of the summed scores."""
        scores = [aggregate(s, p["aggregation"]) for s in step_scores]
        top = max(scores)
        share = 0.0
        total = sum(scores)
        if p["stop_share"] is not None and total > 0:
            groups = group_answers(answers)
            share = max((sum(scores[i] for i in g) for g in groups), default=0.0) / total
        ctx.note(kind="round", drawn=len(scores), best_score=top, share=share)
        by_score = p["stop_score"] is not None and top >= p["stop_score"]
        return by_score or (p["stop_share"] is not None and share >= p["stop_share"])
