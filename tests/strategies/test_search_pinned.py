"""Search behaviour pinned tightly enough that a broken search fails a test.

Each test names the mutation it guards against: MCTS without (or with a negated) exploration
term, MCTS backing values up to the leaf only, and an aggregation that computes another one.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from strategies import REGISTRY, Budget, aggregate
from strategies.mcts import Node, backpropagate, select
from strategies.steps import Chain
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

B = Budget(max_tokens_per_sample=256)

# Step scores where min, product, mean and last all differ, and each picks another candidate.
FOUR = {
    "c1": [0.7, 0.7],  # min .70   product .490  mean .700  last .70
    "c2": [1.0, 0.65],  # min .65   product .650  mean .825  last .65
    "c3": [0.3, 1.0, 1.0],  # min .30   product .300  mean .767  last 1.0
    "c4": [0.95, 0.95, 0.62],  # min .62   product .5596 mean .840  last .62
}
WINNER = {"min": "1", "product": "2", "mean": "4", "last": "3"}


def test_each_aggregation_has_its_own_value() -> None:
    scores = [0.5, 0.8, 0.6]
    assert aggregate(scores, "min") == 0.5
    assert aggregate(scores, "product") == pytest.approx(0.24)
    assert aggregate(scores, "mean") == pytest.approx(1.9 / 3)
    assert aggregate(scores, "last") == 0.6
    values = {how: aggregate(scores, how) for how in ("min", "product", "mean", "last")}
    assert len(set(values.values())) == 4


def _four_candidates() -> tuple[ScriptedGenerator, ScriptedPRM]:
    texts, table = [], {}
    for name, steps in FOUR.items():
        parts = [f"{name} step {i}" for i in range(len(steps) - 1)] + [f"Answer: {name[1]}"]
        texts.append("\n\n".join(parts))
        # the final steps read alike; the PRM tells them apart by candidate
        table.update({p: s for p, s in zip(parts[:-1], steps[:-1], strict=True)})
        table[f"Answer: {name[1]}"] = steps[-1]
    return ScriptedGenerator({"": texts}), ScriptedPRM(table)


@pytest.mark.parametrize("how", ["min", "product", "mean", "last"])
async def test_best_of_n_picks_the_winner_of_each_aggregation(how: str) -> None:
    gen, prm = _four_candidates()
    params = {"n": 4, "mode": "plain", "aggregation": how}
    result = await REGISTRY["best_of_n"].run(problem(), gen, prm, params, B)
    assert result.answer == WINNER[how]
    by_answer = {c.answer: c.score for c in result.candidates}
    for name, steps in FOUR.items():
        assert by_answer[name[1]] == pytest.approx(aggregate(steps, how))
    assert [c.n for c in gen.calls] == [4]  # one call, n samples
    assert len(prm.calls) == 1 and len(prm.calls[0]) == 4  # one scoring call, every candidate


@pytest.mark.parametrize("how", ["min", "product", "mean", "last"])
async def test_beam_search_ranks_chains_by_the_configured_aggregation(how: str) -> None:
    """Two chains of two steps; which one survives a width-1 beam depends on `aggregation`."""
    gen = ScriptedGenerator(
        {
            "": ["p", "q"],
            "p\n\n": ["Answer: 1"],
            "q\n\n": ["Answer: 2"],
        }
    )
    # p: [0.9, 0.5] min .5 product .45 mean .7 last .5
    # q: [0.6, 0.7] min .6 product .42 mean .65 last .7
    prm = ScriptedPRM({"p": 0.9, "q": 0.6, "Answer: 1": 0.5, "Answer: 2": 0.7})
    params = {"width": 2, "expansions": 1, "max_depth": 3, "aggregation": how}
    result = await REGISTRY["beam_search"].run(problem(), gen, prm, params, B)
    expected = {"min": "2", "product": "1", "mean": "1", "last": "2"}[how]
    assert result.answer == expected
    assert result.score == pytest.approx(
        aggregate([0.9, 0.5] if expected == "1" else [0.6, 0.7], how)
    )


# -- MCTS: exact UCB order on a scripted tree --------------------------------------------

TREE = {
    "": ["A", "B"],
    "A\n\n": ["A1", "A2"],
    "B\n\n": ["B1", "B2"],
    "A\n\nA1\n\n": ["Answer: 1", "Answer: 1"],
    "B\n\nB1\n\n": ["Answer: 2", "Answer: 2"],
    "B\n\nB2\n\n": ["Answer: 3", "Answer: 3"],
}
TREE_SCORES = {"A": 0.6, "B": 0.4, "A1": 0.6, "A2": 0.1, "B1": 0.9, "B2": 0.5}


async def _mcts(simulations: int, exploration: float = 1.0) -> tuple[Any, list[Any]]:
    gen = ScriptedGenerator(TREE)
    prm = ScriptedPRM(TREE_SCORES, default=0.2)
    params = {
        "simulations": simulations,
        "branching": 2,
        "exploration": exploration,
        "aggregation": "last",
        "max_depth": 4,
        "trace": True,
    }
    result = await REGISTRY["mcts"].run(problem(), gen, prm, params, B)
    assert result.trace is not None
    sims = [e for e in result.trace["events"] if e["kind"] == "simulation"]
    return result, sims


async def test_mcts_follows_the_exact_ucb1_order() -> None:
    """Ids: root 0, A 1, B 2 (root expanded in sim 1), A1 3, A2 4 (A expanded in sim 3),
    B1 5, B2 6 (B expanded in sim 4). c = 1, `last` aggregation (a node's value = its score).

    sim 1: root expanded, first child A backs up 0.6           path 0,1
    sim 2: B unvisited                                          path 0,2   (0.4)
    sim 3: equal visits, A has the higher mean: A expanded, A1  path 0,1,3 (0.6)
    sim 4: root N=3. UCB(A) = 0.6 + sqrt(ln 3 / 2) = 1.341;
           UCB(B) = 0.4 + sqrt(ln 3 / 1) = 1.448: B, expanded   path 0,2,5 (0.9)
           (exploitation alone, or a negated bonus, picks A here)
    sim 5: root N=4. A: 0.6 + sqrt(ln 4 / 2) = 1.433; B: 0.65 + same = 1.483 -> B;
           B2 unvisited                                         path 0,2,6 (0.5)
    sim 6: root N=5. A: 0.6 + sqrt(ln 5 / 2) = 1.497; B: (0.4+0.9+0.5)/3 = 0.6
           + sqrt(ln 5 / 3) = 1.330 -> A; A2 unvisited          path 0,1,4 (0.1)
    """
    _, sims = await _mcts(6)
    assert [e["path"] for e in sims] == [
        [0, 1],
        [0, 2],
        [0, 1, 3],
        [0, 2, 5],
        [0, 2, 6],
        [0, 1, 4],
    ]
    assert [e["value"] for e in sims] == [0.6, 0.4, 0.6, 0.9, 0.5, 0.1]


async def test_mcts_without_exploration_exploits_only() -> None:
    """The same tree with c = 0 takes A at sim 4 (0.6 > 0.4): the order above depends on the
    exploration term, so a dropped term cannot pass the previous test."""
    _, sims = await _mcts(4, exploration=0.0)
    assert [e["path"] for e in sims][3] == [0, 1, 4]


def test_ucb1_value_of_a_node() -> None:
    root = Node(Chain(), 0, visits=10, value_sum=5.0)
    child = Node(Chain(), 1, root, visits=4, value_sum=3.0)
    assert child.ucb(2.0) == pytest.approx(0.75 + 2.0 * math.sqrt(math.log(10) / 4))
    assert child.ucb(0.0) == pytest.approx(0.75)
    assert Node(Chain(), 2, root).ucb(1.0) == math.inf  # unvisited first


def test_select_prefers_the_less_visited_child_when_exploration_says_so() -> None:
    root = Node(Chain(), 0, visits=20, value_sum=10.0, expanded=True)
    busy = Node(Chain(), 1, root, visits=18, value_sum=10.8)  # mean 0.6
    rare = Node(Chain(), 2, root, visits=2, value_sum=1.0)  # mean 0.5
    root.children = [busy, rare]
    assert select(root, 1.0) == [root, rare]  # 0.5 + 1.224 beats 0.6 + 0.408
    assert select(root, 0.0) == [root, busy]


async def test_mcts_backs_every_value_up_the_whole_path() -> None:
    """visits and value sums of every node equal what the simulations through it brought."""
    result, sims = await _mcts(6)
    tree = result.trace["tree"]
    nodes: dict[int, dict[str, Any]] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes[node["id"]] = node
        stack.extend(node["children"])
    for node_id, node in nodes.items():
        through = [e["value"] for e in sims if node_id in e["path"]]
        assert node["visits"] == len(through), node_id
        if through:
            assert node["mean"] == pytest.approx(sum(through) / len(through), abs=1e-4), node_id
    assert nodes[0]["visits"] == 6
    assert nodes[0]["mean"] == pytest.approx((0.6 + 0.4 + 0.6 + 0.9 + 0.5 + 0.1) / 6, abs=1e-4)
    assert nodes[2]["mean"] == pytest.approx((0.4 + 0.9 + 0.5) / 3, abs=1e-4)  # B, interior


def test_backpropagate_adds_to_every_node_on_the_path() -> None:
    root = Node(Chain(), 0)
    mid = Node(Chain(), 1, root)
    leaf = Node(Chain(), 2, mid)
    backpropagate([root, mid, leaf], 0.25)
    backpropagate([root, mid], 0.75)
    assert [(n.visits, n.value_sum) for n in (root, mid, leaf)] == [(2, 1.0), (2, 1.0), (1, 0.25)]
