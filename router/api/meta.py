"""Models, dry-run routing, health, readiness and metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from router.api.common import StateDep, request_headers, request_latency
from router.clock import Clock
from router.headers import routed_headers
from router.jsonfast import FastJSONResponse, FastJSONRoute
from router.limits import check_limits
from router.metrics import exposition
from router.planning import TIER_MODELS, Call, decide, describe
from router.schemas import RouteRequest
from router.tenancy import resolve_tenant

router = APIRouter(route_class=FastJSONRoute)


@router.get("/v1/models")
async def models(state: StateDep) -> dict[str, Any]:
    policy = state.policy.current.policy
    created = 0
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "ttc-router"}
        for name in [*policy.logical_models, *TIER_MODELS]
    ]
    data += [
        {"id": name, "object": "model", "created": created, "owned_by": spec.provider}
        for name, spec in sorted(policy.models.items())
    ]
    return {"object": "list", "data": data}


@router.post("/v1/route")
async def route(body: RouteRequest, request: Request, state: StateDep) -> JSONResponse:
    """Dry run: the decision for a request, without generating or reserving."""
    clock = Clock()
    runtime = state.runtime
    loaded = runtime.loaded
    headers = request_headers(request)
    tenant = resolve_tenant(loaded.policy, headers, state.settings)
    call = Call(
        endpoint="route",
        model=body.model,
        messages=body.to_messages(),
        tier_hint=request.headers.get("x-ttc-tier"),
        latency=request_latency(request, None),
    )
    check_limits(state.settings, call)
    d = await decide(state, runtime, tenant, call, clock)
    payload = describe(d, tenant=tenant.name, revision=loaded.revision, latency=call.latency)
    rid = headers.get("x-request-id") or uuid.uuid4().hex
    out = routed_headers(d, rid, cost_usd=0.0, overhead_ms=clock.overhead_ms, cache="bypass",
                         revision=loaded.revision)
    return FastJSONResponse(payload, headers=out)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    holder = state.policy
    checks: dict[str, Any] = {}
    checks["policy"] = {
        "ok": True,
        "revision": holder.current.revision,
        "source": holder.current.source,
        "last_reload_error": getattr(holder, "last_error", None),
    }
    describe = getattr(state.classifier, "describe", None)
    checks["classifier"] = {
        "ok": state.classifier_error is None,
        "error": state.classifier_error,
        "kind": type(state.classifier).__name__,
        **(describe() if callable(describe) else {}),
    }
    began = time.perf_counter()
    store_ok = await state.store.ping()
    checks["store"] = {"ok": store_ok, "ms": round((time.perf_counter() - began) * 1000, 2)}
    if not store_ok:
        checks["store"]["error"] = "Redis does not answer PING" + (
            "" if state.embedded_redis is None else "; the embedded server is being restarted")
    if state.embedded_redis is not None:
        checks["store"]["embedded"] = state.embedded_redis.as_dict()
    # Informational: a failed settle leaves the replica able to serve (alert TTCBudgetSettleFailed).
    checks["budgets"] = {"ok": True, **state.budgets.settle_health.as_dict()}
    checks["upstreams"] = {
        "ok": bool(state.upstreams.names()),
        "models": {name: {"provider_model": up.model} for name, up in state.upstreams.items()},
    }
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    body, content_type = exposition(state.metrics)
    return Response(body, media_type=content_type)
