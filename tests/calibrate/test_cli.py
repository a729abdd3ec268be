"""`ttc-router calibrate` end to end against the zero-latency stub upstream (no model)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import Tier
from policies.loader import load_policy
from router.calibrate import Options, ResultCache, load_items
from router.calibrate.cli import data_dir
from router.cli import app

REPO = Path(__file__).resolve().parents[2]

POLICY = """
models:
  stub: {{provider: openai, base_url: "{url}/v1", model: stub, capabilities: {{chat: true}},
          price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
tiers:
  easy: {{strategy: greedy, model: stub}}
  medium: {{strategy: greedy, model: stub}}
  hard: {{strategy: greedy, model: stub}}
  very_hard: {{strategy: greedy, model: stub}}
"""


def _eval(path: Path) -> None:
    rows = [
        {"id": "a", "question": "What is 6*7?", "reference": "42", "tier": "easy"},
        {"id": "b", "question": "What is 40+2?", "reference": "42", "tier": "hard"},
        {"id": "c", "question": "What is 3+4?", "reference": "7", "tier": "hard"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_calibrate_command_writes_outputs_and_resumes(tmp_path: Path) -> None:
    stub = StubUpstream()  # always answers "The answer is 42."
    evals = tmp_path / "eval.jsonl"
    _eval(evals)
    out = tmp_path / "out"
    with ServerThread(stub) as server:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(url=server.url))
        args = ["calibrate", str(evals), "--model", "stub", "--policy", str(policy),
                "--config", "greedy", "--config", "self_consistency n=2,3 adaptive=false",
                "--out", str(out), "--max-tokens", "16", "--concurrency", "2",
                "--holdout", "0", "--no-predict-tiers", "--data-dir", str(tmp_path / "data")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        first = stub.requests
        assert first == 3 * (1 + 2 + 3)  # no n support: one call per sample
        lines = (out / "results.jsonl").read_text().splitlines()
        assert len(lines) == 9

        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert "resuming: 9 finished runs" in again.output
        assert stub.requests == first  # nothing re-run

    assert f"data dir (model files): {tmp_path / 'data'}" in result.output
    fragment = yaml.safe_load((out / "policy-fragment.yaml").read_text())
    assert fragment["tiers"]["easy"]["strategy"] == "greedy"  # all equal: the cheapest
    assert fragment["tiers"]["hard"]["model"] == "stub"
    merged = CliRunner().invoke(app, ["policy", "validate", str(out / "policy.yaml")])
    assert merged.exit_code == 0, merged.output  # the written policy stands on its own
    report = (out / "report.md").read_text()
    assert "cost metric: USD per query" in report
    assert "| hard | 0.667 | 2 |" in report
    rates = [json.loads(line) for line in (out / "solve_rates.jsonl").read_text().splitlines()]
    assert [r["solve_rate"] for r in rates] == [1.0, 1.0, 0.0]
    assert (out / "calibration.png").stat().st_size > 1000


def test_calibrate_command_refuses_bad_grid(tmp_path: Path) -> None:
    evals = tmp_path / "eval.jsonl"
    _eval(evals)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(url="http://127.0.0.1:9"))
    result = CliRunner().invoke(app, [
        "calibrate", str(evals), "--model", "stub", "--policy", str(policy),
        "--config", "beam_search width=2", "--config", "best_of_n n=2 verifier=nope",
        "--config", "greedy bogus=1",
    ])
    assert result.exit_code == 2
    assert "needs an upstream that continues a partial solution" in result.output
    assert "unknown verifier 'nope'" in result.output
    assert "unknown parameter 'bogus'" in result.output
    missing = CliRunner().invoke(app, ["calibrate", str(evals), "--model", "nope",
                                       "--policy", str(policy)])
    assert missing.exit_code == 2 and "unknown model 'nope'" in missing.output


def test_data_dir_is_never_the_working_directory(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTC_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir(None) == tmp_path / "cache" / "ttc-router"
    monkeypatch.setenv("TTC_DATA_DIR", str(tmp_path / "configured"))
    assert data_dir(None) == tmp_path / "configured"
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"


def test_policy_merge_round_trip(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(resources.files("policies").joinpath("default.yaml").read_text())
    fragment = tmp_path / "fragment.yaml"
    fragment.write_text(
        "verifiers:\n  math_reference: {kind: math_reference}\n"
        "tiers:\n  hard: {strategy: best_of_n, params: {n: 4, mode: plain}, model: local,"
        " verifier: math_reference, max_tokens: 64,"
            " fallback: {strategy: greedy}}\n")
    alone = CliRunner().invoke(app, ["policy", "validate", str(fragment)])
    assert alone.exit_code == 1  # a fragment is not a policy
    out = tmp_path / "merged.yaml"
    merged = CliRunner().invoke(app, ["policy", "merge", str(base), str(fragment),
                                      "--out", str(out)])
    assert merged.exit_code == 0, merged.output
    policy = load_policy(out).policy
    default = load_policy(None).policy
    assert policy.tiers[Tier.HARD].params == {"n": 4, "mode": "plain"}
    assert policy.tiers[Tier.EASY] == default.tiers[Tier.EASY]
    assert set(policy.verifiers) == set(default.verifiers) | {"math_reference"}
    printed = CliRunner().invoke(app, ["policy", "merge", str(base), str(fragment)])
    assert yaml.safe_load(printed.output)["tiers"]["hard"]["max_tokens"] == 64
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  hard: {strategy: best_of_n, model: nope}\n")
    refused = CliRunner().invoke(app, ["policy", "merge", str(base), str(bad)])
    assert refused.exit_code == 1 and "nope" in refused.output


def test_missing_matplotlib_is_said_on_the_console(tmp_path: Path) -> None:
    from rich.console import Console

    from router.calibrate import Evaluation, analyse, run_grid
    from router.calibrate.replay_cli import summary

    from .scripted import CONFIGS, ScriptedRun, items

    async def cal() -> Evaluation:
        run = await run_grid(items(), CONFIGS, ScriptedRun(), ResultCache(None), model="m",
                             max_tokens=1)
        return Evaluation(analyse(items(), CONFIGS, run, "m", Options(metric="tokens")), "given")

    console = Console(record=True, width=200)
    summary(asyncio.run(cal()), {"report": tmp_path / "report.md"}, console)
    assert "matplotlib is not installed" in console.export_text()


def test_replay_command(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    sim = subprocess.run(
        [sys.executable, "bench/synthetic_samples.py", "--questions", "120", "--samples", "8",
         "--out", str(samples)], cwd=REPO, capture_output=True, text=True, check=True)
    assert "SIMULATED" in sim.stdout
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["calibrate", "--samples", str(samples), "--out", str(out),
                                      "--cost-metric", "generated", "--budget", "600",
                                      "--tier-from", "given"])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for curve in ("uniform greedy", "uniform majority vote", "uniform self-consistency, adaptive",
                  "uniform agreement cascade", "uniform best-of-N plain + recorded_score",
                  "uniform best-of-N weighted + recorded_score",
                  "uniform best-of-N plain + math_reference (oracle)", "adaptive, given tiers",
                  "adaptive, predicted tiers", "policy tiers from: predicted"):
        assert curve in report
    assert "### Compute ratio at matched accuracy" in report
    assert "most accurate at <= 600" in report
    assert (out / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "calibration.png").stat().st_size > 20_000
    both = CliRunner().invoke(app, ["calibrate", str(samples), "--samples", str(samples)])
    assert both.exit_code == 2 and "one of them" in both.output


def test_help_documents_the_file_formats() -> None:
    result = CliRunner().invoke(app, ["calibrate", "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    for text in ("docs/examples/eval.jsonl", "answer_from", "docs/examples/samples.jsonl",
                 '"completion_tokens"', "--target-accuracy", "--shares", "--holdout"):
        assert text in result.output
    items = load_items(REPO / "docs" / "examples" / "eval.jsonl")
    assert {it.answer_from for it in items} == {"first_line", "all"}
    assert any(it.tests for it in items) and any(it.tier for it in items)
