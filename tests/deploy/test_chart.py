"""The Helm chart renders, lints and validates against Kubernetes 1.29 and 1.33, offline.

Rendering uses helm-python-sdk (Helm's Go library in-process; no `helm` binary, no cluster), the
schemas come from kubernetes-validate's bundled copies, strict mode (unknown fields fail).
"""

from __future__ import annotations

import copy
import posixpath
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from kubernetes_validate import utils as kv_utils

from tests.deploy.conftest import (
    CHART_DIR,
    FULLNAME,
    NAMESPACE,
    VARIANTS,
    container,
    env_of,
    load_yaml,
    only,
    policy_text,
    render,
)

K8S_VERSIONS = ("1.29", "1.33")
# Prometheus-operator CRDs: not in the Kubernetes schemas; checked in test_observability.py.
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
             ("monitoring.coreos.com/v1", "PrometheusRule")}


def _validate(doc: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kv_utils.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {where}: {exc.message}")


# --- Kubernetes schemas --------------------------------------------------------------------


def test_bundled_schemas_cover_the_versions_we_claim() -> None:
    have = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
    assert set(K8S_VERSIONS) <= have, f"kubernetes-validate carries {sorted(have)}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_manifest_validates_strictly(
    rendered: dict[str, list[dict[str, Any]]], variant: str, version: str
) -> None:
    docs = rendered[variant]
    assert docs, f"{variant} rendered nothing"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            # Make sure the skip is real: the library indeed has no schema for it.
            with pytest.raises(kv_utils.SchemaNotFoundError):
                kubernetes_validate.validate(doc, version, strict=True)
            continue
        _validate(doc, version)


