"""Hostile input: oversized (also chunked) bodies, deep nesting, invalid UTF-8, lone
surrogates, absurd numbers, thousands of messages. All rejected early with a 4xx whose body is
well formed; never a 5xx. (Plain 4xx cases are in tests/router/test_errors.py.)"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from bench.stub_upstream import StubUpstream
from tests.resilience.conftest import assert_error_body, policy_text, start_router
from tests.router.conftest import Running

PATHS = ["/v1/chat/completions", "/v1/messages", "/v1/route"]
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def router(
    resilience_stub: tuple[StubUpstream, str], redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("bad-input")
    with start_router(tmp, policy_text(stub_url), redis_url, stub, max_body_bytes=LIMIT) as r:
        yield r


def good(path: str, content: str = "hi") -> dict[str, object]:
    if path == "/v1/route":
        return {"input": content}
    body: dict[str, object] = {"model": "ttc-auto",
                               "messages": [{"role": "user", "content": content}]}
    if path == "/v1/messages":
        body["max_tokens"] = 16
    return body


def post_raw(r: Running, path: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{r.url}{path}", content=data, timeout=30,
                      headers={"content-type": "application/json"})


def send_chunked(r: Running, total: int) -> tuple[bytes, int]:
    """POST /v1/chat/completions with a chunked body (no Content-Length) of up to `total`
    bytes; stops sending as soon as the router answers. Returns (reply, bytes sent)."""
    host = urlparse(r.url)
    chunk = b"x" * 16384
    sent = 0
    with socket.create_connection((host.hostname, host.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        while sent < total:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                break
        sock.settimeout(10)
        reply = b""
        while True:
            try:
                part = sock.recv(65536)
            except OSError:
                break
            if not part:
                break
            reply += part
            head, _, payload = reply.partition(b"\r\n\r\n")
            length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")]
            if length and len(payload) >= int(length[0].split(b":")[1]):
                break
    return reply, sent


def test_chunked_oversized_body_is_refused_before_it_is_read(router: Running) -> None:
    """No Content-Length: the limit is enforced while reading; the router answers 4xx long
    before the client has sent its 32 MiB, so memory stays bounded."""
    reply, sent = send_chunked(router, 32 * 1024 * 1024)
    head, _, payload = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500, reply[:300]
    assert set(json.loads(payload)["error"]) == {"message", "type", "param", "code"}
    # It answered before the client got through its 32 MiB: what was sent beyond the limit sits
    # in the kernel's loopback socket buffers (a few MiB), not in the router.
    assert sent <= 8 * 1024 * 1024, sent


def test_chunked_oversized_body_is_413(router: Running) -> None:
    reply, _ = send_chunked(router, 1024 * 1024)
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:300]
    assert json.loads(payload)["error"]["code"] == "request_too_large"


@pytest.mark.parametrize("path", PATHS)
def test_deeply_nested_json_under_the_size_limit(router: Running, path: str) -> None:
    depth = 30_000  # 60 KB: under the body limit, far over the JSON parser's recursion limit
    doc = json.dumps(good(path))[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    assert len(doc) < LIMIT
    resp = post_raw(router, path, doc.encode())
    assert resp.status_code == 400, resp.text
    assert_error_body(path, resp)
    nested_content = json.dumps(good(path)).replace('"hi"', "[" * 5000 + "]" * 5000)
    resp = post_raw(router, path, nested_content.encode())
    assert resp.status_code == 400, resp.text
    assert_error_body(path, resp)
    assert httpx.get(f"{router.url}/healthz").status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_invalid_utf8_is_400(router: Running, path: str) -> None:
    doc = json.dumps(good(path, "CONTENT")).encode().replace(b"CONTENT", b"caf\xc3\x28 \xff\xfe")
    resp = post_raw(router, path, doc)
    assert resp.status_code == 400, resp.text
    assert_error_body(path, resp)


@pytest.mark.parametrize("path", PATHS[:2])
def test_lone_surrogates_are_400(router: Running, path: str) -> None:
    doc = json.dumps(good(path, "SURR")).replace("SURR", "\\ud800 and \\udfff " + uuid.uuid4().hex)
    resp = post_raw(router, path, doc.encode())
    assert resp.status_code == 400, resp.text
    assert "messages" in assert_error_body(path, resp)["message"]


def test_lone_surrogates_on_route_are_not_5xx(router: Running) -> None:
    doc = json.dumps(good("/v1/route", "SURR")).replace("SURR", "\\ud800 x")
    resp = post_raw(router, "/v1/route", doc.encode())
    assert resp.status_code < 500, resp.text


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/chat/completions", "n", 10**30),
        ("/v1/chat/completions", "n", 17),
        ("/v1/chat/completions", "max_tokens", 2**63),
        ("/v1/chat/completions", "max_completion_tokens", 10**30),
        ("/v1/chat/completions", "temperature", float("nan")),
        ("/v1/chat/completions", "top_p", float("inf")),
        ("/v1/chat/completions", "temperature", 1e308),
        ("/v1/messages", "max_tokens", 10**30),
        ("/v1/messages", "temperature", float("-inf")),
    ],
)
def test_absurd_numbers_are_400(router: Running, path: str, field: str, value: object) -> None:
    body = {**good(path), field: value}
    resp = post_raw(router, path, json.dumps(body).encode())  # NaN/Infinity as JSON literals
    assert resp.status_code == 400, resp.text
    err = assert_error_body(path, resp)
    assert field in err["message"] or err.get("param") == field, err


def test_huge_thinking_budget_is_capped_not_spent(router: Running) -> None:
    body = {**good("/v1/messages"), "thinking": {"type": "enabled", "budget_tokens": 10**30}}
    resp = post_raw(router, "/v1/messages", json.dumps(body).encode())
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert_error_body("/v1/messages", resp)


def test_oversized_header_values_are_harmless(router: Running) -> None:
    url = f"{router.url}/v1/chat/completions"
    resp = httpx.post(url, json=good(url), headers={"x-request-id": "r" * 4000}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert len(resp.headers["x-request-id"]) <= 128  # replaced, not echoed
    resp = httpx.post(url, json=good(url), headers={"authorization": "Bearer " + "k" * 8000})
    assert resp.status_code == 401
    assert "kkkk" not in assert_error_body(url, resp)["message"]


@pytest.fixture(scope="module")
def roomy_router(
    resilience_stub: tuple[StubUpstream, str], redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    """Default 4 MiB body limit, so message-count limits (not the size limit) are hit."""
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("roomy")
    with start_router(tmp, policy_text(stub_url), redis_url, stub,
                      max_body_bytes=4 * 1024 * 1024) as r:
        yield r


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_thousands_of_messages_rejected_early(roomy_router: Running, path: str) -> None:
    body = good(path)
    body["messages"] = [{"role": "user", "content": "x"}] * 20_000
    began = time.perf_counter()
    before = roomy_router.stub.requests
    resp = httpx.post(f"{roomy_router.url}{path}", json=body, timeout=60)
    assert resp.status_code == 400, resp.text
    assert "too many messages" in assert_error_body(path, resp)["message"]
    assert roomy_router.stub.requests == before  # never reached an upstream
    assert time.perf_counter() - began < 10


def test_route_applies_the_message_limit(roomy_router: Running) -> None:
    body = {"messages": [{"role": "user", "content": "x"}] * 20_000}
    resp = httpx.post(f"{roomy_router.url}/v1/route", json=body, timeout=60)
    assert resp.status_code == 400, resp.text
