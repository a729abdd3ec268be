"""Load-time check of what a tier's verifier needs from requests, and of the tier's fallback.

A verifier that needs a reference answer or code tests (`VerifierFactory.needs`) only works on
requests that carry them, and requests may not. Such a tier must declare `fallback:` (a
verifier that needs nothing, or none, and optionally another strategy), which the planner runs
for requests without the inputs (`router.verification.choose`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policies.schema import ModelSpec, TierPolicy
from router.vocab.upstream import Capabilities
from strategies import REGISTRY, VERIFIERS, check_strategy


def _needs(raw: Mapping[str, Any], name: str | None) -> tuple[str, ...] | None:
    """What verifier `name` needs (None when it is not a well-formed policy verifier)."""
    section = raw.get("verifiers")
    spec = section.get(name) if isinstance(section, dict) and name is not None else None
    kind = spec.get("kind") if isinstance(spec, dict) else None
    factory = VERIFIERS.get(str(kind)) if kind is not None else None
    return factory.needs if factory is not None else None


def verification_problems(
    path: str,
    tp: TierPolicy,
    models: Mapping[str, ModelSpec],
    raw: Mapping[str, Any],
    capabilities_for: Callable[[str | None], Capabilities | None],
) -> list[str]:
    errors: list[str] = []
    needs = _needs(raw, tp.verifier) or ()
    fb = tp.fallback
    if needs and fb is None:
        errors.append(
            f"{path}.verifier: {tp.verifier!r} needs {' and '.join(needs)} from every request, "
            f"and requests may not carry them; declare {path}.fallback (a verifier and/or "
            "strategy for requests without them)"
        )
    if fb is None:
        return errors
    if fb.verifier is not None:
        fb_needs = _needs(raw, fb.verifier)
        if fb_needs is None:
            section = raw.get("verifiers")
            defined = ", ".join(sorted(section)) if isinstance(section, dict) else "(none)"
            errors.append(
                f"{path}.fallback.verifier: unknown verifier {fb.verifier!r}; defined: {defined}"
            )
        elif fb_needs:
            errors.append(
                f"{path}.fallback.verifier: {fb.verifier!r} needs {' and '.join(fb_needs)} "
                "itself; a fallback must work without request inputs"
            )
    strategy = fb.strategy or tp.strategy
    params = fb.params if fb.strategy is not None else tp.params
    if fb.strategy is not None or fb.verifier is None:
        try:
            problems = check_strategy(
                REGISTRY, strategy, params, capabilities_for, has_verifier=fb.verifier is not None
            )
        except Exception as exc:  # a strategy's checker must not crash the loader
            problems = [f"cannot be checked ({type(exc).__name__}: {exc})"]
        where = "strategy" if fb.strategy is not None else "verifier"
        errors.extend(f"{path}.fallback.{where}: {p}" for p in problems)
    return errors


__all__ = ["verification_problems"]
