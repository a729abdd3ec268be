"""One runtime per policy revision: what a request needs from the serving policy, compiled once.

When a policy loads (start-up or a reload), `compile_runtime` builds an immutable `Runtime`:
the validated policy, the upstream clients of its models, its verifiers and its LLM classifier
fallback. The app swaps `AppState.runtime` for the new one in a single assignment once it is
complete; each request reads it once and uses that snapshot from start to end, so a reload
never mixes two revisions inside one request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from classifier import LLMFallback
from policies.loader import LoadedPolicy
from policies.schema import VERIFIER_BILLING, Policy
from router.calllog import Logged
from router.vocab.errors import PolicyError
from router.vocab.metrics import FallbackMetrics
from router.vocab.upstream import Upstream
from strategies import Verifier, build_verifier


@dataclass(frozen=True)
class Runtime:
    loaded: LoadedPolicy
    upstreams: Mapping[str, Upstream]
    verifiers: Mapping[str, Verifier | None]
    fallback: LLMFallback | None = None  # the policy's classifier.fallback_model, if any
    # `router.ahead.bound` per request shape: valid as long as this revision serves
    bounds: dict[tuple[object, ...], tuple[float, int]] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def policy(self) -> Policy:
        return self.loaded.policy

    @property
    def revision(self) -> str:
        return self.loaded.revision

    def upstream(self, name: str) -> Upstream:
        try:
            return self.upstreams[name]
        except KeyError:
            raise PolicyError(f"model {name!r} is not configured") from None

    def verifier(self, name: str | None) -> Verifier | None:
        """The policy's verifier `name` (None: no verifier)."""
        if name is None:
            return None
        try:
            return self.verifiers[name]
        except KeyError:
            raise PolicyError(f"verifier {name!r} is not configured") from None


def compile_runtime(
    loaded: LoadedPolicy, upstreams: Mapping[str, Upstream], metrics: FallbackMetrics
) -> Runtime:
    """Build the runtime of `loaded` on the upstream clients of its models. Each client is
    wrapped for the request's call log (`router.calllog`) with the stage that calls it."""
    policy = loaded.policy

    def logged(stage: str) -> Mapping[str, Upstream]:
        return MappingProxyType({
            name: Logged(up, name, stage, policy.models[name].price.to_price())
            if name in policy.models else up
            for name, up in upstreams.items()
        })

    clients = logged("generation")
    verifiers: dict[str, Verifier | None] = {}
    for name, spec in policy.verifiers.items():
        options: dict[str, Any] = dict(spec.options)
        if spec.model is not None:
            options.setdefault("model", spec.model)
        options["bill_as"] = VERIFIER_BILLING + name  # a verifier service's calls (prm_http)
        calls = Runtime(loaded, logged(VERIFIER_BILLING + name), MappingProxyType({}))
        verifiers[name] = build_verifier(spec.kind, options, calls.upstream)
    cp = policy.classifier
    fallback = None
    if cp.fallback_model:
        calls = Runtime(loaded, logged("classifier"), MappingProxyType({}))
        fallback = LLMFallback(calls.upstream(cp.fallback_model),
                               timeout_s=cp.fallback_timeout_s, metrics=metrics)
    return Runtime(loaded, clients, MappingProxyType(verifiers), fallback)


__all__ = ["Runtime", "compile_runtime"]
