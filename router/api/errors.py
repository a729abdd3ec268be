"""Errors to HTTP, in one place: OpenAI-style bodies, Anthropic-style on `/v1/messages`."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.errors import RouterError

log = structlog.get_logger(__name__)

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
HTTP_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}
INTERNAL_MESSAGE = "internal error; see the router logs"  # a bug's 500 (also router.middleware)


def error_body(
    path: str, status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    if path.startswith("/v1/messages"):
        return {
            "type": "error",
            "error": {"type": ANTHROPIC_TYPES.get(status, type_), "message": message},
        }
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    request: Request,
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    rid = getattr(request.state, "request_id", None)
    out = dict(headers or {})
    if rid:
        out["x-request-id"] = rid
    body = error_body(request.url.path, status, message, type_, param, code)
    return JSONResponse(body, status_code=status, headers=out)


def _loc_to_param(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif isinstance(p, str) and (p in ("str", "int", "float", "bool") or "[" in p):
            continue  # union branch tags from pydantic, e.g. "list[TextPart]"
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    loc = tuple(first.get("loc", ("body",)))
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", "body"
    param = _loc_to_param(loc)
    msg = str(first.get("msg", "invalid value"))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if first.get("type") == "missing":
        return f"missing required field '{param}'{more}", param
    return f"invalid value for '{param}': {msg}{more}", param


def _count(request: Request, type_: str) -> None:
    metrics = getattr(getattr(request.app.state, "ttc", None), "metrics", None)
    if metrics is not None:
        metrics.errors.labels(endpoint=request.url.path, type=type_).inc()


def install(app: FastAPI) -> None:
    @app.exception_handler(RouterError)
    async def _router_error(request: Request, exc: RouterError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("request_failed", error_type=exc.type, error=exc.message)
        _count(request, exc.type)
        return error_response(
            request, exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        _count(request, "invalid_request_error")
        return error_response(
            request, 400, message, "invalid_request_error", param, "invalid_value"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        if exc.status_code != 404:
            _count(request, type_)
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404:
            message = f"no route for {request.method} {request.url.path}"
        return error_response(request, exc.status_code, message, type_)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        _count(request, "internal_error")
        return error_response(request, 500, INTERNAL_MESSAGE, "internal_error")
