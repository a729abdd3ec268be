"""Fast JSON (orjson) for request bodies, responses and upstream answers.

orjson is strict where the standard library is lenient (lone surrogates, NaN); on such input
these helpers fall back to `json`, so behaviour matches the standard library exactly and only
the common case gets faster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

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
    """An APIRoute whose request bodies are parsed with orjson."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(_FastJSONRequest(request.scope, request.receive))

        return route_handler


__all__ = ["FastJSONResponse", "FastJSONRoute", "dumps", "loads"]
