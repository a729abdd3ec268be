"""Beam search, DVTS and MCTS pinned with a scripted generator and a scripted PRM."""

from typing import Any

import pytest

from router.errors import PolicyError
from strategies import REGISTRY, Budget
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

B = Budget(max_tokens_per_sample=256)
D = "\n\n"


async def test_beam_search_keeps_the_top_k_by_aggregated_score() -> None:
    gen = ScriptedGenerator(
        {
            "": ["a", "b", "c", "d"],
            "a\n\n": ["a1", "Answer: 1"],
            "c\n\n": ["Answer: 3", "c1"],
        }
    )
    prm = ScriptedPRM(
        {
            "a": 0.9,
            "b": 0.2,
            "c": 0.8,
            "d": 0.5,
            "a1": 0.4,
            "Answer: 1": 0.3,
            "Answer: 3": 0.7,
            "c1": 0.1,
        }
    )
    params = {"width": 2, "expansions": 2, "max_depth": 2, "aggregation": "min", "trace": True}
    result = await REGISTRY["beam_search"].run(problem(), gen, prm, params, B)
    assert [(c.prefix, c.n) for c in gen.calls] == [("", 4), ("a\n\n", 2), ("c\n\n", 2)]
    assert all(c.stop[0] == D for c in gen.calls)
    # finished: a->Answer: 1 (min .3) and c->Answer: 3 (min .7); best is c's
    assert result.answer == "3" and result.text == "c\n\nAnswer: 3"
    assert result.score == pytest.approx(0.7)
    assert result.trace is not None and result.trace["events"][0]["kept"] == [0.9, 0.8]


async def test_beam_search_speculative_rejection_drops_weak_chains() -> None:
    gen = ScriptedGenerator({"": ["a", "b"], "a\n\n": ["Answer: 1"], "b\n\n": ["Answer: 2"]})
    prm = ScriptedPRM({"a": 0.9, "b": 0.2}, default=0.9)
    params = {"width": 2, "expansions": 1, "reject_below": 0.5, "max_depth": 3}
    result = await REGISTRY["beam_search"].run(problem(), gen, prm, params, B)
    assert "b\n\n" not in [c.prefix for c in gen.calls]
    assert result.answer == "1"


async def test_step_level_strategies_refuse_to_run_without_a_verifier() -> None:
    gen = ScriptedGenerator({"": ["Answer: 1"]})
    for name in ("beam_search", "dvts", "mcts"):
        with pytest.raises(PolicyError, match="needs a verifier"):
            await REGISTRY[name].run(problem(), gen, None, {}, B)


async def test_dvts_subtrees_do_not_share_beams() -> None:
    gen = ScriptedGenerator(
        {
            "": ["a", "b"],
            "a\n\n": ["a1", "a2"],
            "b\n\n": ["b1", "b2"],
            "a\n\na1\n\n": ["Answer: 1"],
            "a\n\na2\n\n": ["Answer: 1"],
            "b\n\nb1\n\n": ["Answer: 2"],
            "b\n\nb2\n\n": ["Answer: 2"],
        }
    )
    prm = ScriptedPRM(
        {
            "a": 0.9,
            "b": 0.1,
            "a1": 0.9,
            "a2": 0.8,
            "b1": 0.3,
            "b2": 0.2,
            "Answer: 1": 0.6,
            "Answer: 2": 0.95,
        }
    )
    params = {"n": 4, "width": 2, "expansions": 2, "max_depth": 4, "aggregation": "last"}
    result = await REGISTRY["dvts"].run(problem(), gen, prm, params, B)
    prefixes = [c.prefix for c in gen.calls]
    assert gen.calls[0].n == 2  # one first step per subtree, in one call
    # subtree b keeps its own (weak) beams: a single beam of width 2 would have dropped them
    assert "b\n\nb1\n\n" in prefixes and "b\n\nb2\n\n" in prefixes
    for c in result.candidates:
        assert c.text.startswith(("a\n\n", "b\n\n"))
        assert not (("a1" in c.text or "a2" in c.text) and c.text.startswith("b"))
    assert result.answer == "2"  # best across subtrees by aggregated (last-step) score


