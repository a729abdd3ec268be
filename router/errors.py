"""The error hierarchy (`router.vocab.errors`), for the service's own modules."""

from router.vocab.errors import (
    BudgetExceeded,
    InvalidRequest,
    NotFound,
    PolicyError,
    RouterError,
    StoreUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)

__all__ = [
    "BudgetExceeded",
    "InvalidRequest",
    "NotFound",
    "PolicyError",
    "RouterError",
    "StoreUnavailable",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
]
