"""The OpenAI-compatible upstream over both SDK transports: same answers, same error mapping.

Real servers on loopback: the zero-latency stub, a slow stub, a socket that closes every
connection without answering, and a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from router.errors import UpstreamTimeout
from router.upstreams.base import GenerationRequest, Message
from router.upstreams.openai_compat import OpenAICompatUpstream, Transport
from router.upstreams.retry import Retryable

TRANSPORTS: list[Transport] = ["aiohttp", "httpx"]
REQUEST = GenerationRequest(messages=(Message("user", "What is 2 + 2?"),), max_tokens=16)


@contextlib.contextmanager
def dropping_server() -> Iterator[str]:
    """Reads each request and closes the connection without a response."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(1.0)
                conn.recv(65536)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        stop.set()
        t.join(2)
        sock.close()


def upstream(url: str, transport: Transport, timeout_s: float = 5.0) -> OpenAICompatUpstream:
    return OpenAICompatUpstream(
        "u", base_url=url, model="stub", transport=transport, timeout_s=timeout_s,
        max_retries=0,
    )


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with ServerThread(StubUpstream()) as s:
        yield f"{s.url}/v1"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_both_transports_return_the_same_generation(stub: str, transport: Transport) -> None:
    up = upstream(stub, transport)
    try:
        gen = await up.generate(REQUEST)
        deltas = [d async for d in up.stream(REQUEST)]
    finally:
        await up.aclose()
    assert gen.choices[0].text == "The answer is 42." and gen.usage.calls == 1
    assert "".join(d.text for d in deltas) == "The answer is 42."
    assert deltas[-1].finish_reason == "stop"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_dropped_connection_is_unreachable_not_a_timeout(transport: Transport) -> None:
    with dropping_server() as url:
        up = upstream(url, transport)
        try:
            with pytest.raises(Retryable, match="unreachable"):
                await up.generate(REQUEST)
        finally:
            await up.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_connection_is_unreachable(transport: Transport) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    up = upstream(f"http://127.0.0.1:{port}/v1", transport)
    try:
        with pytest.raises(Retryable, match="unreachable"):
            await up.generate(REQUEST)
    finally:
        await up.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_slow_upstream_is_a_timeout(transport: Transport) -> None:
    with ServerThread(StubUpstream(delay_s=2.0)) as s:
        up = upstream(f"{s.url}/v1", transport, timeout_s=0.3)
        try:
            with pytest.raises(UpstreamTimeout):
                await up.generate(REQUEST)
        finally:
            await up.aclose()


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="aiohttp, httpx"):
        upstream("http://127.0.0.1:9/v1", "curl")  # type: ignore[arg-type]
