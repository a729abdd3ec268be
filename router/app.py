"""`create_app()`: builds the FastAPI app; resources live in the lifespan, in one `AppState`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from fastapi import FastAPI

from classifier.base import TIERS, Classifier, TierScores
from policies.loader import LoadedPolicy
from policies.reload import Commit, PolicyHolder
from router import __version__
from router.admission import Admission, watch_loop_lag
from router.api import anthropic as anthropic_api
from router.api import errors as error_handlers
from router.api import meta
from router.api import openai as openai_api
from router.api.admin import admin_router
from router.budgets import Budgets
from router.cache import ResultCache
from router.logging import configure_logging
from router.metrics import Metrics
from router.middleware import RequestContext
from router.runtime import compile_runtime
from router.settings import Settings
from router.state import AppState
from router.store import connect_store
from router.upstreams.base import Upstream
from router.upstreams.pool import UpstreamPool

log = structlog.get_logger(__name__)


class UnavailableClassifier:
    """Stands in when the embedding classifier cannot load: uniform probabilities, so every
    request goes to the LLM fallback (when configured) and `/readyz` reports the error."""

    async def classify(self, texts: Any) -> list[Any]:
        uniform = [1 / len(TIERS)] * len(TIERS)
        return [TierScores.from_probabilities(uniform, source="unavailable") for _ in texts]

    def describe(self) -> dict[str, Any]:
        return {"backend": "unavailable", "embedding_model": None}


async def _load_classifier(settings: Settings) -> tuple[Classifier, str | None]:
    try:
        from classifier import load_classifier

        clf = await asyncio.to_thread(
            lambda: load_classifier(
                settings.classifier_model,
                settings.classifier_artifact,
                backend=settings.classifier_backend if settings.classifier_artifact is None
                else None,
            )
        )
        return clf, None
    except Exception as exc:
        log.error("classifier_unavailable", error=str(exc))
        return UnavailableClassifier(), f"{type(exc).__name__}: {exc}"


def _llm_classifier(app: FastAPI, holder: Any) -> tuple[Classifier, str | None]:
    """The LLM-prompt classifier on the policy's `classifier.fallback_model` (read per query)."""
    from classifier.llm_backend import LLMClassifier

    def resolve() -> Any:
        return app.state.ttc.runtime.fallback

    error = None
    if not holder.current.policy.classifier.fallback_model:
        error = "TTC_CLASSIFIER_BACKEND=llm needs classifier.fallback_model in the policy"
    return LLMClassifier(resolve), error


GC_YOUNG_THRESHOLD = 10_000  # net new container objects between young collections (default 700)


def tune_gc() -> tuple[int, int, int]:
    """Tune the cyclic garbage collector for serving; returns the thresholds to restore.

    - Everything alive after start-up (about 160,000 objects: the SDKs' and pydantic's type
      trees, the policy, the classifier) is frozen out of its reach. It lives as long as the
      process, yet every full collection walked it all: about 100 ms with the event loop
      stopped, every ~500 requests under load, which set the p99 at 32 callers.
    - Young collections run every 10,000 net new container objects instead of 700: a request
      allocates a few hundred that die with it, so the default threshold collected every few
      requests (`bench/hotpath_cpu.py --default-gc`, docs/benchmarks.md "Seventh pass").
    `gc.unfreeze()` and the returned thresholds undo both at shutdown."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])
    return before


def create_app(
    settings: Settings | None = None,
    *,
    upstreams: Mapping[str, Upstream] | None = None,
    classifier: Classifier | None = None,
) -> FastAPI:
    """The service. `upstreams` and `classifier` override the policy's / packaged ones
    (tests inject fakes here; production leaves them unset)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = Metrics()
        holder = PolicyHolder.load(settings.policy_path, metrics)
        store = await connect_store(settings)
        pool = UpstreamPool(settings, metrics, overrides=upstreams)
        stop = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        lag_watch: asyncio.Task[None] | None = None
        supervisor: asyncio.Task[None] | None = None
        gc_before: tuple[int, int, int] | None = None
        try:
            await pool.rebuild(holder.current.policy.models)
            if classifier is not None:
                clf, clf_error = classifier, None
            elif settings.classifier_backend == "llm":
                clf, clf_error = _llm_classifier(app, holder)
            else:
                clf, clf_error = await _load_classifier(settings)
            state = AppState(
                settings=settings,
                metrics=metrics,
                policy=holder,
                store=store,
                budgets=Budgets(store, metrics, fail_open=settings.budget_fail_open),
                cache=ResultCache(store, metrics),
                classifier=clf,
                upstreams=pool,
                runtime=compile_runtime(holder.current, dict(pool.items()), metrics),
                classifier_error=clf_error,
            )

            retired: list[Upstream] = []

            async def prepare(loaded: LoadedPolicy) -> Commit:
                # Build the new revision's runtime before it serves: a failure refuses the
                # reload (the holder records it), and the old policy and runtime keep serving.
                clients = await pool.build(loaded.policy.models)
                try:
                    runtime = compile_runtime(loaded, clients, metrics)
                except BaseException:
                    await pool.discard(clients)
                    raise

                def commit() -> None:  # runs in the holder's swap step
                    retired.extend(pool.install(clients))
                    state.runtime = runtime

                return commit

            async def close_retired(loaded: LoadedPolicy) -> None:
                while retired:
                    await retired.pop().aclose()

            holder.prepare = prepare
            holder.on_change.append(close_retired)
            if store.embedded is not None:  # restart it if it dies (router.supervise)
                from router.supervise import EmbeddedHealth, supervise

                state.embedded_redis = EmbeddedHealth()
                supervisor = asyncio.create_task(
                    supervise(store.embedded, state.embedded_redis, stop)
                )
            if settings.policy_path is not None:
                watcher = asyncio.create_task(holder.watch(stop))
            holder.install_sighup()
            lag_watch = asyncio.create_task(watch_loop_lag(metrics, stop))
            app.state.ttc = state
            gc_before = tune_gc()
            log.info(
                "started",
                version=__version__,
                revision=holder.current.revision,
                models=pool.names(),
            )
            yield
        finally:
            if gc_before is not None:  # what served is collectable again (tests build many apps)
                gc.unfreeze()
                gc.set_threshold(*gc_before)
            stop.set()
            if lag_watch is not None:
                lag_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lag_watch
            if supervisor is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await supervisor
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            holder.remove_sighup()
            served = getattr(app.state, "ttc", None)
            if served is not None:  # answers already sent: commit what they spent
                await served.budgets.flush()
            clf_obj = getattr(served, "classifier", None)
            if clf_obj is not None and hasattr(clf_obj, "aclose"):
                await clf_obj.aclose()
            await pool.aclose()
            await store.aclose()

    app = FastAPI(
        title="ttc-router",
        version=__version__,
        summary="Routes each query to the test-time-compute strategy its difficulty deserves.",
        lifespan=lifespan,
    )
    app.add_middleware(Admission, max_inflight=settings.max_inflight)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    error_handlers.install(app)
    app.include_router(openai_api.router)
    app.include_router(anthropic_api.router)
    app.include_router(meta.router)
    app.include_router(admin_router)
    return app
