"""Resampling after speculative rejection (beam search, DVTS) and `reject_below` in MCTS."""

from __future__ import annotations

from typing import Any

from strategies import REGISTRY, Budget
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

PRM = {"a": 0.9, "b": 0.8, "c": 0.95, "x": 0.1, "Answer: 1": 0.9, "Answer: 2": 0.7}
SCRIPT = {
    # the first n=4 draw rejects two "x"; a resample draw (n=2) gives "c" and another "x"
    "": ["a", "x", "x", "b", "c", "x"],
    "a\n\n": ["Answer: 1"],
    "b\n\n": ["Answer: 2"],
    "c\n\n": ["Answer: 2"],
}
BEAM = {"width": 2, "expansions": 2, "reject_below": 0.5, "max_depth": 3, "trace": True}


def root_draws(gen: ScriptedGenerator) -> list[int]:
    return [c.n for c in gen.calls if c.prefix == ""]


async def run(name: str, params: dict[str, Any], budget: Budget | None = None) -> Any:
    gen = ScriptedGenerator(SCRIPT)
    result = await REGISTRY[name].run(problem(), gen, ScriptedPRM(PRM), params, budget or Budget())
    return gen, result


async def test_beam_search_resamples_one_fresh_chain_per_rejected_one() -> None:
    gen, result = await run("beam_search", {**BEAM, "resample": True})
    assert root_draws(gen) == [4, 2]  # 2 rejected -> 2 fresh first steps, in one call
    depth = [e for e in result.trace["events"] if e["kind"] == "depth"]
    assert depth[0]["resampled"] == 2 and depth[0]["rejected"] == 3  # x, x, and the fresh x
    assert depth[0]["kept"] == [0.95, 0.9]  # the fresh "c" made it into the beam ...
    assert "c\n\n" in [c.prefix for c in gen.calls]  # ... and was expanded
    assert len(result.candidates) == 4 + 3  # 2 finished from each of a and c; 3 rejected


async def test_without_the_switch_rejected_chains_are_only_dropped() -> None:
    gen, result = await run("beam_search", BEAM)
    assert root_draws(gen) == [4]
    assert result.text == "a\n\nAnswer: 1"


async def test_resampling_is_capped_by_max_resamples_and_the_budget() -> None:
    gen, _ = await run("beam_search", {**BEAM, "resample": True, "max_resamples": 1})
    assert root_draws(gen) == [4, 1]
    # 300 tokens left cannot cover 2 x 256 (step_max_tokens) for even one fresh chain
    gen, _ = await run("beam_search", {**BEAM, "resample": True}, Budget(max_tokens=300))
    assert root_draws(gen) == [4]
    gen, _ = await run(
        "beam_search", {**BEAM, "resample": True, "step_max_tokens": 8}, Budget(max_tokens=300)
    )
    assert root_draws(gen) == [4, 2]


async def test_max_samples_counts_the_resamples() -> None:
    beam = REGISTRY["beam_search"]
    assert beam.max_samples({**BEAM, "resample": True, "max_resamples": 5}) == (
        beam.max_samples(BEAM) + 5
    )
    assert REGISTRY["dvts"].check_params({"resample": True, "max_resamples": 0}) == [
        "max_resamples must be >= 1, got 0"
    ]


async def test_dvts_resamples_inside_each_subtree() -> None:
    script = {
        "": ["a", "b", "c", "x"],  # two subtree roots, then the fresh draws
        "a\n\n": ["x", "x"],  # subtree 0: both continuations rejected
        "b\n\n": ["Answer: 2", "Answer: 2"],
        "c\n\n": ["Answer: 1"],
    }
    gen = ScriptedGenerator(script)
    params = {
        "n": 4,
        "width": 2,
        "expansions": 2,
        "reject_below": 0.5,
        "max_depth": 3,
        "resample": True,
        "trace": True,
    }
    result = await REGISTRY["dvts"].run(problem(), gen, ScriptedPRM(PRM), params, Budget())
    assert root_draws(gen) == [2, 2]  # the roots, then subtree 0's two replacements
    fresh = [e for e in result.trace["events"] if e["kind"] == "resample"]
    assert [e["n"] for e in fresh] == [2]
    assert result.text in ("c\n\nAnswer: 1", "b\n\nAnswer: 2")


async def test_mcts_drops_continuations_below_reject_below() -> None:
    script = {"": ["x", "a"], "a\n\n": ["x", "x"]}
    params = {"simulations": 6, "branching": 2, "reject_below": 0.5, "max_depth": 3}
    gen = ScriptedGenerator(script)
    result = await REGISTRY["mcts"].run(
        problem(), gen, ScriptedPRM(PRM), {**params, "trace": True}, Budget()
    )
    tree = result.trace["tree"]
    assert [c["step"] for c in tree["children"]] == ["a\n\n"]  # "x" never entered the tree
    assert tree["children"][0]["children"] == []  # both continuations of "a" rejected
    # "a" is a dead end and so is the root: the search stops instead of re-visiting it
    sims = [e for e in result.trace["events"] if e["kind"] == "simulation"]
    assert len(sims) == 2
    # two expansions, then (no terminal found) one completion of the best path, as before
    assert [(c.prefix, c.n) for c in gen.calls] == [("", 2), ("a\n\n", 2), ("a\n\n", 1)]
    assert any("3 continuation(s) rejected below 0.5" in n for n in result.notes)

    unfiltered = await REGISTRY["mcts"].run(
        problem(),
        ScriptedGenerator(script),
        ScriptedPRM(PRM),
        {**params, "reject_below": None, "trace": True},
        Budget(),
    )
    assert len(unfiltered.trace["tree"]["children"]) == 2
