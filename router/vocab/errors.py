"""The error hierarchy. Domain code raises these; `router.api.errors` maps them to HTTP.

    RouterError                   500 internal_error (never with a stack trace in the body)
    ├── InvalidRequest            400 invalid_request_error (names the offending `param`)
    ├── Unauthorized              401 authentication_error
    ├── NotFound                  404 not_found_error
    ├── BudgetExceeded            429 budget_exceeded (tenant cap; carries what is left)
    ├── UpstreamError             502 upstream_error (provider failed after retries)
    ├── UpstreamTimeout           504 upstream_timeout
    ├── StoreUnavailable          503 store_unavailable (Redis down, budgets fail closed)
    └── PolicyError               500/400 invalid policy (load time: refused, old one kept)

Two answers come from the ASGI middlewares before any route runs, not from this tree: 413
request_too_large (`router.middleware`, body over TTC_MAX_BODY_BYTES) and 503 overloaded
(`router.admission`, too many requests in flight).
"""

from __future__ import annotations


class RouterError(Exception):
    status: int = 500
    type: str = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class InvalidRequest(RouterError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(RouterError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"



class NotFound(RouterError):
    status = 404
    type = "not_found_error"



class BudgetExceeded(RouterError):
    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"



class UpstreamError(RouterError):
    status = 502
    type = "upstream_error"


class UpstreamTimeout(RouterError):
    status = 504
    type = "upstream_timeout"


class StoreUnavailable(RouterError):
    status = 503
    type = "store_unavailable"


class PolicyError(RouterError):
    status = 500
    type = "policy_error"


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
