"""Fixtures for the deployment checks: the chart loaded once, rendered per variant, offline."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "ttc-router"
RELEASE = "ttc"
NAMESPACE = "llm"
FULLNAME = "ttc-ttc-router"

GATEWAY = {
    "name": "gateway",
    "image": "envoyproxy/envoy:v1.31.0",
    "ports": [{"name": "gateway", "containerPort": 8000, "protocol": "TCP"}],
    "securityContext": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
    },
}

# Every documented variant (docs/deploy.md): values on top of the chart defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "external-redis": {
        "redis": {"mode": "external", "external": {"existingSecret": "ttc-redis"}},
        "secrets": {
            "adminToken": {"existingSecret": "ttc-admin"},
            "upstreamApiKeys": {"existingSecrets": ["ttc-upstream-keys"]},
        },
    },
    "bundled-redis": {
        "redis": {
            "mode": "bundled",
            "bundled": {"auth": {"existingSecret": "ttc-redis-auth"},
                        "persistence": {"enabled": False}},
        },
    },
    "embedded-redis": {
        "redis": {"mode": "embedded"},
        "replicaCount": 1,
        "autoscaling": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
    },
    "sidecar": {
        "mode": "sidecar",
        "redis": {"mode": "external", "external": {"existingSecret": "ttc-redis"}},
        "config": {"tenantHeader": "x-tenant-id"},
        "sidecar": {"gateway": {"container": GATEWAY, "port": 8000}},
    },
    "sidecar-scraped": {
        "mode": "sidecar",
        "redis": {"mode": "external", "external": {"existingSecret": "ttc-redis"}},
        "sidecar": {"listenHost": "0.0.0.0", "gateway": {"container": GATEWAY, "port": 8000}},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "networkPolicy": {"enabled": True},
    },
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
        },
    },
    "network-policy": {
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}],
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
        },
    },
    "policy-secret": {"policy": {"existingSecret": "ttc-policy"}},
    "policy-restart": {"policy": {"restartOnChange": True, "content": "tiers: {}\n"}},
}


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Render like `helm template`: every non-empty document of every template but NOTES.txt."""
    out = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@pytest.fixture(scope="session")
def rendered(chart: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: render(chart, values) for name, values in VARIANTS.items()}


def only(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]], name: str = "router") -> dict[str, Any]:
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def policy_text() -> str:
    return (CHART_DIR / "files" / "policy.yaml").read_text()


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)


@pytest.fixture(scope="session")
def live_client(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real app (lifespan and all) serving the chart's default policy, with an in-process
    upstream and a fixed classifier instead of OpenAI and the embedding model (cheap: ~1 s)."""
    import uuid

    import redis
    from fastapi.testclient import TestClient

    from classifier.base import FixedClassifier, Tier
    from router.app import create_app
    from router.settings import Settings
    from tests.fakes import ScriptedUpstream

    tmp = tmp_path_factory.mktemp("deploy-app")
    policy = tmp / "policy.yaml"
    policy.write_text(policy_text())
    prefix = f"ttc-deploy-{uuid.uuid4().hex[:8]}:"
    settings = Settings.model_validate(
        {"policy_path": policy, "redis_url": redis_url, "redis_prefix": prefix, "data_dir": tmp})
    upstream = ScriptedUpstream(name="openai", handler=lambda request: "The answer is 4.")
    app = create_app(settings, upstreams={"openai": upstream},
                     classifier=FixedClassifier(Tier.MEDIUM))
    with TestClient(app) as client:
        yield client
    conn = redis.Redis.from_url(redis_url)
    try:
        keys = list(conn.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            conn.delete(*keys)
    finally:
        conn.close()
