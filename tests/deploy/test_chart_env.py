"""The chart's secrets and environment: values are referenced, never inlined, and every TTC_
variable it sets is one the router's settings read."""

from __future__ import annotations

from typing import Any

import pytest

from router.settings import Settings
from tests.deploy.conftest import VARIANTS, container, env_of, only

# Chart env vars that are not Settings fields, with the reason.
NON_SETTINGS_ENV = {
    "REDIS_PASSWORD",  # only expanded into TTC_REDIS_URL by the kubelet ($(REDIS_PASSWORD))
}

SECRET_ENV = {"TTC_ADMIN_TOKEN", "TTC_REDIS_URL", "REDIS_PASSWORD"}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_secrets_are_referenced_never_inlined(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart must not carry secret values"
    env = env_of(container(docs))
    mode = VARIANTS[variant].get("redis", {}).get("mode", "bundled")
    for name in SECRET_ENV & env.keys():
        var = env[name]
        if name == "TTC_REDIS_URL" and mode == "bundled":
            # an in-cluster URL; the password, if any, comes from $(REDIS_PASSWORD)
            assert "@" not in var["value"] or "$(REDIS_PASSWORD)@" in var["value"]
            continue
        assert "value" not in var and "secretKeyRef" in var["valueFrom"], name


def test_secret_references_wire_to_the_right_settings(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["external-redis"]
    c = container(docs)
    env = env_of(c)
    assert env["TTC_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ttc-redis",
                                                                "key": "redis-url"}
    assert env["TTC_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ttc-admin",
                                                                  "key": "admin-token"}
    # upstream API keys: every key of the secret becomes the variable the policy names
    assert c["envFrom"] == [{"secretRef": {"name": "ttc-upstream-keys"}}]


def test_bundled_redis_password_is_expanded_after_it_is_defined(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["bundled-redis"]
    names = [e["name"] for e in container(docs)["env"]]
    # the kubelet expands $(VAR) only from variables defined earlier in the list
    assert names.index("REDIS_PASSWORD") < names.index("TTC_REDIS_URL")
    url = env_of(container(docs))["TTC_REDIS_URL"]["value"]
    redis_service = only(docs, "StatefulSet")["spec"]["serviceName"].removesuffix("-headless")
    assert url == f"redis://:$(REDIS_PASSWORD)@{redis_service}:6379/0"
    only(docs, "Service", redis_service)
    redis = only(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    assert redis["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "ttc-redis-auth"
    assert "--requirepass" in redis["args"][0]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_env_is_valid_settings(rendered: dict[str, list[dict[str, Any]]], variant: str) -> None:
    env = env_of(container(rendered[variant]))
    unknown = {n for n in env if n.startswith("TTC_")} - {
        f"TTC_{f.upper()}" for f in Settings.model_fields} - NON_SETTINGS_ENV
    assert not unknown, f"chart sets env vars Settings does not read: {unknown}"
    plain = {n.removeprefix("TTC_").lower(): e["value"] for n, e in env.items()
             if n.startswith("TTC_") and "value" in e and n not in NON_SETTINGS_ENV}
    settings = Settings.model_validate(plain)
    assert settings.port == 8080 and str(settings.policy_path).endswith("policy.yaml")
