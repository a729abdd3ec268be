"""Resumption (finished work is skipped, failures retried, torn lines ignored) and outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import yaml

from classifier.base import Tier
from classifier.data import load_operator_jsonl
from policies.loader import load_policy
from router.calibrate import Options, ResultCache, analyse, run_grid, write_outputs

from .scripted import BON16, CONFIGS, SC4, ScriptedRun, items

MODEL = "local"


async def test_resume_skips_finished_work_and_retries_failures(tmp_path: Path) -> None:
    its = items()
    path = tmp_path / "results.jsonl"
    first = ScriptedRun(fail={"h3"})
    run = await run_grid(its, CONFIGS, first, ResultCache(path), model=MODEL, max_tokens=16)
    assert run.ran == 35 and run.reused == 0 and len(run.errors) == 5
    assert len(path.read_text().splitlines()) == 35

    second = ScriptedRun()
    run = await run_grid(its, CONFIGS, second, ResultCache(path), model=MODEL, max_tokens=16)
    assert run.ran == 5 and run.reused == 35 and not run.errors
    assert {item for _, item, _ in second.calls} == {"h3"}
    assert len(run.records) == 40

    third = ScriptedRun()
    run = await run_grid(its, CONFIGS, third, ResultCache(path), model=MODEL, max_tokens=16,
                         repeats=2)
    assert third.calls and all(r == 1 for _, _, r in third.calls)  # only the new repeat
    assert run.reused == 40 and run.ran == 40


async def test_changed_inputs_are_not_reused(tmp_path: Path) -> None:
    its = items()
    path = tmp_path / "results.jsonl"
    await run_grid(its, CONFIGS, ScriptedRun(), ResultCache(path), model=MODEL, max_tokens=16)
    edited = [replace(its[0], reference="999"), *its[1:]]
    again = ScriptedRun()
    run = await run_grid(edited, CONFIGS, again, ResultCache(path), model=MODEL, max_tokens=16)
    assert {item for _, item, _ in again.calls} == {"e0"} and run.ran == len(CONFIGS)
    other = ScriptedRun()
    run = await run_grid(its, [SC4], other, ResultCache(path), model=MODEL, max_tokens=32)
    assert run.ran == len(its)  # another per-sample limit is another configuration


async def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    its = items()[:2]
    path = tmp_path / "results.jsonl"
    await run_grid(its, [SC4], ScriptedRun(), ResultCache(path), model=MODEL, max_tokens=16)
    with path.open("a") as f:
        f.write('{"v": 1, "config": "abc", "item"')  # killed mid-write
    cache = ResultCache(path)
    assert len(cache) == 2 and cache.skipped_lines == 1
    run = await run_grid(its, [SC4, BON16], ScriptedRun(), cache, model=MODEL, max_tokens=16)
    assert run.ran == 2
    reread = ResultCache(path)
    assert len(reread) == 4 and reread.skipped_lines == 1


async def test_outputs_policy_validates_and_solve_rates_train(tmp_path: Path) -> None:
    its = items()
    run = await run_grid(its, CONFIGS, ScriptedRun(), ResultCache(None), model=MODEL,
                         max_tokens=16)
    opts = Options(target_accuracy=1.0, allow_reference=True, metric="tokens", max_tokens=16)
    cal = analyse(its, CONFIGS, run, MODEL, opts)
    loaded = load_policy(None)
    paths = write_outputs(cal, its, tmp_path, model=MODEL, opts=opts, policy=loaded.policy)
    assert set(paths) == {"policy", "policy_fragment", "solve_rates", "plot", "report"}

    fragment = yaml.safe_load(paths["policy_fragment"].read_text())
    assert fragment["tiers"]["easy"]["strategy"] == "self_consistency"
    assert fragment["tiers"]["hard"] == {
        "strategy": "best_of_n", "params": {"mode": "plain", "n": 16}, "model": "local",
        "verifier": "math_reference", "max_tokens": 16,
        "fallback": {"strategy": "self_consistency", "params": {"n": 16}},
        "deadline_s": loaded.policy.tiers[Tier.HARD].deadline_s,
    }
    assert fragment["verifiers"] == {"math_reference": {"kind": "math_reference"}}
    assert "medium: no evaluation items" in paths["policy_fragment"].read_text()
    # the complete policy validates on its own and carries the calibrated tiers
    written = load_policy(paths["policy"]).policy
    assert written.tiers[Tier.HARD].strategy == "best_of_n"
    assert written.tiers[Tier.HARD].params == {"mode": "plain", "n": 16}
    assert written.tiers[Tier.MEDIUM] == loaded.policy.tiers[Tier.MEDIUM]  # kept from the base
    assert set(written.models) == set(loaded.policy.models)

    rows = [json.loads(line) for line in paths["solve_rates"].read_text().splitlines()]
    assert len(rows) == 8 and {"text", "solve_rate"} <= set(rows[0])
    examples = load_operator_jsonl(paths["solve_rates"])
    # e3 is right in 3 of 5 configurations (12 of 20 candidates), h0 in 4, h3 in none
    tiers = {row["id"]: e.tier for row, e in zip(rows, examples, strict=True)}
    assert (tiers["e0"], tiers["e3"]) == (Tier.EASY, Tier.MEDIUM)
    assert (tiers["h0"], tiers["h3"]) == (Tier.EASY, Tier.VERY_HARD)

    report = paths["report"].read_text()
    assert "## Chosen allocation" in report and "`best_of_n(mode=plain,n=16)" in report
    assert "## Allocation frontier" in report
    assert "at or above every serve-time uniform point at the same cost: yes" in report
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"
