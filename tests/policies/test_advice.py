"""Policy warnings: a model timeout shorter than the deadline of a tier that calls it (issue 11:
the default very_hard tier's 90 s deadline ran into the local model's 60 s timeout: 504)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policies.advice import policy_warnings
from policies.loader import load_policy, parse_policy

REPO = Path(__file__).resolve().parents[2]
PACKAGED = [REPO / "policies" / "default.yaml", *sorted((REPO / "policies" / "examples").glob(
    "*.yaml")), REPO / "helm" / "ttc-router" / "files" / "policy.yaml"]

SHORT = """
models:
  m: {provider: openai, base_url: "http://127.0.0.1:9/v1", model: m, timeout_s: 10,
      capabilities: {chat: true, completions: true}}
  judge: {provider: openai, base_url: "http://127.0.0.1:9/v1", model: j, timeout_s: 5,
          capabilities: {chat: true}}
verifiers:
  j: {kind: llm_judge, model: judge}
tiers:
  easy: {strategy: greedy, model: m, deadline_s: 10}
  medium: {strategy: greedy, model: m, deadline_s: 10}
  hard: {strategy: best_of_n, model: m, verifier: j, deadline_s: 10}
  very_hard: {strategy: greedy, model: m, deadline_s: 30}
"""


def test_a_timeout_shorter_than_a_tier_deadline_is_warned() -> None:
    warnings = policy_warnings(parse_policy(SHORT).policy)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("models.judge.timeout_s (5s) is shorter than "
                                  "tiers.hard.deadline_s (10s), which calls it (verifier 'j')")
    assert warnings[1].startswith("models.m.timeout_s (10s) is shorter than "
                                  "tiers.very_hard.deadline_s (30s)")


def test_validate_prints_the_warnings_and_still_passes(tmp_path: Path) -> None:
    from router.cli import app

    path = tmp_path / "p.yaml"
    path.write_text(SHORT)
    result = CliRunner().invoke(app, ["policy", "validate", str(path)])
    assert result.exit_code == 0
    assert "warning: models.m.timeout_s (10s)" in result.output


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_packaged_policies_have_no_warnings(path: Path) -> None:
    assert policy_warnings(load_policy(path).policy) == []
