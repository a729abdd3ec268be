"""The direct handler of `FastJSONRoute`: endpoints of one JSON body model and the request are
called without FastAPI's dependency solving, with FastAPI's own validation errors; every other
endpoint keeps FastAPI's handler."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from router.api import anthropic as anthropic_api
from router.api import meta
from router.api import openai as openai_api
from router.app import create_app
from router.jsonfast import FastJSONRoute


class Item(BaseModel):
    name: str
    count: int = Field(ge=1)
    tags: list[str] = []


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=route_class)

    @router.post("/items", response_model=None)
    async def items(body: Item, request: Request) -> JSONResponse:
        return JSONResponse({"name": body.name, "count": body.count, "path": request.url.path})

    @app.exception_handler(RequestValidationError)
    async def show(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"errors": jsonable_encoder(exc.errors())}, status_code=422)

    app.include_router(router)
    return app


BODIES: list[bytes] = [
    b'{"name": "a", "count": 2}',
    b"",
    b"{not json",
    b"[1, 2]",
    b"null",
    b'{"count": 0, "tags": [1]}',
    b'{"name": 5, "count": "many", "extra": true}',
    b'{"name": "\xff\xfe", "count": 1}',  # not UTF-8
    b"[" * 5000 + b"]" * 5000,  # nested past the parsers' depth
]


@pytest.mark.parametrize("body", BODIES)
async def test_direct_answers_and_errors_are_fastapis(body: bytes) -> None:
    answers = []
    for route_class in (FastJSONRoute, APIRoute):
        transport = httpx.ASGITransport(app=_app(route_class))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            resp = await client.post("/items", content=body,
                                     headers={"content-type": "application/json"})
        answers.append((resp.status_code, resp.json()))
    assert answers[0] == answers[1]


def test_which_routes_are_called_directly() -> None:
    direct: dict[str, bool] = {}
    for api in (anthropic_api, meta, openai_api):
        for route in api.router.routes:
            assert isinstance(route, FastJSONRoute)
            direct[route.path] = route._direct_handler() is not None
    assert direct["/v1/chat/completions"] and direct["/v1/messages"]
    assert not direct["/v1/route"]  # it takes the app state as a dependency
    assert not direct["/v1/models"]  # no body


def test_a_dependency_keeps_fastapis_handler() -> None:
    def dep() -> int:
        return 1

    router = APIRouter(route_class=FastJSONRoute)

    @router.post("/x", response_model=None)
    async def x(body: Item, request: Request, d: Annotated[int, Depends(dep)]) -> JSONResponse:
        return JSONResponse({})

    [route] = router.routes
    assert isinstance(route, FastJSONRoute) and route._direct_handler() is None


def test_the_openapi_schema_still_describes_the_bodies() -> None:
    schema = create_app().openapi()
    body = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith(
        "ChatCompletionRequest")
