"""Self-consistency: majority vote over equivalent final answers, with adaptive stopping.

Samples are drawn in rounds of `round_size`. After each round the vote is tallied; sampling
stops once the leading answer cannot be overtaken by the samples still allowed
(leader > runner-up + remaining), or, when `confidence` is set, once the leader's share reaches
it after at least `min_samples`. Ties are broken by verifier score (the best aggregated score in
each tied group) when a verifier is configured, else by first appearance. With an outcome
checker (code tests, reference answer) every sample is checked: the best score (pass rate)
wins and the vote breaks ties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.aggregate import AGGREGATIONS, aggregate
from strategies.answers import AnswerMatcher, extract_answer, group_answers
from strategies.base import Budget, Candidate, Generator, Problem, Result, Verifier
from strategies.params import COMMON, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext
from strategies.select import is_outcome, pick_outcome

SPECS: dict[str, Spec] = {
    **COMMON,
    "n": Spec("int", 8, 1, 256),
    "round_size": Spec("int", 4, 1, 256),
    "adaptive": Spec("bool", True),
    "confidence": Spec("float", None, 0.5, 1.0),
    "min_samples": Spec("int", 3, 1, 256),
    "aggregation": Spec("str", "last", choices=AGGREGATIONS),
}


def decided(counts: list[int], remaining: int) -> bool:
    """True when the leader cannot be caught even if every remaining sample joins the runner-up."""
    if not counts:
        return False
    ranked = sorted(counts, reverse=True)
    runner_up = ranked[1] if len(ranked) > 1 else 0
    return ranked[0] > runner_up + remaining


class SelfConsistency:
    name = "self_consistency"
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
        texts: list[str] = []
        tokens: list[int] = []
        answers: list[str | None] = []
        matcher = AnswerMatcher()
        groups: list[list[int]] = []
        rounds = 0
        try:
            while len(texts) < n:
                k = min(p["round_size"], n - len(texts)) if p["adaptive"] else n
                seed = None if p["seed"] is None else p["seed"] + rounds
                batch = await ctx.sample(
                    generator, k, temperature=p["temperature"], stop=tuple(p["stop"]), seed=seed
                )
                rounds += 1
                for s in batch.samples:
                    texts.append(s.text)
                    tokens.append(s.tokens)
                    answers.append(extract_answer(s.text, ctx.fmt))
                groups = group_answers(answers, matcher)
                counts = [len(g) for g in groups]
                ctx.note(kind="round", drawn=len(texts), votes=counts)
                if not p["adaptive"]:
                    break
                if decided(counts, n - len(texts)):
                    break
                conf = p["confidence"]
                enough = counts and len(texts) >= p["min_samples"]
                if conf is not None and enough and max(counts) / len(texts) >= conf:
                    break
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
            groups = group_answers(answers, matcher)
        if not texts:
            return ctx.result(None, ())

        scores: dict[int, float] = {}
        top = max((len(g) for g in groups), default=0)
        tied = [g for g in groups if len(g) == top]
        if is_outcome(verifier) and verifier is not None:
            return await self._by_outcome(ctx, verifier, texts, tokens, answers, n, rounds)
        if verifier is not None and len(tied) > 1:
            members = [i for g in tied for i in g]
            try:
                raw = await ctx.score(verifier, [[texts[i]] for i in members])
                scores = {
                    i: aggregate(s, p["aggregation"]) for i, s in zip(members, raw, strict=True)
                }
            except OutOfBudget as exc:
                ctx.stopped = exc.reason
        if tied:
            winner = max(tied, key=lambda g: max(scores.get(i, 0.0) for i in g))
            pick = max(winner, key=lambda i: scores.get(i, 0.0))
        else:  # no sample had an answer
            winner, pick = [], 0
        share = {i: len(g) / len(texts) for g in groups for i in g}
        candidates = [
            Candidate(
                text=t,
                answer=answers[i],
                score=scores.get(i, share.get(i, 0.0)),
                tokens=tokens[i],
            )
            for i, t in enumerate(texts)
        ]
        best = candidates[pick]
        best = Candidate(
            text=best.text, answer=best.answer, score=len(winner) / len(texts), tokens=best.tokens
        )
        notes = (f"{len(texts)} of {n} samples in {rounds} rounds",)
        return ctx.result(best, candidates, notes=notes)

    async def _by_outcome(
        self,
        ctx: RunContext,
        verifier: Verifier,
        texts: list[str],
        tokens: list[int],
        answers: list[str | None],
        n: int,
        rounds: int,
    ) -> Result:
        """An outcome checker (tests, reference) scores every sample; the best score wins and
        the vote breaks ties."""
        scores = [0.0] * len(texts)
        try:
            raw = await ctx.score(verifier, [[t] for t in texts])
            scores = [s[-1] if s else 0.0 for s in raw]
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
        candidates = [
            Candidate(text=t, answer=answers[i], score=scores[i], tokens=tokens[i])
            for i, t in enumerate(texts)
        ]
        pick = pick_outcome(answers, scores) or 0
        notes = (f"{len(texts)} of {n} samples in {rounds} rounds, selected by the verifier",)
        return ctx.result(candidates[pick], candidates, notes=notes)
