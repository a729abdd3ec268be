"""The router with parts of its request path switched off, to measure what each part costs.

    python bench/overhead.py --ablate no-reserve --ablate no-classify --concurrency 1 --workers 1
    python -m bench.ablate no-reserve,no-settle serve --workers 1     # the server alone

An ablation is a measuring device, never a way to serve: each one breaks caps, spend records
or routing. The leg runs `ttc-router` in this process after swapping the named step for a
stand-in that does no work (one worker only: the patches live in this process):

    no-reserve   the reservation is answered here (nothing is reserved in Redis, no cache
                 probe) and settles are skipped: the whole Redis path of a request
    no-settle    settles are skipped; reservations stay held until they expire
    no-classify  fixed classifier scores (the `medium` tier, full confidence), no pass

In `bench/overhead.py` an ablated leg sits beside the full router in the same run, so the
difference between the two is what the switched-off part costs the request.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

ABLATIONS = ("no-reserve", "no-settle", "no-classify")


def _skip_settles() -> None:
    from router.budgets import Budgets

    def settle_later(self: Budgets, *args: Any, **kwargs: Any) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(asyncio.sleep(0))

    Budgets.settle_later = settle_later  # type: ignore[method-assign]


def _local_reservations() -> None:
    from router.budget_values import Reservation
    from router.budgets import Budgets

    async def reserve_first_fit(
        self: Budgets, tenant: str, policy_tenant: Any, estimates: Sequence[tuple[float, int]],
        ttl_s: float, *, fail_open: bool = False, probe: str | None = None,
    ) -> Reservation:
        usd, tokens = estimates[0]
        now = self.clock()
        return Reservation("ablated", tenant, round(usd * 1e6), int(tokens),
                           self._keys(tenant), now + ttl_s, checked=False)

    Budgets.reserve_first_fit = reserve_first_fit  # type: ignore[method-assign]
    _skip_settles()


def _fixed_scores() -> None:
    from classifier.base import TIERS, Tier, TierScores
    from router import planning

    scores = TierScores(tuple(1.0 if t is Tier.MEDIUM else 0.0 for t in TIERS), Tier.MEDIUM,
                        1.0, source="embedding")

    async def classify(state: Any, runtime: Any, messages: Any) -> TierScores:
        return scores

    planning.classify = classify


PATCHES: dict[str, Callable[[], None]] = {
    "no-reserve": _local_reservations,
    "no-settle": _skip_settles,
    "no-classify": _fixed_scores,
}


def apply(names: Sequence[str]) -> None:
    """Swap the named steps (`ABLATIONS`) for stand-ins; raises ValueError on an unknown one."""
    unknown = [n for n in names if n not in PATCHES]
    if unknown:
        raise ValueError(f"unknown ablation {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    for name in names:
        PATCHES[name]()


def main(argv: Sequence[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    names = [n for n in argv[0].split(",") if n]
    rest = list(argv[1:])
    if "--workers" in rest and rest[rest.index("--workers") + 1] != "1":
        raise SystemExit("an ablated router runs one worker (the patches live in this process)")
    apply(names)
    from router.cli import app

    sys.argv = ["ttc-router", *rest]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
