"""The tier mapping of the training mix, the split and operator data."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from classifier.base import Tier
from classifier.data import (
    Example,
    cap_strata,
    default_data_dir,
    is_test,
    load_eval,
    load_mix,
    load_operator_jsonl,
    split,
)
from classifier.labels import (
    EVAL_SOURCES,
    SOURCES,
    aime_tier,
    amc_tier,
    contest_index_tier,
    leetcode_tier,
    math_level_tier,
    omni_tier,
    rule_task,
    solve_rate_tier,
    task_of,
)

E, M, H, V = Tier.EASY, Tier.MEDIUM, Tier.HARD, Tier.VERY_HARD


def test_multi_tier_sources_map_by_their_difficulty_field() -> None:
    assert [math_level_tier(lv) for lv in (1, 2, 3, 4, 5)] == [E, M, M, H, H]
    assert math_level_tier(None) is None
    assert [leetcode_tier(d) for d in ("Easy", "Medium", "Hard")] == [E, M, H]
    assert [contest_index_tier(i) for i in ("A", "B", "C", "D", "E", "E1", "F2", "K")] == [
        M, M, H, H, V, V, V, V,
    ]
    assert [amc_tier(d) for d in (1.0, 2.5, 2.6, 4.0)] == [M, M, H, H]
    assert [aime_tier(d) for d in (2.0, 4.875, 5.0, 6.0)] == [H, H, V, V]
    assert [omni_tier(d) for d in (1.0, 2.0, 2.5, 5.0, 5.25, 5.5, 9.5)] == [M, M, H, H, H, V, V]


def test_solve_rate_thresholds_are_configurable_and_checked() -> None:
    th = (0.8, 0.5, 0.2)
    assert [solve_rate_tier(r, th) for r in (1.0, 0.8, 0.79, 0.5, 0.2, 0.19, 0.0)] == [
        E, E, M, M, H, V, V,
    ]
    assert solve_rate_tier(0.7, (0.6, 0.3, 0.1)) is E
    with pytest.raises(ValueError, match="descend"):
        solve_rate_tier(0.5, (0.2, 0.5, 0.8))


def test_math500_is_evaluation_only() -> None:
    assert "math500" in EVAL_SOURCES
    assert all("math500" not in spec.path for spec in SOURCES.values())


def test_split_is_a_deterministic_function_of_the_text() -> None:
    texts = [f"question number {i}" for i in range(2000)]
    share = sum(map(is_test, texts)) / len(texts)
    assert 0.15 < share < 0.25
    exs = [Example(t, E, "s", "s/easy") for t in texts]
    a_train, a_test = split(exs)
    _b_train, b_test = split(list(reversed(exs)))
    assert {e.text for e in a_test} == {e.text for e in b_test}
    assert not {e.text for e in a_train} & {e.text for e in a_test}


def test_cap_per_stratum_is_deterministic() -> None:
    exs = [Example(f"t{i}", E, "s", f"s/{i % 3}") for i in range(300)]
    a, b = cap_strata(exs, 20, seed=1), cap_strata(exs, 20, seed=1)
    assert a == b and len(a) == 60
    assert cap_strata(exs, 20, seed=2) != a


def test_operator_jsonl_tiers_and_solve_rates(tmp_path: Path) -> None:
    p = tmp_path / "ops.jsonl"
    rows = [
        {"text": "a", "tier": "Hard"},
        {"text": "b", "solve_rate": 0.95},
        {"text": "c", "solve_rate": 0.1},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = [e.tier for e in load_operator_jsonl(p)]
    assert got == [H, E, V]
    assert [e.tier for e in load_operator_jsonl(p, (0.99, 0.98, 0.05))] == [H, H, H]
    p.write_text(json.dumps({"text": "x", "tier": "impossible"}) + "\n")
    with pytest.raises(ValueError, match="unknown tier"):
        load_operator_jsonl(p)
    p.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(ValueError, match="solve_rate"):
        load_operator_jsonl(p)


DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "SOURCES.md").exists(),
    reason=f"the raw training mix is not on this machine ({DATA})",
)

# every source, and the tiers its rows may land in (the table in classifier/labels.py)
INTENDED: dict[str, set[Tier]] = {
    "nq_open": {E}, "nq_open_efficientqa": {E}, "mt_bench": {E, M}, "vicuna_bench": {E, M},
    "self_instruct_seed": {E}, "self_instruct_user": {E}, "ifeval": {E}, "truthfulqa": {M},
    "arena_hard": {H}, "math": {E, M, H}, "gsm8k": {M}, "humaneval": {E}, "mbpp": {E},
    "leetcode": {E, M, H}, "codeforces": {M, H, V}, "codecontests": {M, H, V},
    "amc": {M, H}, "aime": {H, V}, "omni_math": {M, H, V}, "olympiadbench": {H},
}


@needs_data
def test_every_source_lands_in_its_intended_tiers() -> None:
    assert set(INTENDED) == set(SOURCES)
    mix = load_mix(DATA, strict=True)
    seen: dict[str, set[Tier]] = defaultdict(set)
    for ex in mix:
        seen[ex.source].add(ex.tier)
    assert dict(seen) == INTENDED
    by_stratum = {ex.stratum: ex.tier for ex in mix}
    assert by_stratum["mt_bench/writing"] is E and by_stratum["mt_bench/reasoning"] is M
    assert by_stratum["math/level1"] is E and by_stratum["math/level5"] is H
    math500 = {e.text for e in load_eval(DATA)}
    assert len(math500) == 500 and not math500 & {e.text for e in mix}


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("Create a riddle about the name Sheldon using only 10 words.", "creative"),
        ("Write a poem about a Python interpreter.", "creative"),
        ("What is the answer to the riddle that asks what you can catch but not throw?", "logic"),
        ("Hi, I'm looking for two Tamil movies to watch. Please recommend exactly two.", "other"),
        ("Hi there, how is your day going?", "chat"),
        ("count distinct values in a column given a constraint from another column in ssms",
         "code"),
        ("Summarize the following article in three sentences.", "rewrite"),
        ("Write an itinerary for a 10-day trip to Nepal.", "planning"),
    ],
)
def test_task_rules_label_what_the_prompt_asks_for(text: str, task: str) -> None:
    assert rule_task(text) == task


def test_vicuna_advice_and_common_sense_questions_are_not_chat_or_puzzles() -> None:
    assert task_of("vicuna_bench", "generic", "How can I improve my time management?") == "factual"
    assert task_of("vicuna_bench", "common-sense", "How can you tell if a place is popular?") == (
        "factual"
    )
    assert task_of("vicuna_bench", "fermi", "How many snowflakes fall in a winter?") == "logic"
