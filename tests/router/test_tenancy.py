"""Tenant resolution (API keys, anonymous, trusted gateway) and the effective tier."""

from __future__ import annotations

import pytest

from classifier.base import Tier
from policies.schema import TenantPolicy
from router.errors import InvalidRequest, Unauthorized
from router.settings import Settings
from router.tenancy import Tenant, effective_tier, extract_api_key, hash_api_key, resolve_tenant
from tests.policies.samples import base_doc, load_doc, sha

POLICY = load_doc(base_doc()).policy
SETTINGS = Settings()


def test_bearer_and_x_api_key_resolve_by_hash() -> None:
    t = resolve_tenant(POLICY, {"Authorization": "Bearer sk-acme"}, SETTINGS)
    assert (t.name, t.auth) == ("acme", "api_key") and t.spec is POLICY.tenants["acme"]
    assert resolve_tenant(POLICY, {"x-api-key": "sk-beta"}, SETTINGS).name == "beta"
    assert hash_api_key("sk-acme") == sha("sk-acme")


def test_unknown_key_is_401_even_with_anonymous_enabled() -> None:
    with pytest.raises(Unauthorized) as info:
        resolve_tenant(POLICY, {"authorization": "Bearer sk-wrong"}, SETTINGS)
    assert info.value.status == 401


def test_no_key_is_anonymous_or_401() -> None:
    t = resolve_tenant(POLICY, {}, SETTINGS)
    assert (t.name, t.spec, t.auth) == ("default", None, "anonymous")
    closed = load_doc({**base_doc(), "anonymous_tenant": None}).policy
    with pytest.raises(Unauthorized):
        resolve_tenant(closed, {}, SETTINGS)


def test_keys_ignored_when_no_tenant_has_keys() -> None:
    doc = base_doc()
    doc["tenants"] = {"default": {"daily_usd": 1.0}}
    open_policy = load_doc(doc).policy
    t = resolve_tenant(open_policy, {"Authorization": "Bearer sk-whatever"}, SETTINGS)
    assert t.name == "default" and t.spec is not None and t.spec.daily_usd == 1.0


def test_trusted_gateway_header() -> None:
    gw = Settings(tenant_header="X-Tenant")
    t = resolve_tenant(POLICY, {"x-tenant": "acme"}, gw)
    assert (t.name, t.auth) == ("acme", "gateway") and t.spec is POLICY.tenants["acme"]
    assert resolve_tenant(POLICY, {"X-Tenant": "newco"}, gw).spec is None
    with pytest.raises(Unauthorized):
        resolve_tenant(POLICY, {"x-tenant": "bad name{x}"}, gw)
    assert resolve_tenant(POLICY, {"authorization": "Bearer sk-beta"}, gw).name == "beta"


def test_extract_api_key_forms() -> None:
    assert extract_api_key({"authorization": "bearer  k1 "}) == "k1"
    assert extract_api_key({"authorization": "Basic abc", "x-api-key": "k2"}) == "k2"
    assert extract_api_key({}) is None


def tenant(**kw: object) -> Tenant:
    return Tenant("t", TenantPolicy.model_validate(kw))


def test_effective_tier_remap_then_clamp() -> None:
    t = tenant(max_tier="hard", tier_remap={"easy": "medium", "hard": "very_hard"})
    assert effective_tier(t, Tier.EASY) is Tier.MEDIUM
    assert effective_tier(t, Tier.HARD) is Tier.HARD  # remapped up, clamped back
    assert effective_tier(t, Tier.VERY_HARD) is Tier.HARD
    assert effective_tier(Tenant("anon", None), Tier.VERY_HARD, "easy") is Tier.VERY_HARD


def test_hint_only_when_allowed_and_never_above_max_tier() -> None:
    allowed = tenant(allow_tier_hint=True, max_tier="hard")
    assert effective_tier(allowed, Tier.HARD, "easy") is Tier.EASY
    assert effective_tier(allowed, Tier.EASY, "very_hard") is Tier.HARD
    assert effective_tier(tenant(), Tier.MEDIUM, "very_hard") is Tier.MEDIUM  # ignored
    with pytest.raises(InvalidRequest) as info:
        effective_tier(allowed, Tier.EASY, "extreme")
    assert info.value.param == "x-ttc-tier"
