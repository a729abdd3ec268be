"""The typed state object built in the FastAPI lifespan and reached through dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from classifier.base import Classifier
from router.metrics import Metrics
from router.runtime import Runtime
from router.settings import Settings
from router.upstreams.pool import UpstreamPool

if TYPE_CHECKING:
    from policies.reload import PolicyHolder
    from router.budgets import Budgets
    from router.cache import ResultCache
    from router.store import Store


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    policy: PolicyHolder
    store: Store
    budgets: Budgets
    cache: ResultCache
    classifier: Classifier
    upstreams: UpstreamPool
    runtime: Runtime  # the serving policy revision's runtime, swapped whole on reload
    classifier_error: str | None = None
    embedded_redis: Any = None  # router.supervise.EmbeddedHealth when Redis is embedded
