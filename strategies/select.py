"""Selection by an outcome checker (tests passed, reference matched): the best score wins and
ties go to the answer more samples agree on (the vote), then to the earliest sample."""

from __future__ import annotations

from collections.abc import Sequence

from strategies.base import Verifier


def is_outcome(verifier: Verifier | None) -> bool:
    """Whether `verifier` checks outcomes (its scores are pass rates / correctness)."""
    return bool(getattr(verifier, "outcome", False))


def pick_outcome(answers: Sequence[str | None], scores: Sequence[float]) -> int | None:
    """Index of the best-scored sample, ties broken by how many samples gave the same answer
    (compared with whitespace normalised: programs rarely match under maths equivalence)."""
    if not scores:
        return None
    keys = [" ".join(a.split()) if a is not None else None for a in answers]
    votes = [keys.count(k) if k is not None else 0 for k in keys]
    return max(range(len(scores)), key=lambda i: (scores[i], votes[i], -i))


__all__ = ["is_outcome", "pick_outcome"]