async def test_beam_and_dvts_max_samples() -> None:
    assert REGISTRY["beam_search"].max_samples({"width": 2, "expansions": 3, "max_depth": 4}) == 24
    assert REGISTRY["dvts"].max_samples({"n": 8, "width": 4, "expansions": 2, "max_depth": 3}) == 50
    assert REGISTRY["mcts"].max_samples({"simulations": 5, "branching": 3}) == 16


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for c in node["children"] for n in _walk(c))]


async def test_mcts_visits_unvisited_children_first_and_counts_add_up() -> None:
    gen = ScriptedGenerator(
        {
            "": ["s1", "s2"],
            "s2\n\n": ["Answer: 4", "t2"],
            "s1\n\n": ["Answer: 9", "u2"],
            "s2\n\nt2\n\n": ["Answer: 5", "Answer: 6"],
        }
    )
    prm = ScriptedPRM(
        {
            "s1": 0.3,
            "s2": 0.7,
            "Answer: 4": 0.9,
            "t2": 0.5,
            "Answer: 9": 0.1,
            "u2": 0.2,
            "Answer: 5": 0.4,
            "Answer: 6": 0.4,
        }
    )
    params = {
        "simulations": 6,
        "branching": 2,
        "exploration": 0.5,
        "aggregation": "last",
        "trace": True,
        "max_depth": 4,
    }
    result = await REGISTRY["mcts"].run(problem(), gen, prm, params, B)
    assert result.trace is not None
    paths = [e["path"] for e in result.trace["events"] if e["kind"] == "simulation"]
    # sims 1 and 2 take the two unvisited root children in order; then UCB picks s2 (0.7)
    assert paths[0] == [0, 1] and paths[1] == [0, 2]
    assert paths[2][:2] == [0, 2] and len(paths[2]) == 3
    tree = result.trace["tree"]
    assert tree["visits"] == 6
    for node in _walk(tree):
        if node["children"]:
            below = sum(c["visits"] for c in node["children"])
            assert node["visits"] in (below, below + 1)  # +1: once evaluated as a leaf itself
    assert tree["visits"] == sum(c["visits"] for c in tree["children"])
    assert result.answer == "4"  # best terminal by mean value
    assert prm.calls[0] == [["s1\n\n"], ["s2\n\n"]]  # siblings scored in one call


async def test_mcts_ucb_tie_break_and_budget_cut_returns_partial_answer() -> None:
    gen = ScriptedGenerator(
        {"": ["s1", "s2"], "s1\n\n": ["x", "y"], "s2\n\n": ["z", "w"]}, delay_s=0.1
    )
    prm = ScriptedPRM(default=0.5)
    result = await REGISTRY["mcts"].run(
        problem(), gen, prm, {"simulations": 50, "branching": 2}, Budget(deadline_s=0.25)
    )
    assert result.anytime and result.text.startswith("s")


async def test_token_level_steps_end_only_when_the_model_stops() -> None:
    gen = ScriptedGenerator({"": [("5", "length")], "5": [("9", "length")], "59": [("", "stop")]})
    params = {
        "width": 1,
        "expansions": 1,
        "step_delimiter": "",
        "step_max_tokens": 1,
        "terminal": "stop",
        "answer_format": "number",
        "max_depth": 5,
    }
    result = await REGISTRY["beam_search"].run(problem(), gen, ScriptedPRM(default=0.9), params, B)
    # a digit is a number but not a final answer: the chain grows until the model stops
    assert [c.prefix for c in gen.calls] == ["", "5", "59"]
    assert result.answer == "59" and result.candidates[0].steps == ("5", "9")
