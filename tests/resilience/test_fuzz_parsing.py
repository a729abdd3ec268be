"""Hypothesis on request parsing: the request models in-process (any JSON either parses or is a
validation error; what parses converts to messages losslessly), and the HTTP endpoints over
loopback (any JSON document, any mutation of a valid request, any bytes: never a 5xx, every
4xx well formed).

Example counts (default suite): 100 per in-process property (4), 60 JSON documents and 60
mutations per endpoint (3), 40 raw byte bodies (x3 endpoints): 800 examples, 880 requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.stub_upstream import StubUpstream
from router.schemas import ChatCompletionRequest, MessagesRequest, RouteRequest
from tests.resilience.conftest import assert_error_body, policy_text, start_router
from tests.router.conftest import Running

PATHS = ["/v1/chat/completions", "/v1/messages", "/v1/route"]
FAST = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
HTTP = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "wizard", "", 3])
text = st.text(max_size=80)
content = text | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}),
                          max_size=3) | json_values
message = st.fixed_dictionaries({"role": roles, "content": content})
FIELDS = {
    "model": st.sampled_from(["ttc-auto", "ttc-hard", "stub", "nope"]) | json_values,
    "messages": st.lists(message, max_size=4) | json_values,
    "temperature": st.floats(allow_nan=False) | json_values,
    "top_p": st.floats(allow_nan=False) | json_values,
    "max_tokens": st.integers(min_value=-5, max_value=2**64) | json_values,
    "max_completion_tokens": st.integers(min_value=-5, max_value=2**64),
    "n": st.integers(min_value=-2, max_value=40) | json_values,
    "stop": json_values,
    "seed": st.integers(min_value=-(2**70), max_value=2**70) | json_values,
    "stream": st.booleans() | json_values,
    "stream_options": json_values,
    "metadata": json_values | st.dictionaries(st.just("ttc_tier"), text, max_size=1),
    "reasoning_effort": st.sampled_from(["low", "high", "extreme"]) | json_values,
    "system": json_values,
    "thinking": json_values,
    "stop_sequences": json_values,
    "input": text | json_values,
}


def request_dicts(required: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid request with zero to three fields replaced by (often invalid) values."""
    return st.builds(
        lambda base, changes: {**base, **changes},
        st.just(required),
        st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), max_size=3).flatmap(
            lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys})),
    )


VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "ttc-auto",
                             "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {"model": "ttc-auto", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "hi"}]},
    "/v1/route": {"input": "hi"},
}


# -- in-process -------------------------------------------------------------------------------


@FAST
@given(doc=json_values | request_dicts(VALID["/v1/chat/completions"]))
def test_chat_model_parses_or_rejects_cleanly(doc: Any) -> None:
    try:
        req = ChatCompletionRequest.model_validate(doc)
    except ValidationError:
        return
    messages = req.to_messages()
    assert len(messages) == len(req.messages) >= 1
    for parsed, raw in zip(messages, req.messages, strict=True):
        assert parsed.role in {"system", "user", "assistant"}
        assert parsed.content == raw.text()
    assert req.token_limit() is None or req.token_limit() >= 1  # type: ignore[operator]


@FAST
@given(doc=json_values | request_dicts(VALID["/v1/messages"]))
def test_messages_model_parses_or_rejects_cleanly(doc: Any) -> None:
    try:
        req = MessagesRequest.model_validate(doc)
    except ValidationError:
        return
    messages = req.to_messages()
    assert len(messages) == len(req.messages) + (1 if req.system else 0)
    assert req.max_tokens >= 1


@FAST
@given(doc=json_values | request_dicts(VALID["/v1/route"]))
def test_route_model_parses_or_rejects_cleanly(doc: Any) -> None:
    try:
        req = RouteRequest.model_validate(doc)
    except ValidationError:
        return
    assert req.to_messages()


@FAST
@given(parts=st.lists(st.text(max_size=30), min_size=1, max_size=4),
       role=st.sampled_from(["system", "developer", "user", "assistant"]))
def test_content_parts_join_losslessly(parts: list[str], role: str) -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "ttc-auto",
         "messages": [{"role": role, "content": [{"type": "text", "text": p} for p in parts]}]})
    (msg,) = req.to_messages()
    assert msg.content == "".join(parts)
    assert msg.role == ("system" if role == "developer" else role)


# -- over HTTP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def router(
    resilience_stub: tuple[StubUpstream, str], redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("parsing")
    with start_router(tmp, policy_text(stub_url), redis_url, stub) as running:
        yield running


@pytest.fixture(scope="module")
def client(router: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router.url, timeout=30) as c:
        yield c


def check(path: str, resp: httpx.Response) -> None:
    assert resp.status_code < 500, (path, resp.status_code, resp.text[:400])
    if resp.status_code >= 400:
        assert_error_body(path, resp)


@pytest.mark.parametrize("path", PATHS)
def test_any_json_document_is_never_5xx(client: httpx.Client, path: str) -> None:
    @HTTP
    @given(doc=json_values)
    def run(doc: Any) -> None:
        check(path, client.post(path, content=json.dumps(doc),
                                headers={"content-type": "application/json"}))

    run()


@pytest.mark.parametrize("path", PATHS)
def test_mutated_valid_requests_are_never_5xx(client: httpx.Client, path: str) -> None:
    @settings(HTTP, max_examples=60)
    @given(doc=request_dicts(VALID[path]), hint=st.none() | st.text(max_size=12))
    def run(doc: dict[str, Any], hint: str | None) -> None:
        headers = {"content-type": "application/json"}
        if hint and hint.isascii() and hint.isprintable() and hint.strip() == hint:
            headers["x-ttc-tier"] = hint
        resp = client.post(path, content=json.dumps(doc), headers=headers)
        check(path, resp)

    run()


@settings(HTTP, max_examples=40)
@given(body=st.binary(max_size=300))
def test_any_bytes_are_never_5xx(client: httpx.Client, body: bytes) -> None:
    for path in PATHS:
        check(path, client.post(path, content=body, headers={"content-type": "application/json"}))
