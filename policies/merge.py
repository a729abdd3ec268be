"""Merge a policy fragment (what `ttc-router calibrate` writes) into a complete policy.

    text = merge_texts(base_yaml, fragment_yaml)   # validated; raises PolicyValidationError

The fragment's top-level sections are merged one level deep: each entry under `tiers`,
`models`, `verifiers` or `tenants` replaces the base's entry of that name whole (a calibrated
tier is a complete tier entry), other base entries stay; any other top-level key replaces the
base's value. The result must validate as a policy on its own.
"""

from __future__ import annotations

from typing import Any

import yaml

from policies.loader import PolicyValidationError, parse_policy

SECTIONS = ("tiers", "models", "verifiers", "tenants")


def merge(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in fragment.items():
        if key in SECTIONS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _mapping(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyValidationError(source, [f"(yaml): {' '.join(str(exc).split())}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyValidationError(source, ["(top level): expected a mapping"])
    return raw


def merge_texts(base: str, fragment: str, *, base_source: str = "<base>",
                fragment_source: str = "<fragment>") -> str:
    """The merged policy as YAML, validated (`PolicyValidationError` names every problem)."""
    merged = merge(_mapping(base, base_source), _mapping(fragment, fragment_source))
    text = yaml.safe_dump(merged, sort_keys=False, default_flow_style=False, width=100,
                          allow_unicode=True)
    parse_policy(text, f"{base_source} + {fragment_source}")
    return text
