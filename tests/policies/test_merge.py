"""Merging a calibration fragment into a policy."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from policies import PolicyValidationError, merge_texts
from policies.merge import merge


def test_merge_replaces_entries_one_level_deep() -> None:
    base = {"models": {"a": {"x": 1}, "b": {"x": 2}}, "tiers": {"easy": {"strategy": "greedy",
            "model": "a", "params": {"n": 1}}}, "budgets": {"on_exceeded": "reject"}}
    frag = {"tiers": {"easy": {"strategy": "best_of_n", "model": "b"}},
            "budgets": {"on_exceeded": "downgrade"}}
    out = merge(base, frag)
    assert out["tiers"]["easy"] == {"strategy": "best_of_n", "model": "b"}  # whole entry
    assert out["models"] == base["models"]
    assert out["budgets"] == {"on_exceeded": "downgrade"}
    assert base["tiers"]["easy"]["strategy"] == "greedy"  # inputs untouched


def test_merge_texts_validates() -> None:
    base = resources.files("policies").joinpath("default.yaml").read_text()
    text = merge_texts(base, "tiers:\n  easy: {strategy: self_consistency, params: {n: 4},"
                             " model: local}\n")
    assert yaml.safe_load(text)["tiers"]["easy"]["params"] == {"n": 4}
    with pytest.raises(PolicyValidationError, match=r"tiers\.easy"):
        merge_texts(base, "tiers:\n  easy: {strategy: no_such_strategy, model: local}\n")
    with pytest.raises(PolicyValidationError, match="expected a mapping"):
        merge_texts(base, "- a list\n")
