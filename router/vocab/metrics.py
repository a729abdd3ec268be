"""What the lower layers record, as small protocols the service's `router.metrics.Metrics`
satisfies (prometheus_client collectors fit them). Classifier and policy code depend on these,
never on the service's metrics module."""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


class Increment(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Setter(Protocol):
    def set(self, value: float) -> None: ...


class CounterFamily(Protocol):
    def labels(self, **labels: str) -> Increment: ...


class GaugeFamily(Protocol):
    def labels(self, **labels: str) -> Setter: ...

    def clear(self) -> None: ...


class ClassifierMetrics(Protocol):
    """The embedding classifier's latency."""

    @property
    def classifier_latency(self) -> Observer: ...


class FallbackMetrics(Protocol):
    """The LLM fallback's outcomes and latency."""

    @property
    def fallbacks(self) -> CounterFamily: ...

    @property
    def fallback_latency(self) -> Observer: ...


class PolicyMetrics(Protocol):
    """The serving policy's revision and its reloads."""

    @property
    def policy_info(self) -> GaugeFamily: ...

    @property
    def policy_reloads(self) -> CounterFamily: ...


__all__ = [
    "ClassifierMetrics",
    "CounterFamily",
    "FallbackMetrics",
    "GaugeFamily",
    "Increment",
    "Observer",
    "PolicyMetrics",
    "Setter",
]
