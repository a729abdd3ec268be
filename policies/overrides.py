"""Load-time checks of the `tasks` and `latency` sections (the plan overrides that
`router.overrides` applies per request): every strategy, model and verifier they name exists
and every params block is valid."""

from __future__ import annotations

from policies.schema import Policy
from strategies import REGISTRY


def check_overrides(policy: Policy) -> list[str]:
    """Cross-references of `tasks` and `latency` (strategies, params, models, verifiers)."""
    errors: list[str] = []
    for task, o in policy.tasks.items():
        path = f"tasks.{task}"
        if o.strategy is not None:
            if o.strategy not in REGISTRY:
                errors.append(f"{path}.strategy: unknown strategy {o.strategy!r}; "
                              f"valid: {', '.join(sorted(REGISTRY))}")
            else:
                try:
                    problems = list(REGISTRY[o.strategy].check_params(o.params or {}))
                except Exception as exc:  # a checker must not crash the loader
                    problems = [f"cannot be checked ({type(exc).__name__}: {exc})"]
                errors += [f"{path}.params: {p}" for p in problems]
        if o.model is not None and o.model not in policy.models:
            errors.append(f"{path}.model: unknown model {o.model!r}; "
                          f"defined: {', '.join(sorted(policy.models))}")
        if o.verifier is not None and o.verifier not in policy.verifiers:
            errors.append(f"{path}.verifier: unknown verifier {o.verifier!r}; "
                          f"defined: {', '.join(sorted(policy.verifiers)) or '(none)'}")
    for i, name in enumerate(policy.latency.interactive.strategies):
        if name not in REGISTRY:
            errors.append(f"latency.interactive.strategies[{i}]: unknown strategy {name!r}; "
                          f"valid: {', '.join(sorted(REGISTRY))}")
    return errors


__all__ = ["check_overrides"]
