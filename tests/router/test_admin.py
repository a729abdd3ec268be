"""The admin API on a minimal app with a real store, budgets and policy holder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from policies.reload import PolicyHolder
from router.api import errors as error_handlers
from router.api.admin import admin_router
from router.budgets import Budgets
from router.cache import ResultCache
from router.metrics import Metrics
from router.settings import Settings
from router.store import Store
from tests.policies.samples import dump, ladder_doc
from tests.router import store_fixtures as fx

metrics = fx.metrics
state_redis_url = fx.state_redis_url
store = fx.store

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class State:
    settings: Settings
    metrics: Metrics
    policy: PolicyHolder
    store: Store
    budgets: Budgets
    cache: ResultCache


def build_app(state: State) -> FastAPI:
    app = FastAPI()
    error_handlers.install(app)
    app.include_router(admin_router)
    app.state.ttc = state
    return app


def write(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(dump(ladder_doc(daily_usd=1.0)))
    return path


@pytest.fixture
async def state(store: Store, metrics: Metrics, policy_file: Path) -> State:
    return State(
        settings=Settings(admin_token=SecretStr(TOKEN)),
        metrics=metrics,
        policy=PolicyHolder.load(policy_file, metrics),
        store=store,
        budgets=Budgets(store, metrics),
        cache=ResultCache(store, metrics),
    )


@pytest.fixture
async def client(state: State) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as c:
        yield c


async def test_disabled_without_token_is_404(state: State) -> None:
    state.settings = Settings()
    transport = httpx.ASGITransport(app=build_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as c:
        r = await c.get("/admin/policy", headers=AUTH)
    assert r.status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"x-admin-token": "admin-secreT"}])
async def test_wrong_or_missing_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.get("/admin/policy", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_admin_token"


async def test_policy_view_and_reload(
    client: httpx.AsyncClient, state: State, policy_file: Path
) -> None:
    r = await client.get("/admin/policy", headers={"x-admin-token": TOKEN})
    body = r.json()
    assert r.status_code == 200 and body["revision"] == state.policy.current.revision
    assert body["policy"]["tenants"]["t"]["daily_usd"] == 1.0 and body["last_error"] is None
    old = body["revision"]

    write(policy_file, dump(ladder_doc(daily_usd=2.0)))
    r = await client.post("/admin/policy/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["changed"] and r.json()["previous_revision"] == old
    new = r.json()["revision"]

    write(policy_file, "tiers: {easy: {strategy: nope}}\n")
    r = await client.post("/admin/policy/reload", headers=AUTH)
    assert r.status_code == 422
    assert r.json()["revision"] == new  # the previous policy keeps serving
    assert any(e.startswith("models:") for e in r.json()["errors"])
    r = await client.get("/admin/policy", headers=AUTH)
    assert r.json()["revision"] == new and "models" in r.json()["last_error"]


async def test_spend_budget_and_reset(client: httpx.AsyncClient, state: State) -> None:
    spec = state.policy.current.policy.tenants["t"]
    res = await state.budgets.reserve("t", spec, 0.25, 100, 60)
    await state.budgets.settle(res, 0.2, 80, "hard", "greedy")
    live = await state.budgets.reserve("t", spec, 0.1, 10, 60)

    r = await client.get("/admin/spend", params={"tenant": "t", "period": "day"}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["usd"] == pytest.approx(0.2) and r.json()["by_tier"]["hard"]["tokens"] == 80
    r = await client.get("/admin/spend", params={"period": "month"}, headers=AUTH)
    assert [t["tenant"] for t in r.json()["tenants"]] == ["t"]

    r = await client.get("/admin/tenants/t/budget", headers=AUTH)
    body = r.json()
    assert body["caps"]["daily_usd"] == 1.0
    assert body["remaining"]["daily_usd"] == pytest.approx(0.7)  # 1.0 - 0.2 spent - 0.1 held
    assert body["day"]["reserved_usd"] == pytest.approx(0.1)

    r = await client.post("/admin/tenants/t/budget/reset", params={"period": "day"},
                          headers=AUTH)
    assert r.status_code == 200
    body = (await client.get("/admin/tenants/t/budget", headers=AUTH)).json()
    assert body["remaining"]["daily_usd"] == pytest.approx(0.9)
    assert body["month"]["usd"] == pytest.approx(0.2)  # only the day was reset
    await state.budgets.release(live)


async def test_bad_tenant_name_is_400(client: httpx.AsyncClient) -> None:
    r = await client.get("/admin/spend", params={"tenant": "a b"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tenant"
