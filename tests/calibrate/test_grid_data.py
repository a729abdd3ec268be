"""Grid specs and the evaluation file format."""

from __future__ import annotations

import pytest

from classifier.base import Tier
from router.calibrate import (
    EvalFileError,
    GridConfig,
    GridError,
    default_grid,
    parse_grid,
    parse_items,
    parse_spec,
)


def test_spec_expands_lists() -> None:
    configs = parse_spec("best_of_n n=2,4 mode=plain temperature=0.8 verifier=math_reference")
    assert [c.params for c in configs] == [
        {"n": 2, "mode": "plain", "temperature": 0.8},
        {"n": 4, "mode": "plain", "temperature": 0.8},
    ]
    assert {c.verifier for c in configs} == {"math_reference"}
    with pytest.raises(GridError):
        parse_spec("n=2")
    with pytest.raises(GridError):
        parse_spec("greedy temperature")


def test_grid_file_cartesian_product_and_dedupe() -> None:
    grid = parse_grid(
        """
configs:
  - strategy: self_consistency
    params: {n: [4, 8], temperature: [0.5, 0.7], stop: ["\\n"]}
  - strategy: greedy
  - strategy: greedy
"""
    )
    assert len(grid) == 5
    assert grid[0].params == {"n": 4, "temperature": 0.5, "stop": ["\n"]}
    assert grid[-1] == GridConfig.make("greedy")
    with pytest.raises(GridError, match="unknown key"):
        parse_grid("configs: [{strategy: greedy, budget: 3}]")
    with pytest.raises(GridError, match="non-empty list"):
        parse_grid("configs: []")


def test_default_grid() -> None:
    labels = [c.label for c in default_grid(["rollouts"])]
    assert labels[0] == "greedy(temperature=0.0)"
    assert "best_of_n(mode=plain,n=16)+rollouts" in labels and len(labels) == 7


def test_eval_items() -> None:
    items = parse_items([
        '{"question": "2+2?", "answer": "4", "tier": "Easy"}',
        "",
        '{"id": "x", "text": "q", "prompt": "1+1=2\\nq=", "reference": "3"}',
        '{"id": "y", "question": "f", "tests": "assert f() == 1"}',
    ])
    assert items[0].tier == Tier.EASY and items[0].reference == "4"
    assert items[1].messages[0].content == "1+1=2\nq=" and items[1].question == "q"
    assert items[2].answer_format == "code"
    assert items[0].key != parse_items(['{"question": "2+2?", "answer": "5"}'])[0].key
    for bad, message in [
        ('{"question": "q"}', "needs 'reference'"),
        ('{"reference": "1"}', "missing 'question'"),
        ('{"question": "q", "reference": "1", "tier": "trivial"}', "unknown tier"),
        ("[1]", "expected a JSON object"),
        ("{", "invalid JSON"),
    ]:
        with pytest.raises(EvalFileError, match=message):
            parse_items([bad])
    with pytest.raises(EvalFileError, match="duplicate id"):
        parse_items(['{"id": "a", "question": "q", "reference": "1"}'] * 2)
