"""`ttc-router policy validate | show | explain`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from policies import load_policy
from router.policy_cli import policy_app
from tests.policies.samples import base_doc, dump

runner = CliRunner()


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(dump(base_doc()))
    result = runner.invoke(policy_app, ["validate", str(good)])
    assert result.exit_code == 0
    assert load_policy(good).revision in result.stdout

    doc = base_doc()
    doc["tiers"]["easy"]["strategy"] = "nope"
    doc["tiers"]["hard"]["model"] = "gone"
    bad = tmp_path / "bad.yaml"
    bad.write_text(dump(doc))
    result = runner.invoke(policy_app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "2 error(s)" in result.stderr
    assert "tiers.easy.strategy: unknown strategy 'nope'" in result.stderr
    assert "tiers.hard.model: unknown model 'gone'" in result.stderr


def test_show_prints_effective_policy(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(dump(base_doc()))
    result = runner.invoke(policy_app, ["show", "--policy", str(path)])
    assert result.exit_code == 0
    assert f"# revision: {load_policy(path).revision}" in result.stdout
    shown = yaml.safe_load(result.stdout)
    assert shown["cache"]["ttl_s"] == 3600  # defaults filled in
    assert shown["budgets"]["on_exceeded"] == "downgrade"


def test_show_packaged_default() -> None:
    result = runner.invoke(policy_app, ["show"], env={"TTC_POLICY_PATH": None})
    assert result.exit_code == 0 and "packaged:policies/default.yaml" in result.stdout


def test_explain_applies_tenant_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(dump(base_doc()))
    args = ["explain", "--policy", str(path), "--tenant", "acme", "--tier", "very_hard",
            "Prove that there are infinitely many primes."]
    result = runner.invoke(policy_app, args)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["classified_tier"] == "very_hard" and out["tier"] == "hard"  # max_tier
    assert out["plan"]["strategy"] == "best_of_n" and out["worst_case_usd"] > 0
    assert [d["tier"] for d in out["downgrade_order"]] == ["medium", "easy"]
    assert out["tenant"]["caps"]["daily_usd"] == 1.0

    result = runner.invoke(policy_app, [*args[:6], "easy", "--hint", "medium", "q"])
    assert json.loads(result.stdout)["tier"] == "medium"
    result = runner.invoke(policy_app, [*args[:6], "easy", "--hint", "insane", "q"])
    assert result.exit_code == 1 and "unknown tier hint" in result.stderr
