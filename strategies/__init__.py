"""Test-time-compute strategies, registered by name."""

from strategies.base import (
    Batch,
    Budget,
    Candidate,
    Generator,
    Problem,
    Result,
    Sample,
    Strategy,
    Verifier,
)
from strategies.greedy import Greedy

REGISTRY: dict[str, Strategy] = {
    "greedy": Greedy(),
}

__all__ = [
    "REGISTRY",
    "Batch",
    "Budget",
    "Candidate",
    "Generator",
    "Problem",
    "Result",
    "Sample",
    "Strategy",
    "Verifier",
]
