"""Operator policy: schema, loader and validation, hot reload (worst cases: `router.worstcase`)."""

from policies.advice import policy_warnings
from policies.loader import (
    LoadedPolicy,
    PolicyValidationError,
    load_policy,
    parse_policy,
    revision_of,
)
from policies.merge import merge_texts
from policies.reload import OnChange, PolicyHolder
from policies.schema import (
    BudgetPolicy,
    CachePolicy,
    CapabilitiesSpec,
    ClassifierPolicy,
    ModelSpec,
    Policy,
    PriceSpec,
    TenantPolicy,
    TierFallback,
    TierPolicy,
    VerifierSpec,
)

__all__ = [
    "BudgetPolicy",
    "CachePolicy",
    "CapabilitiesSpec",
    "ClassifierPolicy",
    "LoadedPolicy",
    "ModelSpec",
    "OnChange",
    "Policy",
    "PolicyHolder",
    "PolicyValidationError",
    "PriceSpec",
    "TenantPolicy",
    "TierFallback",
    "TierPolicy",
    "VerifierSpec",
    "load_policy",
    "merge_texts",
    "parse_policy",
    "policy_warnings",
    "revision_of",
]
