"""Warnings about a valid policy: settings that are legal but will misbehave when served.

`ttc-router policy validate` prints them and the server logs them (`policy_warning`) at start and
on every reload; they never refuse a policy. Today: a model whose `timeout_s` is shorter than
the deadline of a tier that calls it (directly or through the tier's verifier), so one slow
call fails the request (504) before the tier's deadline could return its best answer so far.
"""

from __future__ import annotations

from policies.schema import Policy


def _tier_models(policy: Policy, model: str, verifier: str | None) -> dict[str, list[str]]:
    """Every model one tier calls, with how it reaches it."""
    out: dict[str, list[str]] = {model: ["model"]}
    spec = policy.verifiers.get(verifier) if verifier else None
    if spec is not None:
        for name in sorted(str(m) for m in {spec.model, spec.options.get("model")} if m):
            out.setdefault(str(name), []).append(f"verifier {verifier!r}")
    return out


def policy_warnings(policy: Policy) -> list[str]:
    warnings: list[str] = []
    for tier, tp in policy.tiers.items():
        for name, via in _tier_models(policy, tp.model, tp.verifier).items():
            spec = policy.models.get(name)
            if spec is None or spec.timeout_s >= tp.deadline_s:
                continue
            warnings.append(
                f"models.{name}.timeout_s ({spec.timeout_s:g}s) is shorter than "
                f"tiers.{tier.value}.deadline_s ({tp.deadline_s:g}s), which calls it "
                f"({' and '.join(via)}): one slow call fails the request with 504 before the "
                f"deadline can return the best answer so far; raise the model's timeout_s to at "
                f"least {tp.deadline_s:g}"
            )
    return warnings


__all__ = ["policy_warnings"]
