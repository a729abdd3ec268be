"""The Grafana dashboard and the alert rules query only metrics the service really exports.

The exported names come from a scrape of /metrics on the running app (create_app with its
lifespan, serving the chart's default policy), and independently from the `Metrics` registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from router.metrics import Metrics
from tests.deploy.conftest import CHART_DIR, FULLNAME, VARIANTS, only

DASHBOARD = CHART_DIR / "files" / "dashboards" / "ttc-router.json"

PROMQL_WORDS = {
    # aggregation operators
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
    # functions
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count_over_time", "day_of_month", "day_of_week", "days_in_month",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2", "max_over_time",
    "min_over_time", "minute", "month", "predict_linear", "present_over_time",
    "quantile_over_time", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
    "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "time", "timestamp",
    "vector", "year",
    # keywords
    "and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(r"(?<![\w$])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?\b")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*(?:,\s*[A-Za-z_]\w*\s*)?\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana label_values query) selects."""
    if match := _LABEL_VALUES.match(expr):
        expr = match.group(1)
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    return {t for t in _IDENT.findall(text) if t.lower() not in PROMQL_WORDS}


def series_names(exposition: str) -> set[str]:
    """Every series name the exposition can carry, including families with no samples yet."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            yield f"variable {var['name']}", query


@pytest.fixture(scope="module")
def scraped(live_client: Any) -> str:
    """/metrics of the running app after real traffic: a routed request, a dry run, an error."""
    ok = live_client.post("/v1/chat/completions", json={
        "model": "ttc-auto", "messages": [{"role": "user", "content": "What is 2 + 2?"}]})
    assert ok.status_code == 200, ok.text
    assert live_client.post("/v1/route", json={
        "model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    assert live_client.post("/v1/chat/completions", content=b"{not json").status_code == 400
    response = live_client.get("/metrics")
    assert response.status_code == 200
    text: str = response.text
    return text


@pytest.fixture(scope="module")
def registry_exposition() -> str:
    return generate_latest(Metrics().registry).decode()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def alert_rules(chart: Any) -> list[dict[str, Any]]:
    from tests.deploy.conftest import render

    rule = only(render(chart, VARIANTS["monitoring"]), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


# --- the checker itself ---------------------------------------------------------------------


def test_metric_name_extraction() -> None:
    expr = ('sum by (le, upstream) (rate(ttc_x_bucket{job=~"$job", a!="b c"}[$__rate_interval]))'
            ' / ignoring(outcome) group_left sum(up{x="1"} offset 5m) > 0.5e3')
    assert metric_names(expr) == {"ttc_x_bucket", "up"}
    assert metric_names('label_values(ttc_requests_total{namespace=~"$ns"}, job)') == {
        "ttc_requests_total"}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(ttc_y_bucket[5m])))") == {
        "ttc_y_bucket"}


def test_the_check_catches_a_wrong_name(scraped: str) -> None:
    exported = series_names(scraped)
    assert "ttc_requests_total" in exported
    # a typo, a family name without its suffix, a metric of another exporter
    for wrong in ("rate(ttc_request_total[5m])", "ttc_overhead_seconds", "up"):
        assert metric_names(wrong) - exported, wrong


def test_the_app_exports_every_collector(scraped: str, registry_exposition: str) -> None:
    app = {f.name for f in text_string_to_metric_families(scraped)}
    registry = {f.name for f in text_string_to_metric_families(registry_exposition)}
    assert registry <= app


# --- dashboard -----------------------------------------------------------------------------


def test_dashboard_is_a_well_formed_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "ttc-router" and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # scoped to the selected namespace and job, so one Grafana serves many releases
            assert '$namespace' in target["expr"] and '$job' in target["expr"], panel["title"]


@pytest.mark.parametrize("source", ["app-scrape", "metrics-registry"])
def test_every_dashboard_query_names_an_exported_metric(
    dashboard: dict[str, Any], source: str, request: pytest.FixtureRequest
) -> None:
    exposition = request.getfixturevalue("scraped" if source == "app-scrape"
                                         else "registry_exposition")
    exported = series_names(exposition)
    queries = list(dashboard_queries(dashboard))
    assert len(queries) > 20
    for where, expr in queries:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= exported, f"{where}: not exported: {sorted(names - exported)}"


def test_dashboard_shows_what_operators_need(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(e) for _, e in dashboard_queries(dashboard)))
    needed = {
        "ttc_requests_total",  # requests by tier and strategy
        "ttc_request_errors_total",  # errors
        "ttc_overhead_seconds_bucket",  # overhead p50/p99
        "ttc_upstream_latency_seconds_bucket", "ttc_upstream_calls_total",  # upstreams
        "ttc_spend_usd_total", "ttc_tenant_spend_usd", "ttc_tenant_cap_usd",  # spend vs caps
        "ttc_classifier_fallback_total", "ttc_classifier_decisions_total",  # fallback rate
        "ttc_cache_requests_total",  # cache hit rate
    }
    assert needed <= used, sorted(needed - used)
    queries = " ".join(e for _, e in dashboard_queries(dashboard))
    for quantile in ("0.5", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(ttc_overhead_seconds_bucket" in (
            queries)
    assert 'result="hit"' in queries  # a hit *rate*, not only lookups


def test_dashboard_ships_in_the_chart(chart: Any, dashboard: dict[str, Any]) -> None:
    from tests.deploy.conftest import render

    docs = render(chart, VARIANTS["monitoring"])
    configmap = only(docs, "ConfigMap", f"{FULLNAME}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["ttc-router.json"]) == dashboard
    assert not [d for d in render(chart, {}) if d["metadata"]["name"].endswith("-dashboard")]


# --- alerts and the ServiceMonitor -----------------------------------------------------------


@pytest.mark.parametrize("source", ["app-scrape", "metrics-registry"])
def test_every_alert_names_an_exported_metric(
    alert_rules: list[dict[str, Any]], source: str, request: pytest.FixtureRequest
) -> None:
    exposition = request.getfixturevalue("scraped" if source == "app-scrape"
                                         else "registry_exposition")
    exported = series_names(exposition)
    for rule in alert_rules:
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric"
        assert names <= exported, f"{rule['alert']}: not exported: {sorted(names - exported)}"


def test_alerts_cover_the_operational_risks(alert_rules: list[dict[str, Any]]) -> None:
    by_name = {r["alert"]: r for r in alert_rules}
    assert {"TTCTenantNearCap", "TTCTenantOverCap", "TTCUpstreamErrorRate",
            "TTCClassifierFallbackSpike", "TTCOverheadP99High", "TTCPolicyReloadFailed",
            } <= by_name.keys()
    for rule in alert_rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        # scoped to this release's scrape job, so two releases never fire for each other
        assert f'job="{FULLNAME}"' in rule["expr"], rule["alert"]
    assert "ttc_policy_reloads_total" in by_name["TTCPolicyReloadFailed"]["expr"]
    assert 'outcome="error"' in by_name["TTCPolicyReloadFailed"]["expr"]
    assert "> 0.05" in by_name["TTCOverheadP99High"]["expr"]  # the default threshold, 50 ms


def test_alert_thresholds_come_from_values(chart: Any) -> None:
    from tests.deploy.conftest import render

    values = {"metrics": {"prometheusRule": {"enabled": True, "overheadP99Seconds": 0.02}}}
    rule = only(render(chart, values), "PrometheusRule")
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "> 0.02" in exprs["TTCOverheadP99High"]


def test_service_monitor_scrapes_the_router_service(rendered: dict[str, Any]) -> None:
    for variant in ("monitoring", "sidecar-scraped"):
        docs = rendered[variant]
        monitor = only(docs, "ServiceMonitor")
        service = only(docs, "Service", FULLNAME)
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items())
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
