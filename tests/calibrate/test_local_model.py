"""A small real calibration: a handful of arithmetic questions, two configurations, on the
embedded Gemma 3 270M (xllamacpp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.loader import load_policy
from router.calibrate import (
    EvalItem,
    GridConfig,
    Options,
    ResultCache,
    calibrate_model,
    write_outputs,
)
from router.calibrate.holdout import check_dominates
from router.upstreams.base import Message, Upstream
from strategies import answers_equivalent

SHOTS = "2+3=5\n4+4=8\n1+6=7\n5+2=7\n"
QUESTIONS = [("3+1", 4), ("2+2", 4), ("6+1", 7), ("47+38", 85)]


@pytest.mark.model
async def test_calibrate_on_the_local_model(local_upstream: Upstream, tmp_path: Path) -> None:
    items = [
        EvalItem(id=f"q{i}", question=q, messages=(Message("user", SHOTS + q + "="),),
                 reference=str(a), answer_format="number")
        for i, (q, a) in enumerate(QUESTIONS)
    ]
    stop = {"stop": ["\n"], "answer_format": "number"}
    configs = [
        GridConfig.make("greedy", {"temperature": 0.0, **stop}),
        GridConfig.make("best_of_n", {"n": 4, "mode": "plain", **stop}, "math_reference"),
    ]
    loaded = load_policy(None)
    opts = Options(max_tokens=6, metric="generated", concurrency=2, deadline_s=60)
    cache = ResultCache(tmp_path / "results.jsonl")
    run, cal = await calibrate_model(items, configs, loaded.policy, "local",
                                     lambda name: local_upstream, cache, opts)
    assert run.ran == 8 and not run.errors
    reference = {it.key: it.reference for it in items}
    for r in run.records:
        assert r.correct == answers_equivalent(r.answer, reference[r.item])
        assert r.prompt_tokens > 0 and r.completion_tokens > 0 and r.calls >= 1
    bon = [r for r in run.records if r.label.startswith("best_of_n")]
    assert all(r.candidates == 4 for r in bon)
    # the exact checker picks a right sample whenever one exists
    assert all(r.correct == (r.candidates_correct > 0) for r in bon)
    assert set(cal.tiers) >= {"all"}
    assert check_dominates(cal) == []  # real results: the frontier is never below uniform
    paths = write_outputs(cal, items, tmp_path / "out", model="local", opts=opts,
                          policy=loaded.policy)
    assert "tiers:" in paths["policy_fragment"].read_text()
    again, _ = await calibrate_model(items, configs, loaded.policy, "local",
                                     lambda name: local_upstream,
                                     ResultCache(tmp_path / "results.jsonl"), opts)
    assert again.ran == 0 and again.reused == 8
