"""Who is asking, and which tier they may get.

Resolution order (`resolve_tenant`):

1. Trusted-gateway mode (`TTC_TENANT_HEADER` set) and the header present: the tenant is the
   header's value (the gateway authenticated the caller). A tenant the policy does not list
   is served without caps.
2. An API key (`Authorization: Bearer K` or `x-api-key: K`) while some tenant of the policy
   has keys: SHA-256 of the key is compared, in constant time, with every configured hash;
   no match -> 401.
3. Otherwise the policy's `anonymous_tenant` (with its `tenants` entry, if any);
   `anonymous_tenant: null` -> 401.

So a policy without keys serves everyone as the anonymous tenant (SDKs always send some key),
and a policy with keys rejects wrong keys loudly instead of downgrading them to anonymous.

Tier (`effective_tier`): the classified tier goes through the tenant's `tier_remap`; a tier
hint (header) then replaces it only when the tenant has `allow_tier_hint` (ignored
otherwise); the result is clamped to `max_tier`, so a hint never exceeds it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from classifier.base import Tier
from policies.schema import NAME_PATTERN, Policy, TenantPolicy
from router.errors import InvalidRequest, Unauthorized
from router.settings import Settings

AuthMethod = Literal["api_key", "gateway", "anonymous"]
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Tenant:
    name: str
    spec: TenantPolicy | None
    auth: AuthMethod = "anonymous"


def hash_api_key(key: str) -> str:
    """Hex SHA-256, the form `tenants.*.api_key_sha256` holds (`echo -n KEY | sha256sum`)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def extract_api_key(headers: Mapping[str, str]) -> str | None:
    h = _lower(headers)
    auth = h.get("authorization", "").strip()
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = h.get("x-api-key", "").strip()
    return key or None


def _match_key(policy: Policy, key: str) -> str | None:
    """The tenant owning `key`. Compares against every hash (no early exit)."""
    digest = hash_api_key(key).encode()
    found: str | None = None
    for name, spec in policy.tenants.items():
        for candidate in spec.api_key_sha256:
            if hmac.compare_digest(digest, candidate.encode()) and found is None:
                found = name
    return found


def resolve_tenant(policy: Policy, headers: Mapping[str, str], settings: Settings) -> Tenant:
    if settings.tenant_header:
        value = _lower(headers).get(settings.tenant_header.lower(), "").strip()
        if value:
            if not _NAME.match(value):
                raise Unauthorized(f"invalid tenant in header {settings.tenant_header}",
                                   code="invalid_tenant")
            return Tenant(value, policy.tenants.get(value), "gateway")
    key = extract_api_key(headers)
    if key is not None and policy.has_api_keys:
        name = _match_key(policy, key)
        if name is None:
            raise Unauthorized("invalid API key")
        return Tenant(name, policy.tenants[name], "api_key")
    if policy.anonymous_tenant is None:
        raise Unauthorized("an API key is required", code="missing_api_key")
    name = policy.anonymous_tenant
    return Tenant(name, policy.tenants.get(name), "anonymous")


def effective_tier(tenant: Tenant, tier: Tier, hint: str | None = None) -> Tier:
    """The tier to plan for: remap, then an allowed hint, then the `max_tier` clamp."""
    spec = tenant.spec
    if spec is None:
        return tier
    tier = spec.tier_remap.get(tier, tier)
    if hint is not None and spec.allow_tier_hint:
        try:
            tier = Tier(hint.strip().lower())
        except ValueError:
            valid = ", ".join(t.value for t in Tier)
            raise InvalidRequest(f"unknown tier hint {hint!r}; valid: {valid}",
                                 param="x-ttc-tier") from None
    if spec.max_tier is not None and tier.rank > spec.max_tier.rank:
        tier = spec.max_tier
    return tier


__all__ = ["AuthMethod", "Tenant", "effective_tier", "extract_api_key", "hash_api_key",
           "resolve_tenant"]
