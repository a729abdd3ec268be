"""Machine-readable outputs: the policy YAML fragment and the per-question solve rates.

The fragment holds a `tiers:` section (and a `verifiers:` section for outcome checkers the
grid used inline); `complete_policy` merges it into the policy calibrated against (what
`ttc-router policy merge BASE FRAGMENT` does), so the written `policy.yaml` validates on its
own. Tiers without evaluation items are left out of the fragment (the base's entry stays).
The solve-rate file is the `{"text", "solve_rate"}` JSONL that
`ttc-router classifier train --data FILE` accepts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from classifier.base import TIERS
from router.calibrate.analysis import Calibration, Point
from router.calibrate.data import EvalItem
from router.calibrate.grid import INLINE_VERIFIERS

if TYPE_CHECKING:
    from policies.schema import Policy


class _Dumper(yaml.SafeDumper):
    """Strings with control characters (a `stop: ["\\n"]`) as double-quoted escapes."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(ch in value for ch in "\n\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: dict[str, Any], indent: int) -> list[str]:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
    return [" " * indent + line for line in text.splitlines()]


def _describe(point: Point, metric: str) -> str:
    return (f"accuracy {point.accuracy:.3f}, {metric} {point.cost(metric):.4g}/query "
            f"over {point.runs} runs")


def rule_text(cal: Calibration) -> str:
    pick = cal.pick
    if pick is None:
        return "no policy"
    a = pick.allocation
    if pick.rule == "budget":
        head = f"most accurate at <= {pick.value:.6g} {cal.metric} per query on average"
    elif pick.rule == "accuracy":
        head = f"cheapest reaching accuracy {pick.value}"
    else:
        head = "the knee of the frontier"
    miss = "" if pick.met else " (not reachable: the nearest frontier point)"
    return (f"{head}{miss}: expected accuracy {a.accuracy:.3f} at {a.cost:.4g} {cal.metric}"
            " per query over the calibration mix")


def policy_fragment(
    cal: Calibration,
    *,
    model: str,
    max_tokens: int,
    policy: Policy | None = None,
    header: Sequence[str] = (),
) -> str:
    """The chosen allocation's tiers as policy YAML (`ttc-router policy merge` puts it into a
    complete policy)."""
    shares = ", ".join(f"{b} {s:.2f}" for b, s in cal.shares.items())
    lines = [f"# {h}" for h in header] + [f"# {rule_text(cal)}",
                                          f"# traffic shares: {shares}; cost = {cal.metric}"]
    inline: set[str] = set()
    tier_lines: list[str] = []
    for tier in TIERS:
        result = cal.tiers.get(tier.value)
        point = None if result is None else result.chosen
        if point is None:
            tier_lines.append(f"  # {tier.value}: no evaluation items; keep the current entry")
            continue
        config = point.config
        entry: dict[str, Any] = {"strategy": config.strategy}
        if config.params:
            entry["params"] = config.params
        entry["model"] = model
        if config.verifier:
            entry["verifier"] = config.verifier
            known = policy is not None and config.verifier in policy.verifiers
            if not known and config.verifier in INLINE_VERIFIERS:
                inline.add(config.verifier)
        if config.verifier in INLINE_VERIFIERS:  # requests without a reference / tests
            entry["fallback"] = _fallback(result.points if result else [], cal.metric)
        entry["max_tokens"] = max_tokens
        if policy is not None and tier in policy.tiers:
            entry["deadline_s"] = policy.tiers[tier].deadline_s
        tier_lines.append(f"  # {_describe(point, cal.metric)}")
        if config.verifier == "math_reference":
            tier_lines.append("  # math_reference needs a reference answer with every request")
        tier_lines += _dump({tier.value: entry}, 2)
    if inline:
        lines.append("verifiers:")
        lines += _dump({name: {"kind": name} for name in sorted(inline)}, 2)
    return "\n".join([*lines, "tiers:", *tier_lines]) + "\n"


def _fallback(points: Sequence[Point], metric: str) -> dict[str, Any]:
    """The tier's most accurate configuration without a verifier (cheapest among equals)."""
    plain = [p for p in points if p.config.verifier is None]
    if not plain:
        return {"strategy": "greedy"}
    best = min(plain, key=lambda p: (-p.accuracy, p.cost(metric)))
    out: dict[str, Any] = {"strategy": best.config.strategy}
    if best.config.params:
        out["params"] = best.config.params
    return out


def complete_policy(fragment: str, policy: Policy) -> str:
    """`policy` with the fragment merged in, validated (raises PolicyValidationError)."""
    from policies.merge import merge_texts

    base = yaml.safe_dump(policy.model_dump(mode="json", exclude_none=True), sort_keys=False)
    return merge_texts(base, fragment, base_source="base policy", fragment_source="calibration")


def write_solve_rates(cal: Calibration, items: Sequence[EvalItem], path: Path) -> int:
    """One `{"text", "solve_rate", "id", "samples", "tier"}` line per measured item."""
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for it in items:
            if it.key not in cal.solve_rates:
                continue
            rate, samples = cal.solve_rates[it.key]
            row = {"text": it.question, "solve_rate": round(rate, 6), "id": it.id,
                   "samples": samples}
            if it.key in cal.tier_of:
                row["tier_used"] = cal.tier_of[it.key].value
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
