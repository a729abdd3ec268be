"""Combine one candidate's per-step scores into one number: the only place that does it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

How = Literal["min", "product", "mean", "last"]
AGGREGATIONS: tuple[str, ...] = ("min", "product", "mean", "last")


def aggregate(scores: Sequence[float], how: str = "min") -> float:
    """`min` (weakest step), `product` (all steps right), `mean`, or `last` (the PRM's view of
    the whole chain). Scores are clamped to [0, 1]; no scores give 0.0."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; expected one of {', '.join(AGGREGATIONS)}")
    if not scores:
        return 0.0
    clamped = [min(1.0, max(0.0, float(s))) for s in scores]
    if how == "min":
        return min(clamped)
    if how == "product":
        return math.prod(clamped)
    if how == "mean":
        return math.fsum(clamped) / len(clamped)
    return clamped[-1]
