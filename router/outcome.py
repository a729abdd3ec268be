"""What the request path carries: `Prepared` (the plan and its reservation, before
generation) and `Outcome` (what a request produced and cost). `router.pipeline` builds both;
the API layer and `router.streaming` read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy
    from router.budgets import Reservation
    from router.calllog import CallRecord
    from router.clock import Clock
    from router.planning import Call, Plan
    from router.runtime import Runtime
    from router.tenancy import Tenant
    from router.upstreams.base import Usage


@dataclass
class Prepared:
    """Everything decided before generation: the plan and its reservation."""

    request_id: str
    call: Call
    runtime: Runtime
    tenant: Tenant
    decision: Plan
    reservation: Reservation | None
    cache_key: str | None
    clock: Clock
    calls: list[CallRecord] = field(default_factory=list)  # the call log (router.calllog)

    @property
    def loaded(self) -> LoadedPolicy:
        return self.runtime.loaded


@dataclass
class Outcome:
    request_id: str
    decision: Plan
    texts: list[str]
    finish_reasons: list[str]
    usage: Usage
    cost_usd: float
    cache: str  # hit | miss | bypass
    overhead_ms: float
    candidates: int = 0
    anytime: bool = False
    notes: tuple[str, ...] = ()
    revision: str = ""
    model_usage: dict[str, Usage] = field(default_factory=dict)  # other policy models' share
    stopped: str | None = None  # what cut the run: deadline | tokens | upstream (router.limits)
    traces: list[Any] | None = None  # strategy traces, when the client asked (x-ttc-trace)
    reasonings: list[str | None] = field(default_factory=list)  # thinking, apart from texts
    calls: list[CallRecord] = field(default_factory=list)  # every call and its cost, settled


__all__ = ["Outcome", "Prepared"]
