"""Every error status, each with a body that names the problem; never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.router.conftest import Running

GOOD = {"model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]}


def post(
    r: Running, body: object, path: str = "/v1/chat/completions", **kw: object
) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(
            f"{r.url}{path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
            **kw,
        )  # type: ignore[arg-type]
    return httpx.post(f"{r.url}{path}", json=body, timeout=30, **kw)  # type: ignore[arg-type]


def error_of(resp: httpx.Response) -> dict[str, object]:
    body = resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "body", ""),
        ({**GOOD, "temperature": "hot"}, "temperature", "number"),
        ({**GOOD, "temperature": 5}, "temperature", "less than or equal"),
        ({**GOOD, "messages": []}, "messages", "at least 1"),
        ({"model": "ttc-auto"}, "messages", "required"),
        ({**GOOD, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", ""),
        (
            {**GOOD, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
            "",
        ),
        ({**GOOD, "n": 0}, "n", "greater than or equal"),
        ({**GOOD, "n": 10_000}, "n", "at most"),
        ({**GOOD, "max_tokens": 10**9}, "max_tokens", "at most"),
        ({**GOOD, "max_completion_tokens": 10**9}, "max_completion_tokens", "at most"),
        ({**GOOD, "stop": ["a", "b", "c", "d", "e"]}, "stop", "4 stop"),
        ({**GOOD, "stream": True, "n": 2}, "n", "n = 1"),
        ([1, 2, 3], "body", ""),
    ],
)
def test_bad_chat_requests_are_400_naming_the_field(
    router_server: Running, body: object, param: str, words: str
) -> None:
    resp = post(router_server, body)
    assert resp.status_code == 400, resp.text
    err = error_of(resp)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param or str(err["param"]).startswith(param), err
    assert words in str(err["message"])


def test_deeply_nested_json_is_400(router_server: Running) -> None:
    resp = post(router_server, b"[" * 100_000 + b"]" * 100_000)
    assert resp.status_code in (400, 413)
    error_of(resp)


def test_too_large_is_413(router_server: Running) -> None:
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 100_000}]}
    resp = post(router_server, big)
    assert resp.status_code == 413
    assert error_of(resp)["code"] == "request_too_large"


def test_too_many_messages_is_400(router_server: Running) -> None:
    many = {**GOOD, "messages": [{"role": "user", "content": "x"}] * 1001}
    resp = post(router_server, many)
    assert resp.status_code == 400 and error_of(resp)["param"] == "messages"


def test_unknown_model_is_404(router_server: Running) -> None:
    resp = post(router_server, {**GOOD, "model": "gpt-17"})
    assert resp.status_code == 404
    err = error_of(resp)
    assert err["param"] == "model" and "ttc-auto" in str(err["message"])


def test_unknown_route_and_bad_tier_hint(router_server: Running) -> None:
    resp = httpx.get(f"{router_server.url}/v1/nothing")
    assert resp.status_code == 404 and error_of(resp)["type"] == "not_found_error"
    resp = httpx.post(
        f"{router_server.url}/v1/chat/completions", json=GOOD, headers={"x-ttc-tier": "legendary"}
    )
    assert resp.status_code == 400 and error_of(resp)["param"] == "x-ttc-tier"


def test_anthropic_errors_use_anthropic_shape(router_server: Running) -> None:
    resp = post(router_server, {"model": "ttc-auto", "messages": []}, "/v1/messages")
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"] or "messages" in body["error"]["message"]


def test_upstream_500_after_retries_is_502(router_server: Running) -> None:
    stub = router_server.stub
    stub.fault, stub.fault_count = "error500", 3  # 1 try + 2 retries
    before = stub.requests
    resp = post(router_server, {**GOOD, "messages": [{"role": "user", "content": "fail 500"}]})
    assert resp.status_code == 502, resp.text
    assert error_of(resp)["type"] == "upstream_error"
    assert stub.requests - before == 3


def test_upstream_recovers_after_one_retry(router_server: Running) -> None:
    stub = router_server.stub
    stub.fault, stub.fault_count = "error429", 1
    resp = post(router_server, {**GOOD, "messages": [{"role": "user", "content": "retry 429"}]})
    assert resp.status_code == 200, resp.text


def test_upstream_hang_is_504(router_server: Running) -> None:
    stub = router_server.stub
    stub.fault, stub.fault_count = "hang", 1
    resp = post(router_server, {**GOOD, "messages": [{"role": "user", "content": "hang"}]})
    stub.fault_count = 0
    assert resp.status_code == 504, resp.text
    assert error_of(resp)["type"] == "upstream_timeout"


def test_malformed_upstream_json_is_502(router_server: Running) -> None:
    stub = router_server.stub
    stub.fault, stub.fault_count = "malformed", 3
    resp = post(router_server, {**GOOD, "messages": [{"role": "user", "content": "malformed"}]})
    stub.fault_count = 0
    assert resp.status_code == 502, resp.text
