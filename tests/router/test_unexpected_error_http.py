"""Over HTTP: a bug inside the router (an exception no handler knows) answers 500 with an
OpenAI- or Anthropic-style body, and the client's connection stays usable.

Starlette's outermost middleware re-raises such an exception after its handler has answered,
and uvicorn then closes the connection; a client that reuses it for its next request (every
HTTP/1.1 client keeps connections alive) would see that request fail as well. The request
context middleware answers it instead, so only the request that met the bug fails."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bench.stub_upstream import ServerThread
from classifier.base import TierScores
from router.upstreams.scripted import ScriptedUpstream

POLICY = """
models:
  gen:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: g
    capabilities: {chat: true, completions: true}
tiers:
  easy: {strategy: greedy, model: gen, max_tokens: 16}
  medium: {strategy: greedy, model: gen, max_tokens: 16}
  hard: {strategy: greedy, model: gen, max_tokens: 16}
  very_hard: {strategy: greedy, model: gen, max_tokens: 16}
"""


class Broken:
    """A classifier with a bug: every call raises an exception nothing in the router expects."""

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        raise ZeroDivisionError("a bug")

    def describe(self) -> dict[str, Any]:
        return {"backend": "broken"}


@pytest.fixture
def url(redis_url: str, tmp_path: Path) -> Iterator[str]:
    from router.app import create_app
    from router.settings import Settings

    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    settings = Settings(policy_path=path, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:")
    gen = ScriptedUpstream(lambda r: "four", name="gen")
    app = create_app(settings, upstreams={"gen": gen}, classifier=Broken())
    with ServerThread(app) as server:
        yield server.url


def post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]
         ) -> tuple[int, dict[str, str], Any]:
    conn.request("POST", path, body=json.dumps(body),
                 headers={"content-type": "application/json", "x-request-id": "req-bug-1"})
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())


@pytest.mark.parametrize("path,body,shape", [
    ("/v1/chat/completions",
     {"model": "ttc-auto", "messages": [{"role": "user", "content": "hi"}]}, "openai"),
    ("/v1/messages",
     {"model": "ttc-auto", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
     "anthropic"),
])
def test_a_bug_answers_500_and_keeps_the_connection(
    url: str, path: str, body: dict[str, Any], shape: str
) -> None:
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, headers, payload = post(conn, path, body)
        assert status == 500
        assert headers["x-request-id"] == "req-bug-1"
        if shape == "openai":
            assert payload["error"]["type"] == "internal_error"
            assert "router logs" in payload["error"]["message"]
        else:
            assert payload["type"] == "error"
            assert payload["error"]["type"] == "api_error"
        sock = conn.sock
        assert sock is not None
        # the same connection answers the next request (http.client would reconnect silently
        # if the server had closed it, so the socket object is compared as well)
        status2, _, payload2 = post(conn, path, {"model": "ttc-auto"})
        assert conn.sock is sock
        assert status2 == 400, payload2
    finally:
        conn.close()
