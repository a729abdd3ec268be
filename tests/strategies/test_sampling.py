"""Greedy, self-consistency and best-of-N selection logic, budgets and deadlines."""

from strategies import REGISTRY, Budget
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

BIG = Budget(max_tokens_per_sample=64)


async def test_greedy_is_one_sample_at_temperature_zero() -> None:
    gen = ScriptedGenerator({"": ["work\nAnswer: 12"]})
    result = await REGISTRY["greedy"].run(problem(), gen, None, {}, BIG)
    assert (result.answer, len(gen.calls), gen.calls[0].temperature) == ("12", 1, 0.0)
    assert result.usage.calls == 1 and result.usage.completion_tokens == len("work\nAnswer: 12")


async def test_best_of_n_plain_and_weighted_pick_differently() -> None:
    texts = ["x1 Answer: 1", "x2 Answer: 2", "x3 Answer: 2", "x4 Answer: 1"]
    prm = ScriptedPRM(
        {"x1 Answer: 1": 0.9, "x2 Answer: 2": 0.5, "x3 Answer: 2": 0.5, "x4 Answer: 1": 0.0}
    )
    gen = ScriptedGenerator({"": texts})
    plain = await REGISTRY["best_of_n"].run(problem(), gen, prm, {"n": 4, "mode": "plain"}, BIG)
    assert plain.text == "x1 Answer: 1" and plain.score == 0.9
    gen = ScriptedGenerator({"": texts})
    weighted = await REGISTRY["best_of_n"].run(
        problem(), gen, prm, {"n": 4, "mode": "weighted"}, BIG
    )
    # answer 2 sums 1.0 > answer 1's 0.9: the best-scored member of answer 2 wins
    assert weighted.answer == "2" and weighted.text == "x2 Answer: 2"
    assert [c.n for c in gen.calls] == [4]  # one call with n=4 (shared prompt KV cache)
    assert sorted(c.score or 0.0 for c in weighted.candidates) == [0.0, 0.5, 0.5, 0.9]


async def test_best_of_n_without_verifier_is_a_majority_vote() -> None:
    gen = ScriptedGenerator({"": ["Answer: 3", "Answer: 4", "Answer: 4.0"]})
    result = await REGISTRY["best_of_n"].run(problem(), gen, None, {"n": 3}, BIG)
    assert result.answer == "4"


async def test_self_consistency_stops_early_on_a_decided_vote() -> None:
    gen = ScriptedGenerator({"": ["Answer: 5"]})
    params = {"n": 5, "round_size": 3}
    result = await REGISTRY["self_consistency"].run(problem(), gen, None, params, BIG)
    # 3 votes for 5 after round one; 2 samples left cannot catch up: stop at 3 of 5
    assert [c.n for c in gen.calls] == [3]
    assert result.answer == "5" and result.score == 1.0 and len(result.candidates) == 3


async def test_self_consistency_keeps_sampling_on_a_close_vote() -> None:
    gen = ScriptedGenerator({"": ["Answer: 5", "Answer: 6"]})
    params = {"n": 8, "round_size": 2}
    result = await REGISTRY["self_consistency"].run(problem(), gen, None, params, BIG)
    assert sum(c.n for c in gen.calls) == 8
    assert result.answer == "5" and result.score == 0.5  # tie, first appearance


async def test_self_consistency_breaks_ties_by_verifier_score() -> None:
    gen = ScriptedGenerator({"": ["a Answer: 5", "b Answer: 6"]})
    prm = ScriptedPRM({"a Answer: 5": 0.2, "b Answer: 6": 0.8})
    result = await REGISTRY["self_consistency"].run(
        problem(), gen, prm, {"n": 4, "round_size": 4}, BIG
    )
    assert result.answer == "6"


async def test_self_consistency_confidence_stop() -> None:
    gen = ScriptedGenerator({"": ["Answer: 1", "Answer: 1", "Answer: 1", "Answer: 2"]})
    params = {"n": 64, "round_size": 4, "confidence": 0.7, "min_samples": 4}
    result = await REGISTRY["self_consistency"].run(problem(), gen, None, params, BIG)
    assert sum(c.n for c in gen.calls) == 4 and result.answer == "1"


async def test_token_budget_cuts_a_run_and_keeps_an_answer() -> None:
    gen = ScriptedGenerator({"": ["Answer: 77"]})  # 10 tokens per sample, 10 prompt tokens
    budget = Budget(max_tokens=60, max_tokens_per_sample=64)
    result = await REGISTRY["self_consistency"].run(
        problem(), gen, None, {"n": 16, "round_size": 4, "adaptive": True}, budget
    )
    assert result.anytime and result.answer == "77"
    assert sum(c.n for c in gen.calls) < 16
    assert any("tokens" in note for note in result.notes)


async def test_deadline_cuts_a_run_and_keeps_an_answer() -> None:
    gen = ScriptedGenerator({"": ["Answer: 5", "Answer: 6"]}, delay_s=0.15)
    budget = Budget(deadline_s=0.25, max_tokens_per_sample=64)
    result = await REGISTRY["self_consistency"].run(
        problem(), gen, None, {"n": 64, "round_size": 2}, budget
    )
    assert result.anytime and result.answer in {"5", "6"} and len(result.candidates) == 2


async def test_deadline_before_any_answer_returns_empty_anytime_result() -> None:
    gen = ScriptedGenerator({"": ["Answer: 5"]}, delay_s=0.3)
    result = await REGISTRY["greedy"].run(problem(), gen, None, {}, Budget(deadline_s=0.05))
    assert result.anytime and result.text == "" and result.answer is None
