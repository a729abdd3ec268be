"""Fast JSON (orjson) for request bodies, responses and upstream answers.

orjson is strict where the standard library is lenient (lone surrogates, NaN); on such input
these helpers fall back to `json`, so behaviour matches the standard library exactly and only
the common case gets faster.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=_OPTIONS)
    except TypeError:  # lone surrogates, big ints, unknown types: the standard library's way
        return json.dumps(obj, separators=(",", ":"), default=str).encode("ascii")


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # accepts what orjson refuses (lone surrogates), else raises


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


class _FastJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class FastJSONRoute(APIRoute):
    """An APIRoute whose request bodies are parsed with orjson.

    An endpoint declared as `async def f(body: SomeModel, request: Request)` (one JSON body
    model, the request, nothing else to solve, `response_model=None`) is called directly:
    read the body, parse it, validate it with the model, call. FastAPI's general handler
    (content-type parsing, dependency solving, per-request closures) cost about 0.15 ms a
    request on the chat endpoints. Errors are FastAPI's own: a `RequestValidationError`
    with the same `loc`, `type` and `msg` for a missing body, a body that is not JSON and a
    body the model refuses, and its 400 "There was an error parsing the body" for a body that
    cannot be read or decoded (invalid UTF-8, nesting past the parser's depth), so the 400s
    read the same. Other endpoints get FastAPI's handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        direct = self._direct_handler()
        if direct is not None:
            return direct
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_FastJSONRequest(request.scope, request.receive))

        return route_handler

    def _direct_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
        d = self.dependant
        if (len(d.body_params) != 1 or d.dependencies or d.path_params or d.query_params
                or d.header_params or d.cookie_params or d.request_param_name is None
                or d.background_tasks_param_name or d.response_param_name
                or d.websocket_param_name or self.response_model is not None
                or not inspect.iscoroutinefunction(d.call)):
            return None
        model = d.body_params[0].field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        call, body_name, request_name = d.call, d.body_params[0].name, d.request_param_name

        async def direct(request: Request) -> Response:
            try:
                raw = await request.body()
            except Exception as e:  # the client went away mid-body: FastAPI's answer
                raise HTTPException(400, "There was an error parsing the body") from e
            if not raw:
                raise RequestValidationError(
                    [{"type": "missing", "loc": ("body",), "msg": "Field required",
                      "input": None}])
            try:
                data = loads(raw)
            except json.JSONDecodeError as e:
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                      "input": {}, "ctx": {"error": e.msg}}], body=e.doc) from e
            except Exception as e:  # invalid UTF-8, nesting past the parser's depth: FastAPI's
                raise HTTPException(400, "There was an error parsing the body") from e
            try:
                body = model.model_validate(data, from_attributes=True)  # as FastAPI does
            except ValidationError as e:
                raise RequestValidationError(
                    [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)],
                    body=data) from None
            response: Response = await call(**{body_name: body, request_name: request})
            return response

        return direct


__all__ = ["FastJSONResponse", "FastJSONRoute", "dumps", "loads"]
