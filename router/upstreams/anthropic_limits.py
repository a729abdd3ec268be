"""Anthropic API limits (`router.vocab.anthropic_limits`), for the service's own modules."""

from router.vocab.anthropic_limits import (
    MIN_THINKING_BUDGET,
    tier_problems,
)

__all__ = [
    "MIN_THINKING_BUDGET",
    "tier_problems",
]
