"""Anthropic's own request limits are refused when the policy loads, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from policies import PolicyValidationError, parse_policy
from tests.policies.samples import base_doc, dump, load_doc

CLAUDE = {
    "provider": "anthropic",
    "model": "claude-test",
    "capabilities": {"chat": True, "prefill": True, "thinking": True},
}


def _doc(tier: dict[str, Any]) -> dict[str, Any]:
    doc = base_doc()
    doc["models"]["claude"] = CLAUDE
    doc["tiers"]["very_hard"] = {"model": "claude", "deadline_s": 10, **tier}
    if tier.get("strategy") in ("beam_search", "mcts", "dvts"):
        doc["tiers"]["very_hard"]["verifier"] = "roll"
    return doc


def _errors(tier: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(dump(_doc(tier)), "bad.yaml")
    return info.value.errors


def test_thinking_budget_below_the_api_floor() -> None:
    errors = _errors({"strategy": "thinking", "params": {"budget_tokens": 512}, "max_tokens": 2048})
    assert errors == [
        "tiers.very_hard.params.budget_tokens: 512 is below Anthropic's minimum thinking "
        "budget (1024)"
    ]


def test_thinking_budget_must_stay_below_max_tokens() -> None:
    errors = _errors(
        {"strategy": "thinking", "params": {"budget_tokens": 4096}, "max_tokens": 4096}
    )
    assert len(errors) == 1 and errors[0].startswith(
        "tiers.very_hard.max_tokens: 4096 must exceed params.budget_tokens (4096)"
    )


def test_a_valid_thinking_tier_and_budget_forcing_load() -> None:
    load_doc(_doc({"strategy": "thinking", "params": {"budget_tokens": 1024}, "max_tokens": 1500}))
    # force mode prefills text and never sends a native budget: the floor does not apply
    load_doc(
        _doc(
            {
                "strategy": "thinking",
                "params": {"mode": "force", "budget_tokens": 64},
                "max_tokens": 128,
            }
        )
    )


def test_step_search_needs_a_visible_delimiter_on_anthropic() -> None:
    errors = _errors({"strategy": "beam_search", "params": {"width": 2}, "max_tokens": 64})
    assert len(errors) == 1
    assert errors[0].startswith(
        "tiers.very_hard.params.step_delimiter: '\\n\\n' is only whitespace"
    )
    load_doc(
        _doc({"strategy": "beam_search", "params": {"step_delimiter": ".\n"}, "max_tokens": 64})
    )


def test_blank_stop_sequence_and_cascade_stage_fields_are_named() -> None:
    errors = _errors(
        {
            "strategy": "cascade",
            "max_tokens": 512,
            "params": {
                "draft": {"strategy": "greedy", "params": {"stop": ["END", " \n"]}},
                "escalate": {"strategy": "thinking", "params": {"budget_tokens": 100}},
            },
        }
    )
    assert sorted(errors) == [
        "tiers.very_hard.params.draft.params.stop[1]: Anthropic refuses stop sequences made "
        "only of whitespace",
        "tiers.very_hard.params.escalate.params.budget_tokens: 100 is below Anthropic's "
        "minimum thinking budget (1024)",
    ]
    joined = "\n".join(errors)
    assert "tiers.very_hard.params.draft.params.stop[1]: Anthropic refuses" in joined
    assert "tiers.very_hard.params.escalate.params.budget_tokens: 100 is below" in joined


def test_other_providers_are_not_held_to_anthropic_limits() -> None:
    doc = base_doc()
    doc["tiers"]["hard"] = {
        "strategy": "thinking",
        "model": "chat",
        "max_tokens": 64,
        "params": {"budget_tokens": 16},
        "deadline_s": 5,
    }
    load_doc(doc)
