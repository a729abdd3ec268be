"""`ttc-router prm-labels` on the real local model: TRL stepwise rows, a summary, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app

pytestmark = pytest.mark.model

SHOTS = "Q: 2+3, then times 2\nA: 2+3=5\n5*2=10\nAnswer: 10\n\nQ: 4+1, then times 3\nA: 4+1=5\n"
POLICY = """
models:
  local:
    provider: local
    model: gemma3-270m
    capabilities: {chat: false, completions: true, n: true, logprobs: true}
    price: {input_per_mtok: 0.5, output_per_mtok: 1.0}
    timeout_s: 300
tiers:
  easy: {strategy: greedy, model: local}
  medium: {strategy: greedy, model: local}
  hard: {strategy: greedy, model: local}
  very_hard: {strategy: greedy, model: local}
"""
ROWS = [
    {
        "id": "a",
        "prompt": SHOTS + "5*3=15\nAnswer: 15\n\nQ: 3+3, then times 2\nA:",
        "question": "3+3, then times 2",
        "reference": "12",
        "answer_format": "answer_line",
    },
]


def test_labels_steps_writes_a_summary_and_resumes(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTC_DATA_DIR", str(model_dir))
    monkeypatch.setenv("TTC_LOCAL_PARALLEL", "4")
    monkeypatch.setenv("TTC_LOCAL_CTX_PER_SLOT", "512")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "labels.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    args = [
        "prm-labels",
        str(data),
        "--model",
        "local",
        "--out",
        str(out),
        "--chains",
        "1",
        "--k",
        "2",
        "--max-tokens",
        "16",
        "--stop",
        "\\n\\n",
        "--step-delimiter",
        "\\n",
        "--policy",
        str(policy),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and {r["id"] for r in rows} == {"a"}, first.output
    for r in rows:  # TRL PRMTrainer stepwise supervision: prompt, completions, labels
        assert r["prompt"] == ROWS[0]["prompt"]
        assert len(r["completions"]) == len(r["labels"]) == len(r["soft_labels"]) >= 1
        assert all(isinstance(b, bool) for b in r["labels"])
        assert all(x in (0.0, 0.5, 1.0) for x in r["soft_labels"][:-1])  # k = 2
        assert r["labels"] == [x > 0 for x in r["soft_labels"]]
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["chains"] == len(rows) and summary["steps"] == sum(
        len(r["labels"]) for r in rows
    )
    tokens = summary["prompt_tokens"] * 0.5 + summary["completion_tokens"] * 1.0
    assert summary["completion_tokens"] > 0 and summary["cost_usd"] == round(tokens / 1e6, 8)

    again = CliRunner().invoke(app, args)  # resumes: the item is done, nothing is redone
    assert again.exit_code == 0, again.output
    assert "resuming: 1 of 1 items" in again.output
    assert out.read_text().count("\n") == len(rows)


def test_items_need_a_reference(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"question": "q", "tests": "assert True"}) + "\n")
    result = CliRunner().invoke(app, ["prm-labels", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "without a reference answer" in result.output
