"""`ttc-router calibrate` end to end against the zero-latency stub upstream (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from bench.stub_upstream import ServerThread, StubUpstream
from router.cli import app

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
                "--out", str(out), "--max-tokens", "16", "--concurrency", "2"]
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

    target = yaml.safe_load((out / "policy-target.yaml").read_text())
    assert target["tiers"]["easy"]["strategy"] == "greedy"  # all equal: the cheapest
    assert target["tiers"]["hard"]["model"] == "stub"
    report = (out / "report.md").read_text()
    assert "cost metric: USD per query" in report
    assert "| hard | 2 |" in report
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
