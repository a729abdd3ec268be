"""The admin API: policy view and reload, spend, tenant budget view and reset.

Enabled only when `TTC_ADMIN_TOKEN` is set; otherwise every `/admin/*` route answers 404, as
if it did not exist. The token comes as `Authorization: Bearer <token>` or `x-admin-token`
and is compared in constant time; missing or wrong -> 401.

    GET  /admin/policy                          serving policy, revision, last reload error
    POST /admin/policy/reload                   re-read the file; 422 + errors when refused
    GET  /admin/spend?tenant=&period=day|month  one tenant, or every known tenant
    GET  /admin/tenants/{tenant}/budget         caps, spend, reserved and remaining
    POST /admin/tenants/{tenant}/budget/reset?period=day|month|all
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from policies.loader import PolicyValidationError
from policies.reload import PolicyHolder
from policies.schema import NAME_PATTERN
from router.budgets import Budgets
from router.errors import InvalidRequest, NotFound, Unauthorized
from router.metrics import Metrics
from router.settings import Settings
from router.store import Store

_NAME = re.compile(NAME_PATTERN)


class AdminState(Protocol):
    """What the admin API reads from `app.state.ttc` (the lead's `AppState` has it)."""

    settings: Settings
    metrics: Metrics
    policy: PolicyHolder
    store: Store
    budgets: Budgets


def _state(request: Request) -> AdminState:
    state: AdminState = request.app.state.ttc
    return state


def require_admin(request: Request) -> AdminState:
    state = _state(request)
    token = state.settings.admin_token
    if token is None:
        raise NotFound(f"no route for {request.method} {request.url.path}")
    auth = request.headers.get("authorization", "")
    scheme, _, presented = auth.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        presented = request.headers.get("x-admin-token", "")
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(presented.strip().encode(), expected):
        raise Unauthorized("admin token missing or wrong", code="invalid_admin_token")
    return state


Admin = Annotated[AdminState, Depends(require_admin)]
TenantName = Annotated[str, Path(max_length=64)]
admin_router = APIRouter(prefix="/admin", tags=["admin"])


def _tenant_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest(f"invalid tenant name {name!r}", param="tenant")
    return name


@admin_router.get("/policy")
async def get_policy(state: Admin) -> dict[str, Any]:
    loaded = state.policy.current
    return {**state.policy.status(), "policy": loaded.policy.model_dump(mode="json")}


@admin_router.post("/policy/reload", response_model=None)
async def reload_policy(state: Admin) -> dict[str, Any] | JSONResponse:
    before = state.policy.current.revision
    try:
        loaded = await state.policy.reload()
    except PolicyValidationError as exc:
        return JSONResponse(
            {
                "error": {"message": exc.message, "type": "policy_error", "param": None,
                          "code": "policy_invalid"},
                "errors": exc.errors,
                "revision": state.policy.current.revision,
            },
            status_code=422,
        )
    return {"revision": loaded.revision, "previous_revision": before,
            "changed": loaded.revision != before, "source": loaded.source}


@admin_router.get("/spend")
async def get_spend(
    state: Admin,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    period: Literal["day", "month"] = "day",
) -> dict[str, Any]:
    if tenant is not None:
        return await state.budgets.spend(_tenant_name(tenant), period)
    names = set(await state.budgets.tenants()) | set(state.policy.current.policy.tenants)
    return {"period": period,
            "tenants": [await state.budgets.spend(n, period) for n in sorted(names)]}


@admin_router.get("/tenants/{tenant}/budget")
async def get_budget(state: Admin, tenant: TenantName) -> dict[str, Any]:
    name = _tenant_name(tenant)
    spec = state.policy.current.policy.tenant(name)
    remaining = await state.budgets.remaining(name, spec)
    caps = {
        "daily_usd": spec.daily_usd if spec else None,
        "monthly_usd": spec.monthly_usd if spec else None,
        "daily_tokens": spec.daily_tokens if spec else None,
        "monthly_tokens": spec.monthly_tokens if spec else None,
    }
    return {
        "tenant": name,
        "configured": spec is not None,
        "caps": caps,
        "remaining": remaining.as_dict(),
        "day": await state.budgets.spend(name, "day"),
        "month": await state.budgets.spend(name, "month"),
    }


@admin_router.post("/tenants/{tenant}/budget/reset")
async def reset_budget(
    state: Admin, tenant: TenantName, period: Literal["day", "month", "all"] = "all"
) -> dict[str, Any]:
    name = _tenant_name(tenant)
    await state.budgets.reset(name, period)
    return {"tenant": name, "reset": period}


__all__ = ["AdminState", "admin_router", "require_admin"]
