"""Grid specs and the evaluation file format."""

from __future__ import annotations

import pytest

from classifier.base import Tier
from router.calibrate import (
    EvalFileError,
    GridConfig,
    GridError,
    ResultCache,
    StrategyRunner,
    default_grid,
    parse_grid,
    parse_items,
    parse_spec,
    run_grid,
)
from router.calibrate.grid import family, is_posterior
from strategies import REGISTRY, UpstreamGenerator
from strategies.answers import extract_answer
from tests.fakes import ScriptedUpstream


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
    configs = default_grid(["rollouts"])
    labels = [c.label for c in configs]
    assert labels[0] == "greedy(temperature=0.0)"
    assert "best_of_n(mode=plain,n=16)+rollouts" in labels and len(labels) == 13
    # posterior allocation is in the default grid: early stop (by vote and by verifier score)
    # and the agreement cascade
    posterior = [c for c in configs if is_posterior(c)]
    assert {c.strategy for c in posterior} == {"self_consistency", "best_of_n", "cascade"}
    assert "cascade(draft=self_consistency:2,escalate=self_consistency:8,threshold=1.0)" in labels
    assert "best_of_n(mode=plain,n=8,round_size=2,stop_score=0.8)+rollouts" in labels
    assert len({family(c) for c in configs}) == 6
    assert "best-of-N plain, stop at score 0.8 + rollouts" in {family(c) for c in configs}
    for c in posterior:
        assert REGISTRY[c.strategy].check_params(c.params) == []
    # without a verifier, best-of-N cannot stop on a score: not posterior
    assert not is_posterior(GridConfig.make("best_of_n", {"n": 8, "stop_score": 0.8}))
    # thinking budgets are a family of their own
    thinking = [c for c in default_grid([], [256, 1024]) if c.strategy == "thinking"]
    assert [c.params["budget_tokens"] for c in thinking] == [256, 1024]
    assert {family(c) for c in thinking} == {"thinking budget"}
    cascade = next(c for c in configs if c.strategy == "cascade")
    assert REGISTRY["cascade"].check_params(cascade.params) == []


def test_first_line_answers_for_continuations() -> None:
    # a base model continuing a few-shot prompt answers, then writes the next example
    [cont, chat, forced] = parse_items([
        '{"question": "3+4", "prompt": "1+1=2\\n3+4=", "reference": "7", '
        '"answer_format": "number"}',
        '{"question": "3+4?", "reference": "7", "answer_format": "number"}',
        '{"question": "5+2", "prompt": "5+2=", "reference": "7", "answer_from": "all"}',
    ])
    assert cont.answer_from == "first_line" and chat.answer_from == "all"
    assert forced.answer_from == "all"
    text = "7\n4+5=11"
    assert extract_answer(text, cont.problem().answer_format) == "7"
    assert extract_answer(text, chat.problem().answer_format) == "11"
    assert parse_items(['{"question": "q", "prompt": "p", "reference": "1"}'],
                       answer_from="all")[0].answer_from == "all"
    with pytest.raises(EvalFileError, match="answer_from"):
        parse_items(['{"question": "q", "reference": "1", "answer_from": "last"}'])


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


async def test_continuation_scored_on_its_first_line_and_raw_text_kept() -> None:
    [item] = parse_items(['{"question": "3+4", "prompt": "1+1=2\\n3+4=", "reference": "7"}'])
    upstream = ScriptedUpstream(lambda request: "7\n4+5=11")
    runner = StrategyRunner(UpstreamGenerator(upstream), lambda name: None)
    for config in (GridConfig.make("greedy", {"temperature": 0.0}),
                   GridConfig.make("self_consistency", {"n": 4})):
        run = await run_grid([item], [config], runner, ResultCache(None), model="m",
                             max_tokens=8)
        [record] = run.records
        assert record.correct and record.answer == "7"
        assert record.text == "7\n4+5=11"  # what the model wrote, to see why an item failed
