"""Every Prometheus collector of the service, in one place, on a per-app registry.

With `PROMETHEUS_MULTIPROC_DIR` set (`ttc-router serve --workers N`, see `router.serve`) the
samples live in files shared by the workers, and `exposition()` reports all of them.
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
UPSTREAM_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _CachedChildren:
    """`labels()` that remembers each child: prometheus_client validates the names, builds a
    tuple of strings and takes a lock on every call (~5-9 us); the request path calls it a
    dozen times a request with a handful of distinct label sets. Keyed by the call's own
    arguments (values, or names and values), so a cached child is the one `labels()` gave
    for exactly that call."""

    _children: dict[Any, Any]

    def labels(self, *values: Any, **named: Any) -> Any:
        key = values if not named else (*values, *named.items())
        try:
            return self._children[key]
        except AttributeError:
            self._children = {}
        except KeyError:
            pass
        child = self._children[key] = super().labels(*values, **named)  # type: ignore[misc]
        return child


class Counter(_CachedChildren, prometheus_client.Counter):
    pass


class Gauge(_CachedChildren, prometheus_client.Gauge):
    pass


class Histogram(_CachedChildren, prometheus_client.Histogram):
    pass


class Metrics:
    """Collectors for one app instance (tests build many apps; no global registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ttc_requests", "Requests answered", ["endpoint", "tier", "strategy", "status"],
            registry=r,
        )
        self.errors = Counter(
            "ttc_request_errors", "Requests answered with an error", ["endpoint", "type"],
            registry=r,
        )
        self.overhead = Histogram(
            "ttc_overhead_seconds", "Router time per request, upstream time excluded",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.duration = Histogram(
            "ttc_request_duration_seconds", "Wall time per request", ["endpoint"],
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.upstream_calls = Counter(
            "ttc_upstream_calls", "Upstream calls", ["upstream", "outcome"], registry=r
        )
        self.upstream_latency = Histogram(
            "ttc_upstream_latency_seconds", "Upstream call latency", ["upstream"],
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.tokens = Counter(
            "ttc_tokens", "Tokens spent", ["tier", "strategy", "kind"], registry=r
        )
        self.spend = Counter(
            "ttc_spend_usd", "Committed spend in USD", ["tenant", "tier"], registry=r
        )
        self.tenant_spend = Gauge(
            "ttc_tenant_spend_usd", "Tenant spend in the current period (USD)",
            ["tenant", "period"], registry=r, multiprocess_mode="mostrecent",
        )
        self.tenant_cap = Gauge(
            "ttc_tenant_cap_usd", "Tenant cap for the period (USD)", ["tenant", "period"],
            registry=r, multiprocess_mode="mostrecent",
        )
        self.classifications = Counter(
            "ttc_classifier_decisions", "Tier decisions", ["tier", "source"], registry=r
        )
        self.classifier_latency = Histogram(
            "ttc_classifier_seconds", "Classifier latency (embedding path)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.fallbacks = Counter(
            "ttc_classifier_fallback", "LLM fallback calls by outcome",
            ["outcome"], registry=r,  # agree | disagree | timeout | garbage | error
        )
        self.fallback_latency = Histogram(
            "ttc_classifier_fallback_seconds", "LLM fallback latency",
            buckets=UPSTREAM_BUCKETS, registry=r,
        )
        self.cache = Counter(
            "ttc_cache_requests", "Result cache lookups", ["result"], registry=r
        )  # hit | miss | bypass | error
        self.budget = Counter(
            "ttc_budget_decisions", "Budget reservations", ["outcome"], registry=r
        )  # ok | downgrade | reject | store_error
        self.budget_reclaimed = Counter(
            "ttc_budget_reservations_reclaimed", "Expired budget reservations reclaimed",
            registry=r,
        )
        self.budget_settle_failures = Counter(
            "ttc_budget_settle_failures",
            "Settles that failed: spend not recorded, reservation held until it expires",
            registry=r,
        )
        self.policy_reloads = Counter(
            "ttc_policy_reloads", "Policy reload attempts", ["outcome"], registry=r
        )  # ok | error
        self.policy_info = Gauge(
            "ttc_policy_info", "Serving policy revision (value 1)", ["revision"], registry=r,
            multiprocess_mode="max",
        )
        self.store_errors = Counter(
            "ttc_store_errors", "Redis operations that failed", ["op"], registry=r
        )
        self.candidates = Histogram(
            "ttc_candidates", "Candidates considered per request", ["strategy"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
        self.loop_lag = Histogram(
            "ttc_event_loop_lag_seconds",
            "How late the event loop woke a sleeper (sampled every 0.25 s); a blocked loop "
            "shows here", buckets=LATENCY_BUCKETS, registry=r,
        )
        self.loop_lag_max = Gauge(
            "ttc_event_loop_lag_max_seconds", "Largest event-loop lag in the last window",
            registry=r, multiprocess_mode="max",
        )
        self.inflight = Gauge(
            "ttc_inflight_requests", "Requests being served (admission control)",
            registry=r, multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "ttc_requests_shed", "Requests answered 503 by admission control", registry=r
        )


def exposition(metrics: Metrics) -> tuple[bytes, str]:
    """The `/metrics` body and content type: every worker's samples in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
