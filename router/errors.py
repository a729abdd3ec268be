"""The error hierarchy (`router.vocab.errors`), for the service's own modules."""

from router.vocab.errors import (
    BudgetExceeded,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PolicyError,
    RateLimited,
    RouterError,
    StoreUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)

__all__ = [
    "BudgetExceeded",
    "Forbidden",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PolicyError",
    "RateLimited",
    "RouterError",
    "StoreUnavailable",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
]
