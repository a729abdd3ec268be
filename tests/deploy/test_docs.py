"""docs/deploy.md stays true: its value blocks render and validate, its sidecar snippet matches
what the chart renders, and its metrics reference lists exactly the registered collectors."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from router.metrics import Metrics
from tests.deploy.conftest import FULLNAME, REPO, container, env_of, only, render

DOC = REPO / "docs" / "deploy.md"
_BLOCK = re.compile(r"```yaml\n(# (values|snippet): ([\w-]+)\n.*?)```", re.S)


def _blocks(kind: str) -> dict[str, Any]:
    found = {m.group(3): yaml.safe_load(m.group(1))
             for m in _BLOCK.finditer(DOC.read_text()) if m.group(2) == kind}
    assert found, f"no `# {kind}:` blocks in {DOC}"
    return found


VALUE_BLOCKS = _blocks("values")


def test_every_deployment_variant_is_documented() -> None:
    assert {"bundled-redis", "external-redis", "sidecar", "monitoring",
            "network-policy"} <= VALUE_BLOCKS.keys()


@pytest.mark.parametrize("name", sorted(VALUE_BLOCKS))
def test_documented_values_render_and_validate(chart: Any, name: str) -> None:
    docs = render(chart, VALUE_BLOCKS[name])
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: checked in test_observability.py
        for version in ("1.29", "1.33"):
            kubernetes_validate.validate(doc, version, strict=True)


def test_sidecar_snippet_matches_the_chart(chart: Any) -> None:
    snippet = _blocks("snippet")["gateway-with-router"]
    for version in ("1.29", "1.33"):
        kubernetes_validate.validate(snippet, version, strict=True)
    pod = snippet["spec"]["template"]["spec"]
    router = next(c for c in pod["containers"] if c["name"] == "ttc-router")
    env = {e["name"]: e for e in router["env"]}
    assert env["TTC_HOST"]["value"] == "127.0.0.1"
    assert "secretKeyRef" in env["TTC_REDIS_URL"]["valueFrom"]

    rendered = render(chart, VALUE_BLOCKS["sidecar"])
    chart_router = container(rendered)
    chart_env = env_of(chart_router)
    for name in ("TTC_HOST", "TTC_PORT", "TTC_POLICY_PATH", "TTC_DATA_DIR"):
        assert env[name]["value"] == chart_env[name]["value"], name
    for probe in ("startupProbe", "readinessProbe"):
        assert router[probe]["exec"] == chart_router[probe]["exec"], probe
    mounts = {m["mountPath"]: m for m in router["volumeMounts"]}
    policy_dir = env["TTC_POLICY_PATH"]["value"].rsplit("/", 1)[0]
    assert "subPath" not in mounts[policy_dir]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[policy_dir]["name"]]["configMap"]["name"] == f"{FULLNAME}-policy"
    only(rendered, "ConfigMap", f"{FULLNAME}-policy")
    for key in ("runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
                "capabilities"):
        assert router["securityContext"][key] == chart_router["securityContext"][key], key
    assert pod["securityContext"]["runAsUser"] == chart_router["securityContext"]["runAsUser"]


def test_metrics_reference_lists_every_collector() -> None:
    rows = dict(re.findall(r"^\| `(ttc_\w+)` \| (\w+) \|", DOC.read_text(), re.M))
    expected = {}
    for family in Metrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        expected[name] = family.type
    assert rows == expected
