"""Builds the policy's verifiers once per policy revision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strategies import Verifier

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy
    from router.state import AppState


def verifier_for(state: AppState, loaded: LoadedPolicy, name: str | None) -> Verifier | None:
    if name is None:
        return None
    from strategies import build_verifier

    cache = state.verifiers
    key = (loaded.revision, name)
    verifier = cache.get(key)
    if verifier is None:
        spec = loaded.policy.verifiers[name]
        options = dict(spec.options)
        if spec.model is not None:
            options.setdefault("model", spec.model)
        verifier = build_verifier(spec.kind, options, state.upstreams.get)
        if len(cache) > 64:
            cache.clear()
        cache[key] = verifier
    return verifier
