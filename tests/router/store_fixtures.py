"""Fixtures for the state tests (store, budgets, cache, admin). Import them into a test module.

`store`: the shared test Redis (tests/conftest.py `redis_base_url`), DB 13, a fresh key prefix
per test; every key under that prefix is deleted afterwards (never FLUSHDB).
`private_redis`: a redis-server of our own on a free port that a test may stop and restart
(the shared one is never stopped).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from router.metrics import Metrics
from router.store import Store, make_client, redis_server_binary

TEST_DB = 13


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """A private redis-server that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ttc-test-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not answers(self.port):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture
def state_redis_url(redis_base_url: str) -> str:
    return f"{redis_base_url}/{TEST_DB}"


async def drop_prefix(store: Store) -> None:
    async for key in store.client.scan_iter(match=store.prefix + "*", count=500):
        await store.client.delete(key)


@pytest.fixture
async def store(state_redis_url: str) -> AsyncIterator[Store]:
    s = Store(make_client(state_redis_url), f"ttctest:{uuid.uuid4().hex[:12]}:")
    yield s
    await drop_prefix(s)
    await s.aclose()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
