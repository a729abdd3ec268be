"""Policy loading: shipped files load, every class of mistake names its path, fuzzing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.base import TIERS
from policies import (
    LoadedPolicy,
    PolicyValidationError,
    load_policy,
    parse_policy,
)
from tests.policies.samples import base_doc, dump, load_doc

EXAMPLES = sorted((Path(__file__).parents[2] / "policies" / "examples").glob("*.yaml"))


def errors_of(doc: dict[str, Any] | str) -> list[str]:
    text = doc if isinstance(doc, str) else dump(doc)
    with pytest.raises(PolicyValidationError) as info:
        parse_policy(text, "bad.yaml")
    assert info.value.status == 400 and "bad.yaml" in info.value.message
    return info.value.errors


def test_packaged_default_loads_and_runs_on_the_local_model() -> None:
    loaded = load_policy(None)
    policy = loaded.policy
    assert loaded.source.startswith("packaged:") and len(loaded.revision) == 16
    assert set(policy.tiers) == set(TIERS)
    assert {tp.model for tp in policy.tiers.values()} == {"local"}
    assert policy.models["local"].provider == "local"
    assert [policy.tiers[t].strategy for t in TIERS] == \
        ["greedy", "self_consistency", "best_of_n", "beam_search"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load(path: Path) -> None:
    assert load_policy(path).source == str(path)


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {"vllm-prm.yaml", "hosted.yaml"}


def test_revision_ignores_formatting_but_not_content() -> None:
    doc = base_doc()
    a = parse_policy(dump(doc), "a")
    reformatted = "# a comment\n" + yaml.safe_dump(doc, sort_keys=True, indent=4)
    assert parse_policy(reformatted, "b").revision == a.revision
    doc["cache"] = {"ttl_s": 60}
    assert load_doc(doc).revision != a.revision


def test_unknown_keys_refused() -> None:
    doc = base_doc()
    doc["tiers"]["easy"]["max_tokenz"] = 5
    doc["extra_section"] = {}
    errors = errors_of(doc)
    assert "tiers.easy.max_tokenz: Extra inputs are not permitted" in errors
    assert "extra_section: Extra inputs are not permitted" in errors


def test_unknown_strategy_lists_valid_names() -> None:
    doc = base_doc()
    doc["tiers"]["hard"]["strategy"] = "bestofn"
    [error] = errors_of(doc)
    assert error.startswith("tiers.hard.strategy: unknown strategy 'bestofn'; valid: ")
    assert "best_of_n" in error and "greedy" in error


def test_parameters_out_of_range() -> None:
    doc = base_doc()
    doc["tiers"]["medium"]["params"] = {"n": 0, "votes": 3}
    errors = errors_of(doc)
    assert any(e.startswith("tiers.medium.params: n must be >= 1") for e in errors)
    assert any(e.startswith("tiers.medium.params: unknown parameter 'votes'") for e in errors)


def test_step_level_strategy_needs_partial_continuation() -> None:
    doc = base_doc()
    doc["tiers"]["very_hard"]["model"] = "chat"  # chat-only: no completions, no prefill
    [error] = errors_of(doc)
    assert error.startswith("tiers.very_hard.strategy:")
    assert "beam_search" in error and "partial solution" in error


def test_references_must_exist() -> None:
    doc = base_doc()
    doc["tiers"]["easy"]["model"] = "gpt-9"
    doc["tiers"]["hard"]["verifier"] = "oracle"
    doc["verifiers"]["roll"]["options"]["model"] = "missing"
    doc["classifier"] = {"fallback_model": "nobody"}
    errors = errors_of(doc)
    assert "tiers.easy.model: unknown model 'gpt-9'; defined: chat, raw" in errors
    assert "tiers.hard.verifier: unknown verifier 'oracle'; defined: roll" in errors
    assert "verifiers.roll.options.model: unknown model 'missing'; defined: chat, raw" in errors
    assert "classifier.fallback_model: unknown model 'nobody'; defined: chat, raw" in errors


def test_verifier_kind_and_options() -> None:
    doc = base_doc()
    doc["verifiers"]["prm"] = {"kind": "prm", "options": {}}
    doc["verifiers"]["roll"]["options"] = {"k": 0}
    errors = errors_of(doc)
    assert any(e.startswith("verifiers.prm.kind: unknown verifier 'prm'; valid: ") and
               "prm_http" in e for e in errors)
    assert "verifiers.roll.options: missing option 'model'" in errors
    assert any(e.startswith("verifiers.roll.options: k must be >= 1") for e in errors)


def test_every_tier_defined() -> None:
    doc = base_doc()
    del doc["tiers"]["hard"], doc["tiers"]["very_hard"]
    assert errors_of(doc) == ["tiers: missing tier(s) hard, very_hard; all of easy, medium, "
                              "hard, very_hard must be defined"]


def test_secrets_and_hashes() -> None:
    doc = base_doc()
    doc["models"]["chat"]["api_key_env"] = "sk-live-abcdef"  # a key pasted where a name goes
    doc["tenants"]["acme"]["api_key_sha256"] = ["not-a-hash"]
    doc["tenants"]["beta"]["api_key_sha256"] = list(doc["tenants"]["acme"]["api_key_sha256"])
    errors = errors_of(doc)
    assert any(e.startswith("models.chat.api_key_env: String should match pattern") for e in errors)
    assert any(e.startswith("tenants.acme.api_key_sha256[0]:") for e in errors)


def test_duplicate_key_across_tenants() -> None:
    doc = base_doc()
    doc["tenants"]["beta"]["api_key_sha256"] = list(doc["tenants"]["acme"]["api_key_sha256"])
    assert errors_of(doc) == ["tenants.beta.api_key_sha256[0]: key already belongs to tenant "
                              "'acme'"]


def test_reservation_ttl_must_outlive_deadlines() -> None:
    doc = base_doc()
    doc["budgets"] = {"reservation_ttl_s": 10}
    [error] = errors_of(doc)
    assert error.startswith("budgets.reservation_ttl_s: 10s must exceed the longest tier "
                            "deadline (10s)")


def test_all_errors_at_once_structural_and_references() -> None:
    doc = base_doc()
    doc["cache"] = {"ttl_s": "an hour"}
    doc["tiers"]["easy"]["strategy"] = "gredy"
    doc["tiers"]["medium"]["model"] = "nope"
    errors = errors_of(doc)
    assert "cache.ttl_s: Input should be a valid integer" in errors
    assert any(e.startswith("tiers.easy.strategy: unknown strategy 'gredy'") for e in errors)
    assert any(e.startswith("tiers.medium.model: unknown model 'nope'") for e in errors)


@pytest.mark.parametrize(("text", "start"), [
    ("models: [unclosed", "(yaml):"),
    ("", "(top level): expected a mapping, got empty"),
    ("- a\n- b\n", "(top level): expected a mapping, got list"),
    ("a: &x [*x]\n", "(yaml): cyclic YAML alias"),
])
def test_not_a_policy(text: str, start: str) -> None:
    [error] = errors_of(text)
    assert error.startswith(start)


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    [error] = errors_of("\n".join(lines) + "\n")
    assert "too large" in error


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyValidationError) as info:
        load_policy(tmp_path / "missing.yaml")
    assert info.value.errors[0].startswith("(file): cannot read")


# --- fuzzing: the loader answers a clear error or a valid policy, never anything else ------

yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["easy", "hard", "greedy", "chat", "raw", "local"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def _check(text: str) -> None:
    try:
        loaded = parse_policy(text, "fuzz")
    except PolicyValidationError as exc:
        assert exc.errors and all(isinstance(e, str) and ": " in e for e in exc.errors)
    else:
        assert isinstance(loaded, LoadedPolicy)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_policy(data: st.DataObject) -> None:
    doc: Any = base_doc()
    for _ in range(data.draw(st.integers(1, 3))):
        node = doc
        path = []
        while isinstance(node, dict) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(node, key=str)))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if isinstance(node, dict):
            key = data.draw(st.one_of(st.sampled_from(sorted(node, key=str) or ["x"]),
                                      st.text(max_size=8)))
            if data.draw(st.booleans()):
                node[key] = data.draw(yaml_values)
            else:
                node.pop(key, None)
    _check(yaml.safe_dump(doc, allow_unicode=True))
