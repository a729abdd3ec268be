"""What `policy validate` / `policy explain` tell a user about a broken file or a wrong name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policies.loader import PolicyValidationError, load_policy, parse_policy
from policies.schema import ModelSpec
from router.policy_cli import policy_app
from tests.policies.samples import base_doc, dump

runner = CliRunner()


def test_yaml_syntax_error_names_the_file_and_keeps_the_snippet(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  local:\n    provider: local\n    model: [x\ntiers: {}\n")
    with pytest.raises(PolicyValidationError) as info:
        load_policy(path)
    (error,) = info.value.errors
    assert "<unicode string>" not in error
    assert f'in "{path}", line 4, column 12' in error
    lines = error.splitlines()
    assert "model: [x" in [line.strip() for line in lines]  # the offending line, as written
    assert any(line.strip() == "^" for line in lines)  # and the caret under the column

    result = runner.invoke(policy_app, ["validate", str(path)])
    assert result.exit_code == 1 and f'"{path}", line 5, column 6' in result.stderr


def test_reservation_ttl_is_reported_with_other_problems() -> None:
    doc = base_doc()
    doc["budgets"] = {"reservation_ttl_s": 10}  # shorter than very_hard's 10 s deadline
    doc["tiers"]["easy"]["strategy"] = "nope"
    doc["models"]["chat"]["timeout_s"] = -1
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(dump(doc))
    errors = info.value.errors
    assert any(e.startswith("models.chat.timeout_s:") for e in errors), errors
    assert any(e.startswith("tiers.easy.strategy: unknown strategy") for e in errors), errors
    assert any(e.startswith("budgets.reservation_ttl_s: 10s must exceed") for e in errors), errors


def test_explain_refuses_an_unknown_tenant(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(dump(base_doc()))
    known = sorted(load_policy(path).policy.tenants)
    result = runner.invoke(
        policy_app, ["explain", "--policy", str(path), "--tenant", "nobody", "--tier", "easy", "q"]
    )
    assert result.exit_code == 1
    assert "unknown tenant 'nobody'" in result.stderr
    assert all(name in result.stderr for name in known), (known, result.stderr)
    ok = runner.invoke(
        policy_app, ["explain", "--policy", str(path), "--tenant", known[0], "--tier", "easy", "q"]
    )
    assert ok.exit_code == 0, ok.output


def test_openai_model_without_base_url_means_the_openai_api() -> None:
    doc = base_doc()
    del doc["models"]["chat"]["base_url"]
    loaded = parse_policy(dump(doc))
    assert loaded.policy.models["chat"].base_url is None


def test_unknown_prompt_format_is_refused_with_the_valid_names() -> None:
    doc = base_doc()
    doc["models"]["raw"]["prompt_format"] = "chatml"
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(dump(doc))
    assert any(
        e.startswith("models.raw.prompt_format:") and "valid: transcript, qa" in e
        for e in info.value.errors
    ), info.value.errors
    assert ModelSpec(provider="local", model="m", prompt_format="qa").prompt_format == "qa"
