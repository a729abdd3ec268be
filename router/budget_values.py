"""The values of the budget ledger (`router.budgets`): what a reservation holds, what is left
under each cap, micro-dollar rounding, the 429 that carries them, and the settle health that
`/readyz` shows. No Redis here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from policies.schema import TenantPolicy
from router.errors import BudgetExceeded

Period = Literal["day", "month"]
CacheWrite = tuple[str, str, int]  # result-cache key, JSON value, ttl in seconds
CAP_NAMES = ("daily_usd", "monthly_usd", "daily_tokens", "monthly_tokens")


class Costed(Protocol):
    """An option to reserve: a plan's worst case (`router.planning.Plan`)."""

    @property
    def worst_usd(self) -> float: ...

    @property
    def worst_tokens(self) -> int: ...


C = TypeVar("C", bound=Costed)


def to_micro(usd: float) -> int:
    return round(usd * 1_000_000)


def to_micro_ceil(usd: float) -> int:
    """Estimates round up (never under-reserve)."""
    return math.ceil(round(usd * 1_000_000, 6))


@dataclass(frozen=True)
class Remaining:
    """What is left under each cap (None = no such cap). USD may be negative if overspent."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None

    @classmethod
    def from_script(cls, values: Sequence[Any]) -> Remaining:
        du, mu, dt, mt = (None if v is None else int(v) for v in values)
        return cls(
            None if du is None else du / 1e6, None if mu is None else mu / 1e6, dt, mt
        )

    @property
    def usd(self) -> float | None:
        vals = [v for v in (self.daily_usd, self.monthly_usd) if v is not None]
        return min(vals) if vals else None

    @property
    def tokens(self) -> int | None:
        vals = [v for v in (self.daily_tokens, self.monthly_tokens) if v is not None]
        return min(vals) if vals else None

    def headers(self) -> dict[str, str]:
        """`x-ttc-budget-remaining` (USD, tightest cap) and `-tokens`; none without caps."""
        out: dict[str, str] = {}
        if (usd := self.usd) is not None:
            out["x-ttc-budget-remaining"] = f"{max(usd, 0.0):.6f}"
        if (tokens := self.tokens) is not None:
            out["x-ttc-budget-remaining-tokens"] = str(max(tokens, 0))
        return out

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(zip(CAP_NAMES, (self.daily_usd, self.monthly_usd, self.daily_tokens,
                                    self.monthly_tokens), strict=True))


@dataclass(frozen=True)
class Reservation:
    id: str
    tenant: str
    usd_micro: int
    tokens: int
    keys: tuple[str, str, str, str]  # day, month, res, resd
    expires_at: float
    remaining: Remaining = field(default_factory=Remaining)
    choice: int = 0  # index into the estimates offered (0 = the first, most capable)
    checked: bool = True  # False: Redis was not consulted (fail-open / no caps)
    reclaimed: int = 0  # expired reservations reclaimed by this reserve
    cached: str | None = None  # the probed result-cache entry: found, so nothing was reserved

    @property
    def usd(self) -> float:
        return self.usd_micro / 1e6


@dataclass
class SettleHealth:
    """Settles that failed on this replica (shown by `/readyz` under `checks.budgets`): spend
    that was not recorded, reservations held until they expire."""

    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_ok_at: float | None = None

    def failed(self, error: str, at: float) -> None:
        self.failures += 1
        self.last_error, self.last_error_at = error[:500], at

    def as_dict(self) -> dict[str, Any]:
        return {"settle_failures": self.failures, "last_settle_error": self.last_error,
                "last_settle_error_at": self.last_error_at, "last_settle_ok_at": self.last_ok_at}


class BudgetCapExceeded(BudgetExceeded):
    """429: no offered plan fits the tenant's caps. Carries what is left."""

    def __init__(self, message: str, remaining: Remaining, cap: str | None) -> None:
        super().__init__(message, headers=remaining.headers())
        self.remaining = remaining
        self.cap = cap

    @classmethod
    def tightest(cls, tenant: str, caps: list[int], remaining: Remaining,
                 estimate: tuple[int, int]) -> BudgetCapExceeded:
        """The 429 naming the first cap (`CAP_NAMES` order) that `estimate` (micro-USD,
        tokens) does not fit under, with what it has left."""
        left = remaining.as_dict()
        for name, cap in zip(CAP_NAMES, caps, strict=True):
            value = left[name]
            if cap < 0 or value is None:
                continue
            need = estimate[0] / 1e6 if name.endswith("usd") else estimate[1]
            if value < need:
                unit = "USD" if name.endswith("usd") else "tokens"
                cap_v = cap / 1e6 if name.endswith("usd") else cap
                return cls(
                    f"tenant {tenant!r} budget exceeded: {name} cap {cap_v:g} {unit} has "
                    f"{max(value, 0):g} left, the request may cost up to {need:g} {unit}",
                    remaining, name,
                )
        return cls(f"tenant {tenant!r} budget exceeded", remaining, None)


def caps_of(spec: TenantPolicy | None) -> list[int]:
    if spec is None:
        return [-1, -1, -1, -1]
    usd = [-1 if c is None else round(c * 1_000_000) for c in (spec.daily_usd, spec.monthly_usd)]
    tok = [-1 if c is None else c for c in (spec.daily_tokens, spec.monthly_tokens)]
    return usd + tok


__all__ = [
    "CAP_NAMES",
    "BudgetCapExceeded",
    "C",
    "CacheWrite",
    "Costed",
    "Period",
    "Remaining",
    "Reservation",
    "SettleHealth",
    "caps_of",
    "to_micro",
    "to_micro_ceil",
]
