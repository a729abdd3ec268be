"""Best-of-N with early stopping on the verifier score (`stop_score`, rounds of `round_size`):
rounds, the stop, the pick among the samples drawn, billing, budgets and deadlines."""

from __future__ import annotations

from collections.abc import Sequence

from router.upstreams.base import Usage
from router.vocab.errors import UpstreamError
from strategies import REGISTRY, Batch, Budget, Problem
from strategies.base import Scored
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

BIG = Budget(max_tokens_per_sample=64)
TEXTS = ["a Answer: 1", "b Answer: 2", "c Answer: 2", "d Answer: 3", "e Answer: 2", "f Answer: 4"]
SCORES = {"a Answer: 1": 0.3, "b Answer: 2": 0.5, "c Answer: 2": 0.95, "d Answer: 3": 0.4,
          "e Answer: 2": 0.6, "f Answer: 4": 0.1}


async def test_stops_at_the_first_round_whose_best_score_passes() -> None:
    gen = ScriptedGenerator({"": TEXTS})
    prm = ScriptedPRM(SCORES)
    params = {"n": 6, "round_size": 2, "stop_score": 0.9, "mode": "plain"}
    result = await REGISTRY["best_of_n"].run(problem(), gen, prm, params, BIG)
    # round 1: best 0.5; round 2 brings "c" at 0.95: stop at 4 of 6
    assert [c.n for c in gen.calls] == [2, 2]
    assert [len(batch) for batch in prm.calls] == [2, 2]  # each round scored as it arrives
    assert result.text == "c Answer: 2" and len(result.candidates) == 4
    assert result.usage.calls == 2
    assert result.usage.completion_tokens == sum(len(t) for t in TEXTS[:4])
    assert result.notes == ("4 of 6 samples in 2 rounds",) and not result.anytime


async def test_without_a_pass_it_draws_all_n_and_picks_as_one_call_would() -> None:
    prm = ScriptedPRM(SCORES)
    rounds = ScriptedGenerator({"": TEXTS})
    params = {"n": 6, "round_size": 4, "stop_score": 0.99, "mode": "weighted"}
    staged = await REGISTRY["best_of_n"].run(problem(), rounds, prm, params, BIG)
    once = ScriptedGenerator({"": TEXTS})
    plain = await REGISTRY["best_of_n"].run(problem(), once, prm, {"n": 6, "mode": "weighted"},
                                            BIG)
    assert [c.n for c in rounds.calls] == [4, 2] and [c.n for c in once.calls] == [6]
    assert staged.text == plain.text == "c Answer: 2"  # answer 2 sums 2.05
    assert [c.text for c in staged.candidates] == [c.text for c in plain.candidates]


async def test_off_by_default_and_without_a_verifier() -> None:
    gen = ScriptedGenerator({"": TEXTS})
    await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), {"n": 6}, BIG)
    assert [c.n for c in gen.calls] == [6]
    gen = ScriptedGenerator({"": TEXTS})
    result = await REGISTRY["best_of_n"].run(
        problem(), gen, None, {"n": 6, "stop_score": 0.5, "round_size": 2}, BIG)
    assert [c.n for c in gen.calls] == [6]  # every score would be 1.0: no stopping
    assert result.answer == "2"


class BilledJudge:
    """A verifier that reports what scoring cost (a judge model): 7 tokens per candidate."""

    def __init__(self) -> None:
        self.prm = ScriptedPRM(SCORES)

    async def score(self, problem: Problem, candidates: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        return await self.prm.score(problem, candidates)

    async def score_accounted(self, problem: Problem, candidates: Sequence[Sequence[str]]
                              ) -> Scored:
        scores = await self.prm.score(problem, candidates)
        return Scored(scores, Usage(5, 7 * len(candidates), calls=1))


async def test_every_sampling_and_scoring_call_is_billed() -> None:
    gen = ScriptedGenerator({"": TEXTS})
    params = {"n": 6, "round_size": 2, "stop_score": 0.9}
    result = await REGISTRY["best_of_n"].run(problem(), gen, BilledJudge(), params, BIG)
    assert result.usage.calls == 4  # two sampling rounds, two scoring calls
    assert result.usage.completion_tokens == sum(len(t) for t in TEXTS[:4]) + 7 * 4
    assert result.usage.prompt_tokens == 2 * 10 + 2 * 5


async def test_a_token_budget_ends_the_rounds_with_an_answer() -> None:
    gen = ScriptedGenerator({"": TEXTS})  # 11 tokens a sample, 10 prompt tokens a call
    budget = Budget(max_tokens=30, max_tokens_per_sample=64)
    params = {"n": 6, "round_size": 2, "stop_score": 0.99}
    result = await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), params, budget)
    assert result.anytime and result.stopped == "tokens"
    # round one overdrew the budget: no scoring call and no round two; the unscored samples
    # score 0, so the pick is the first answer
    assert sum(c.n for c in gen.calls) == 2 and result.text == "a Answer: 1"
    assert result.usage.total_tokens == 10 + 22


async def test_a_deadline_ends_the_rounds_with_an_answer() -> None:
    gen = ScriptedGenerator({"": TEXTS}, delay_s=0.15)
    budget = Budget(deadline_s=0.25, max_tokens_per_sample=64)
    params = {"n": 6, "round_size": 2, "stop_score": 0.99}
    result = await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), params, budget)
    assert result.anytime and result.finish_reason == "deadline"
    assert result.text == "b Answer: 2" and len(result.candidates) == 2


async def test_the_parameters_are_checked() -> None:
    errors = REGISTRY["best_of_n"].check_params({"stop_score": 1.5, "round_size": 0})
    assert any("stop_score" in e for e in errors) and any("round_size" in e for e in errors)


async def test_stops_once_the_score_weighted_vote_is_decisive() -> None:
    # answer 2's share of the summed scores: 0.5 / 0.8 = 0.63 after round one, 1.45 / 2.15 = 0.67
    # after round two (no single score passes 0.99)
    gen = ScriptedGenerator({"": TEXTS})
    params = {"n": 6, "round_size": 2, "stop_share": 0.65, "stop_score": 0.99}
    result = await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), params, BIG)
    assert [c.n for c in gen.calls] == [2, 2]
    assert result.answer == "2" and result.text == "c Answer: 2"
    gen = ScriptedGenerator({"": TEXTS})
    params = {"n": 6, "round_size": 2, "stop_share": 0.6}
    await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), params, BIG)
    assert [c.n for c in gen.calls] == [2]


class FailsAfterOneRound(ScriptedGenerator):
    async def sample(self, problem: Problem, n: int, *, temperature: float, max_tokens: int,
                     stop: Sequence[str] = (), seed: int | None = None) -> Batch:
        if self.calls:
            raise UpstreamError("upstream down")
        return await super().sample(problem, n, temperature=temperature, max_tokens=max_tokens)


async def test_an_upstream_failure_after_a_round_answers_from_what_arrived() -> None:
    gen = FailsAfterOneRound({"": TEXTS})
    params = {"n": 6, "round_size": 2, "stop_score": 0.99}
    result = await REGISTRY["best_of_n"].run(problem(), gen, ScriptedPRM(SCORES), params, BIG)
    assert result.text == "b Answer: 2" and len(result.candidates) == 2
    assert result.stopped == "upstream" and result.usage.calls == 1