def test_strict_validation_catches_an_unknown_field(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = copy.deepcopy(only(rendered["default"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kv_utils.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)


def test_no_kind_outside_the_expected_set(rendered: dict[str, list[dict[str, Any]]]) -> None:
    kinds = {(d["apiVersion"], d["kind"]) for docs in rendered.values() for d in docs}
    assert kinds == {
        ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "ServiceAccount"),
        ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"), *CRD_KINDS,
    }


# --- helm lint and values.schema.json ------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_strict_is_clean(variant: str) -> None:
    for version in K8S_VERSIONS:
        report = helm.lint(CHART_DIR, copy.deepcopy(VARIANTS[variant]), strict=True,
                           namespace=NAMESPACE, kube_version=f"v{version}.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not problems and not report["errors"], (version, problems, report["errors"])


def test_helm_lint_reports_a_bad_value() -> None:
    report = helm.lint(CHART_DIR, {"replicaCount": "two"}, strict=True)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


def test_defaults_satisfy_the_schema(chart: Any) -> None:
    assert chart.schema is not None
    chart.validate_schema(chart.values)


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"containerPort": 70000}, "containerPort"),
        ({"replicas": 3}, "replicas"),  # a typo of replicaCount: unknown keys are refused
        ({"redis": {"mode": "memcached"}}, "redis/mode"),
        ({"config": {"logPrompts": "yes"}}, "logPrompts"),
        ({"policy": {"mountPath": "relative/dir"}}, "mountPath"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": "70%"}}, "targetCPU"),
    ],
)
def test_schema_rejects_bad_values(chart: Any, values: dict[str, Any], names: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=names):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name="ttc", namespace=NAMESPACE)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"mode": "external"}}, "redis.external.existingSecret"),
        ({"redis": {"mode": "embedded"}}, "one replica"),
        ({"mode": "sidecar"}, "sidecar.gateway.container"),
        ({"policy": {"existingSecret": "p", "content": "a: 1"}}, "policy.existingSecret"),
        ({"mode": "sidecar", "sidecar": {"gateway": {"container": {"name": "gw", "image": "gw:1"}}},
          "metrics": {"serviceMonitor": {"enabled": True}}}, "cannot be scraped"),
    ],
)
def test_inconsistent_values_fail_with_a_message(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


# --- what the manifests must get right -----------------------------------------------------


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = only(docs, "Deployment")["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.startswith("sidecar")])
def test_probes_hit_the_health_endpoints_on_the_serving_port(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    c = container(rendered[variant])
    port = next(p for p in c["ports"] if p["name"] == "http")
    assert env_of(c)["TTC_PORT"]["value"] == str(port["containerPort"])
    assert env_of(c)["TTC_HOST"]["value"] == "0.0.0.0"
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    # model loading gets minutes, not the liveness probe's seconds
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_probe_paths_answer_on_the_running_app(
    rendered: dict[str, list[dict[str, Any]]], live_client: Any
) -> None:
    c = container(rendered["default"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        response = live_client.get(c[probe]["httpGet"]["path"])
        assert response.status_code == 200, (probe, response.text)
    assert live_client.get(c["readinessProbe"]["httpGet"]["path"]).json()["ready"] is True


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_runs_as_non_root_with_a_read_only_root(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    pod = _pod(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    c = container(docs)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # the only writable paths are emptyDirs: the data dir and /tmp
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]
                if not m.get("readOnly")}
    assert set(writable) == {env_of(c)["TTC_DATA_DIR"]["value"], "/tmp"}
    assert all("emptyDir" in v for v in writable.values())
    for sts in (d for d in docs if d["kind"] == "StatefulSet"):
        spec = sts["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_policy_is_mounted_where_ttc_policy_path_points(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    c = container(docs)
    policy_path = env_of(c)["TTC_POLICY_PATH"]["value"]
    directory, filename = posixpath.split(policy_path)
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == directory)
    # a directory mount: subPath would freeze the file and defeat hot reload
    assert "subPath" not in mount and mount["readOnly"] is True
    volume = next(v for v in _pod(docs)["volumes"] if v["name"] == mount["name"])
    [source] = volume["projected"]["sources"]
    if variant == "policy-secret":
        assert source["secret"]["name"] == "ttc-policy"
        assert source["secret"]["items"] == [{"key": filename, "path": filename}]
        assert not [d for d in docs if d["kind"] == "ConfigMap"]
        return
    assert source["configMap"]["items"] == [{"key": filename, "path": filename}]
    configmap = only(docs, "ConfigMap", source["configMap"]["name"])
    expected = VARIANTS[variant].get("policy", {}).get("content") or policy_text()
    assert load_yaml(configmap["data"][filename]) == load_yaml(expected)


def test_the_charts_default_policy_loads_in_this_router() -> None:
    from policies.loader import parse_policy

    loaded = parse_policy(policy_text(), "helm/ttc-router/files/policy.yaml")
    assert loaded.policy.models["openai"].api_key_env == "OPENAI_API_KEY"


def test_policy_change_restarts_pods_only_when_asked(chart: Any) -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        meta = only(render(chart, values), "Deployment")["spec"]["template"]["metadata"]
        return dict(meta.get("annotations", {}))

    assert "checksum/policy" not in annotations({})  # default: hot reload, no restart
    one = annotations({"policy": {"restartOnChange": True, "content": "a: 1\n"}})
    two = annotations({"policy": {"restartOnChange": True, "content": "a: 2\n"}})
    assert one["checksum/policy"] != two["checksum/policy"]


def test_existing_policy_configmap_is_used_and_not_rendered(chart: Any) -> None:
    docs = render(chart, {"policy": {"existingConfigMap": "ops-policy"}})
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    sources = _pod(docs)["volumes"][0]["projected"]["sources"]
    assert sources[0]["configMap"]["name"] == "ops-policy"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_service_port_reaches_the_serving_container_port(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    service = only(docs, "Service", FULLNAME)
    pod = _pod(docs)
    assert service["spec"]["selector"].items() <= only(docs, "Deployment")["spec"]["template"][
        "metadata"]["labels"].items()
    ports = {p["name"]: p for c in pod["containers"] for p in c.get("ports", [])}
    for sp in service["spec"]["ports"]:
        target = sp["targetPort"]
        if isinstance(target, str):
            assert target in ports, f"Service targets unknown port name {target}"
            target = ports[target]["containerPort"]
        assert target in {p["containerPort"] for p in ports.values()}
    front = service["spec"]["ports"][0]
    if variant.startswith("sidecar"):
        assert front["name"] == "gateway" and front["targetPort"] == 8000
    else:
        assert front["targetPort"] == "http"
        assert ports["http"]["containerPort"] == int(env_of(container(docs))["TTC_PORT"]["value"])


def test_redis_modes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert only(rendered["default"], "StatefulSet")["spec"]["replicas"] == 1
    assert not [d for d in rendered["external-redis"] if d["kind"] == "StatefulSet"]
    embedded = rendered["embedded-redis"]
    assert not [d for d in embedded if d["kind"] in {"StatefulSet", "HorizontalPodAutoscaler"}]
    assert "TTC_REDIS_URL" not in env_of(container(embedded))
    assert only(embedded, "Deployment")["spec"]["replicas"] == 1


def test_autoscaling_and_disruption_budget_target_the_router(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    deployment = only(docs, "Deployment")
    assert "replicas" not in deployment["spec"]  # the HPA owns the replica count
    hpa = only(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} == {"topology.kubernetes.io/zone",
                                                  "kubernetes.io/hostname"}
    assert all(s["labelSelector"]["matchLabels"].items() <= labels.items() for s in spread)


def test_sidecar_mode_puts_the_router_beside_the_gateway_on_loopback(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["sidecar"]
    pod = _pod(docs)
    assert [c["name"] for c in pod["containers"]] == ["gateway", "router"]
    router = container(docs)
    env = env_of(router)
    assert env["TTC_HOST"]["value"] == "127.0.0.1"
    assert env["TTC_TENANT_HEADER"]["value"] == "x-tenant-id"
    # the kubelet cannot reach loopback, so the probes run inside the container
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        command = router[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"] and path in command[2]
        assert "TTC_PORT" in command[2]
    service = only(docs, "Service", FULLNAME)
    assert [p["name"] for p in service["spec"]["ports"]] == ["gateway"]


def test_network_policy_admits_callers_and_limits_redis(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["network-policy"]
    pod_labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    router_np = only(docs, "NetworkPolicy", FULLNAME)
    assert router_np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ingress = router_np["spec"]["ingress"]
    assert ingress[0]["from"] == VARIANTS["network-policy"]["networkPolicy"]["ingressFrom"]
    assert ingress[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    redis_labels = only(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    egress_to_redis = [r for r in router_np["spec"]["egress"]
                       if any(p.get("port") == 6379 for p in r["ports"])]
    assert egress_to_redis[0]["to"][0]["podSelector"]["matchLabels"] == redis_labels
    redis_np = only(docs, "NetworkPolicy", f"{FULLNAME}-redis")
    allowed = redis_np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= pod_labels.items()
    assert redis_np["spec"]["egress"] == []
