"""Every Prometheus collector of the service, in one place, on a per-app registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
UPSTREAM_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


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
            ["tenant", "period"], registry=r,
        )
        self.tenant_cap = Gauge(
            "ttc_tenant_cap_usd", "Tenant cap for the period (USD)", ["tenant", "period"],
            registry=r,
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
            "ttc_policy_info", "Serving policy revision (value 1)", ["revision"], registry=r
        )
        self.store_errors = Counter(
            "ttc_store_errors", "Redis operations that failed", ["op"], registry=r
        )
        self.candidates = Histogram(
            "ttc_candidates", "Candidates considered per request", ["strategy"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
