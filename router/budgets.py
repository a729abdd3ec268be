"""Race-free per-tenant budget caps and spend tracking on Redis.

    plan, reservation = await budgets.reserve_with_downgrade(tenant, spec, plan.options, ttl_s)
    ... run the strategy ...
    await budgets.settle(reservation, usd=actual_usd, tokens=actual_tokens, tier=..., strategy=...)
    # or budgets.settle_later(...): the same in the background (the request path's way)
    # or, when nothing was spent (failed before any upstream call):
    await budgets.release(reservation)

A reservation holds the plan's worst case against every cap that applies (UTC day and month,
USD and tokens) in one Lua script, so concurrent requests on any number of replicas can never
jointly pass a cap: committed spend stays under the cap as long as actual cost <= estimate,
which the planner's `router.worstcase.worst_case` guarantees. Settling commits the actual
cost and releases the reservation in one script. Reservations expire after `ttl_s` (a
crashed replica does not lock a budget) and are reclaimed by the next reserve of that tenant.

Downgrade: `reserve_with_downgrade` (or `reserve_first_fit` with the caller's own estimates)
offers the plan and its downgrade candidates (`Plan.options`: with `on_exceeded: downgrade`,
the plans of every lower tier) to one script, which reserves the most capable one that fits:
one round trip, one atomic decision.

Redis down: `StoreUnavailable` (503), unless fail-open or the tenant has no caps (nothing to
enforce); then an unchecked reservation is returned and settle is best effort.
Metrics: `ttc_budget_decisions{outcome="store_error"}`, `ttc_budget_reservations_reclaimed`,
`ttc_tenant_spend_usd` here; ok / downgrade / reject are counted by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from redis.exceptions import RedisError, ResponseError

from policies.schema import TenantPolicy
from router import budget_lua
from router.budget_values import (
    BudgetCapExceeded,
    C,
    CacheWrite,
    Period,
    Remaining,
    Reservation,
    SettleHealth,
    caps_of,
    to_micro,
    to_micro_ceil,
)
from router.errors import StoreUnavailable
from router.ids import new_id
from router.metrics import Metrics
from router.store import Store

log = structlog.get_logger("ttc.budgets")

_HEADROOM_TENANTS = 10_000  # tenants whose last remaining is kept (`far_from_caps`)


class Budgets:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`fail_open` (TTC_BUDGET_FAIL_OPEN) or a call's `fail_open` (the policy's
        `budgets.fail_open`) lets requests through unchecked while Redis is down."""
        self.store = store
        self.fail_open = fail_open
        self.metrics = metrics
        self.clock = clock
        self._reserve = store.client.register_script(budget_lua.RESERVE)
        self._settle = store.client.register_script(budget_lua.SETTLE)
        self._reset = store.client.register_script(budget_lua.RESET)
        self._known: set[str] = set()
        self._stamps: tuple[int, str, str] = (-1, "", "")  # (UTC day, day stamp, month stamp)
        self.settle_health = SettleHealth()
        self._settling: dict[str, set[asyncio.Task[None]]] = {}  # settle_later, per tenant
        self._headroom: dict[str, Remaining] = {}  # the last remaining seen, per tenant

    def period_key(self, tenant: str, period: Period, at: datetime | None = None) -> str:
        at = at or datetime.fromtimestamp(self.clock(), UTC)
        stamp = at.strftime("%Y-%m-%d") if period == "day" else at.strftime("%Y-%m")
        return self.store.key("b", f"{{{tenant}}}", period[0], stamp)

    def _keys(self, tenant: str) -> tuple[str, str, str, str]:
        day = int(self.clock() // 86400)  # the UTC day; its stamps are formatted once a day
        if self._stamps[0] != day:
            at = datetime.fromtimestamp(day * 86400, UTC)
            self._stamps = (day, at.strftime("%Y-%m-%d"), at.strftime("%Y-%m"))
        _, d, m = self._stamps
        tag = f"{{{tenant}}}"
        k = self.store.key
        return (k("b", tag, "d", d), k("b", tag, "m", m), k("b", tag, "res"),
                k("b", tag, "resd"))

    async def _remember(self, tenant: str) -> None:
        """Index of tenants with spend, for `GET /admin/spend` without a tenant."""
        if tenant in self._known:
            return
        try:
            await self.store.client.sadd(self.store.key("b", "tenants"), tenant)
            self._known.add(tenant)
        except (RedisError, OSError):
            self.metrics.store_errors.labels(op="budget_index").inc()

    async def reserve_first_fit(
        self,
        tenant: str,
        policy_tenant: TenantPolicy | None,
        estimates: Sequence[tuple[float, int]],
        ttl_s: float,
        *,
        fail_open: bool = False,
        probe: str | None = None,
    ) -> Reservation:
        """Reserve the first (usd, tokens) estimate that fits every cap, in one script.

        `probe`: a result-cache key of the same tenant, read by the same script first; when it
        holds an answer, nothing is reserved and the Reservation carries it in `cached`.
        Raises `BudgetCapExceeded` when none fits, `StoreUnavailable` when Redis is down
        (unless `fail_open` or the tenant has no caps)."""
        if not estimates:
            raise ValueError("no estimates offered")
        caps = caps_of(policy_tenant)
        keys = self._keys(tenant)
        rid = new_id()
        now = self.clock()
        micro = [(max(0, to_micro_ceil(u)), max(0, int(t))) for u, t in estimates]
        args: list[int | str] = [int(now * 1000), int(ttl_s * 1000), rid, *caps, len(micro)]
        for u, t in micro:
            args += [u, t]
        script_keys = [*keys, probe] if probe is not None else list(keys)
        try:
            out = await self._reserve(keys=script_keys, args=args)
            if int(out[0]) == -1:  # the probed cache entry exists: nothing reserved
                return Reservation(rid, tenant, 0, 0, keys, now, checked=True, cached=out[6])
            if int(out[0]) == 0 and tenant in self._settling:
                # Nothing fits, but this process's earlier requests still hold their worst
                # case until their settles land (`settle_later`): wait for them, ask once more.
                await self.flush(tenant)
                out = await self._reserve(keys=list(keys), args=args)
        except (RedisError, OSError) as exc:
            self.metrics.store_errors.labels(op="budget_reserve").inc()
            self.metrics.budget.labels(outcome="store_error").inc()
            if fail_open or self.fail_open or all(c < 0 for c in caps):
                log.warning("budget_unchecked", tenant=tenant, error=str(exc))
                u, t = micro[0]
                return Reservation(rid, tenant, u, t, keys, now + ttl_s, checked=False)
            what = "unavailable"
            if isinstance(exc, ResponseError):  # Redis is up but the script failed: say so
                log.error("budget_reserve_failed", tenant=tenant, error=str(exc))
                what = f"rejected the budget script ({exc})"
            raise StoreUnavailable(
                f"budget store (Redis) {what}: request refused because budget caps fail "
                "closed (set budgets.fail_open in the policy to serve without caps)"
            ) from exc
        await self._remember(tenant)
        chosen, reclaimed = int(out[0]), int(out[1])
        remaining = Remaining.from_script(out[2:6])
        if len(self._headroom) >= _HEADROOM_TENANTS and tenant not in self._headroom:
            self._headroom.clear()
        self._headroom[tenant] = remaining
        if reclaimed:
            self.metrics.budget_reclaimed.inc(reclaimed)
        if chosen == 0:
            raise BudgetCapExceeded.tightest(tenant, caps, remaining, micro[-1])
        u, t = micro[chosen - 1]
        return Reservation(rid, tenant, u, t, keys, now + ttl_s, remaining, chosen - 1,
                           True, reclaimed)

    def far_from_caps(
        self, tenant: str, policy_tenant: TenantPolicy | None, usd: float, tokens: int,
        factor: float,
    ) -> bool:
        """Whether at least `factor` times (`usd`, `tokens`) was left under each of the
        tenant's caps when this process last reserved for it (`router.ahead`). A tenant
        without caps always is; one this process has not reserved for yet is not."""
        if all(c < 0 for c in caps_of(policy_tenant)):
            return True
        seen = self._headroom.get(tenant)
        if seen is None:
            return False
        left_usd, left_tokens = seen.usd, seen.tokens
        return ((left_usd is None or left_usd >= factor * usd)
                and (left_tokens is None or left_tokens >= factor * tokens))

    async def reserve(
        self,
        tenant: str,
        policy_tenant: TenantPolicy | None,
        usd: float,
        tokens: int,
        ttl_s: float,
        *,
        fail_open: bool = False,
    ) -> Reservation:
        return await self.reserve_first_fit(
            tenant, policy_tenant, [(usd, tokens)], ttl_s, fail_open=fail_open
        )

    async def reserve_with_downgrade(
        self,
        tenant: str,
        policy_tenant: TenantPolicy | None,
        options: Sequence[C],
        ttl_s: float,
        *,
        fail_open: bool = False,
        probe: str | None = None,
    ) -> tuple[C, Reservation]:
        """Reserve the first of `options` (a plan, then its downgrades: `Plan.options`) whose
        worst case fits every cap. Returns the option reserved and the reservation (with
        `probe`, see `reserve_first_fit`: a cache hit reserves nothing)."""
        reservation = await self.reserve_first_fit(
            tenant, policy_tenant, [(o.worst_usd, o.worst_tokens) for o in options], ttl_s,
            fail_open=fail_open, probe=probe,
        )
        return options[reservation.choice], reservation

    async def settle(
        self, reservation: Reservation, usd: float, tokens: int, tier: str = "",
        strategy: str = "", *, also_set: CacheWrite | None = None,
    ) -> None:
        """Commit the actual cost and release the reservation (one script). Never raises on
        a store error: the work is done; the reservation then expires and is reclaimed.
        `also_set` (key, value, ttl_s) writes a result-cache entry of the same tenant in the
        same script: settle and cache write are one round trip.
        Sets the `ttc_tenant_spend_usd` gauge; the `ttc_spend_usd` counter is the pipeline's."""
        # Rounded up: a request that cost anything records at least a micro-dollar, and never
        # more than it reserved (the reservation is the estimate rounded up the same way).
        await self._finish(reservation, to_micro_ceil(usd), tokens, tier, strategy, commit=True,
                           also_set=also_set)

    def settle_later(
        self, reservation: Reservation, usd: float, tokens: int, tier: str = "",
        strategy: str = "", *, also_set: CacheWrite | None = None,
    ) -> asyncio.Task[None]:
        """`settle` in the background, so an answer goes out without waiting for the round
        trip. Caps hold meanwhile: the reservation keeps the worst case held until the settle
        lands. A reserve of the tenant in this process that nothing fits waits for it and
        asks again, and spend, remaining and reset wait for it first (`flush`), so they see
        what it committed; shutdown waits for all."""
        return self._later(reservation.tenant, self.settle(
            reservation, usd, tokens, tier, strategy, also_set=also_set))

    def release_later(self, reservation: Reservation) -> asyncio.Task[None]:
        """`release` in the background, tracked like `settle_later`."""
        return self._later(reservation.tenant, self.release(reservation))

    def _later(self, tenant: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._settling.setdefault(tenant, set()).add(task)
        task.add_done_callback(lambda t: self._settled(tenant, t))
        return task

    def _settled(self, tenant: str, task: asyncio.Task[None]) -> None:
        pending = self._settling.get(tenant)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._settling[tenant]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("budget_settle_crashed", tenant=tenant, error=repr(exc))

    async def flush(self, tenant: str | None = None) -> None:
        """Wait for the background settles of `tenant` (None: of every tenant)."""
        pending = [t for name, tasks in self._settling.items() if tenant in (None, name)
                   for t in tasks]
        if pending:
            await asyncio.wait(pending)

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without committing anything (nothing was spent)."""
        await self._finish(reservation, 0, 0, "", "", commit=False)

    async def _finish(
        self, r: Reservation, usd_micro: int, tokens: int, tier: str, strategy: str, *,
        commit: bool, also_set: CacheWrite | None = None,
    ) -> None:
        keys = list(r.keys)
        args: list[int | str] = [
            r.id, max(0, usd_micro), max(0, int(tokens)), tier, strategy, int(commit),
            int(self.clock() * 1000),
        ]
        if also_set is not None:
            keys.append(also_set[0])
            args += [also_set[1], max(1, int(also_set[2]))]
        try:
            out = await self._settle(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self.metrics.store_errors.labels(op="budget_settle").inc()
            self.metrics.budget_settle_failures.inc()
            self.settle_health.failed(f"{type(exc).__name__}: {exc}", self.clock())
            # Unchecked (fail-open) reservations were never written: a warning, not an error.
            (log.error if r.checked else log.warning)(
                "budget_settle_failed", tenant=r.tenant, reservation=r.id, error=str(exc)
            )
            return
        self.settle_health.last_ok_at = self.clock()
        if r.checked and not int(out[0]):
            log.warning("budget_settled_after_expiry", tenant=r.tenant, reservation=r.id)
        self.metrics.tenant_spend.labels(tenant=r.tenant, period="day").set(int(out[1]) / 1e6)
        self.metrics.tenant_spend.labels(tenant=r.tenant, period="month").set(int(out[3]) / 1e6)

    async def remaining(self, tenant: str, policy_tenant: TenantPolicy | None) -> Remaining:
        """What is left under each cap now (reclaims expired reservations first)."""
        await self.flush(tenant)
        caps = caps_of(policy_tenant)
        try:
            args: list[int | str] = [int(self.clock() * 1000), 0, "-", *caps, 0]
            out = await self._reserve(keys=list(self._keys(tenant)), args=args)
        except (RedisError, OSError) as exc:
            self.metrics.store_errors.labels(op="budget_read").inc()
            raise StoreUnavailable("budget store (Redis) unavailable") from exc
        return Remaining.from_script(out[2:6])

    async def spend(
        self, tenant: str, period: Period = "day", at: datetime | None = None
    ) -> dict[str, Any]:
        """Committed and reserved spend of one period, with per-tier and per-strategy splits."""
        await self.flush(tenant)
        key = self.period_key(tenant, period, at)
        try:
            raw = {str(k): str(v) for k, v in (await self.store.client.hgetall(key)).items()}
        except (RedisError, OSError) as exc:
            self.metrics.store_errors.labels(op="budget_read").inc()
            raise StoreUnavailable("budget store (Redis) unavailable") from exc
        out: dict[str, Any] = {
            "tenant": tenant, "period": period, "key": key.rsplit(":", 1)[-1],
            "usd": int(raw.get("usd", 0)) / 1e6, "tokens": int(raw.get("tok", 0)),
            "reserved_usd": int(raw.get("rusd", 0)) / 1e6,
            "reserved_tokens": int(raw.get("rtok", 0)), "by_tier": {}, "by_strategy": {},
        }
        for name, value in raw.items():
            parts = name.split(":", 2)
            if len(parts) != 3:
                continue
            what, dim, label = parts
            entry = out[f"by_{dim}"].setdefault(label, {"usd": 0.0, "tokens": 0, "requests": 0})
            if what == "usd":
                entry["usd"] = int(value) / 1e6
            elif what == "tok":
                entry["tokens"] = int(value)
            else:
                entry["requests"] = int(value)
        out["requests"] = sum(e["requests"] for e in out["by_tier"].values())
        return out

    async def reset(self, tenant: str, period: Period | Literal["all"] = "all") -> None:
        """Clear committed spend of the current day and/or month (reservations are kept)."""
        await self.flush(tenant)  # a settle landing after the reset would count again
        periods: list[Period] = ["day", "month"] if period == "all" else [period]
        try:
            await self._reset(keys=[self.period_key(tenant, p) for p in periods], args=[])
        except (RedisError, OSError) as exc:
            self.metrics.store_errors.labels(op="budget_reset").inc()
            raise StoreUnavailable("budget store (Redis) unavailable") from exc

    async def tenants(self) -> list[str]:
        """Tenants that ever reserved through this store (any replica)."""
        try:
            members = await self.store.client.smembers(self.store.key("b", "tenants"))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable("budget store (Redis) unavailable") from exc
        return sorted(str(m) for m in members)


__all__ = [
    "BudgetCapExceeded",
    "Budgets",
    "Period",
    "Remaining",
    "Reservation",
    "SettleHealth",
    "to_micro",
]
