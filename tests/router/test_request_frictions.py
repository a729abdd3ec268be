"""Requests a new user sends by hand: a missing `model`, tools, images, curl's form header.

Each is either served as the OpenAI / Anthropic API would serve it, or refused with a 400 that
names the field; nothing is dropped silently.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.router.conftest import Running

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "ttc-auto", "messages": MESSAGES}
ANTHROPIC = {"model": "ttc-auto", "max_tokens": 16, "messages": MESSAGES}


def post(r: Running, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{r.url}{path}", json=body, timeout=30, **kw)


def openai_error(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def anthropic_error(resp: httpx.Response) -> str:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


def test_model_is_required_as_by_the_apis(router_server: Running) -> None:
    error = openai_error(post(router_server, "/v1/chat/completions", {"messages": MESSAGES}))
    assert error["param"] == "model" and error["message"] == "missing required field 'model'"
    message = anthropic_error(
        post(router_server, "/v1/messages", {"max_tokens": 16, "messages": MESSAGES})
    )
    assert "'model'" in message and "required" in message
    # the dry run is this router's own API: it documents `ttc-auto` as its default
    assert post(router_server, "/v1/route", {"input": "hi"}).status_code == 200


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
    ],
)
def test_tool_requests_are_refused_naming_the_field(
    router_server: Running, extra: dict[str, Any], param: str
) -> None:
    before = router_server.stub.requests
    error = openai_error(post(router_server, "/v1/chat/completions", {**CHAT, **extra}))
    assert error["param"] == param and "not supported" in error["message"]
    assert router_server.stub.requests == before  # refused before any upstream call


def test_anthropic_tools_are_refused(router_server: Running) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    message = anthropic_error(post(router_server, "/v1/messages", {**ANTHROPIC, "tools": tools}))
    assert "'tools' is not supported" in message


def test_asking_for_no_tools_is_served(router_server: Running) -> None:
    body = {**CHAT, "tools": [], "tool_choice": "none"}
    assert post(router_server, "/v1/chat/completions", body).status_code == 200


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ],
)
def test_non_text_parts_are_refused_by_type(router_server: Running, part: dict[str, Any]) -> None:
    content = [{"type": "text", "text": "what is this?"}, part]
    body = {**CHAT, "messages": [{"role": "user", "content": content}]}
    error = openai_error(post(router_server, "/v1/chat/completions", body))
    assert error["param"] == "messages[0].content"
    assert f"content part 1 has type '{part['type']}': only text is supported" in error["message"]
    assert "more problems" not in error["message"]


def test_anthropic_image_blocks_are_refused_by_type(router_server: Running) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}
    body = {**ANTHROPIC, "messages": [{"role": "user", "content": [image]}]}
    message = anthropic_error(post(router_server, "/v1/messages", body))
    assert "content block 0 has type 'image': only text is supported" in message


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_bodies_are_read_whatever_the_content_type(
    router_server: Running, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    for path, body in (("/v1/chat/completions", CHAT), ("/v1/route", {"input": "hi"})):
        resp = httpx.post(
            f"{router_server.url}{path}", content=json.dumps(body), headers=headers, timeout=30
        )
        assert resp.status_code == 200, (content_type, path, resp.text)
    garbage = httpx.post(
        f"{router_server.url}/v1/chat/completions",
        content=b"model=ttc-auto&messages=hi",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert openai_error(garbage)["message"] == "the request body is not valid JSON"
