"""`ttc-router serve --workers N`: N processes on one port, one Redis, one `/metrics`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from router.jsonfast import dumps, loads
from router.serve import prepare_metrics_dir

REPO = Path(__file__).resolve().parents[2]
POLICY = """
models:
  stub: {{provider: openai, base_url: "{stub}/v1", model: stub, capabilities: {{chat: true}},
          price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 16}}
  medium: {{strategy: greedy, model: stub, max_tokens: 16}}
  hard: {{strategy: greedy, model: stub, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: stub, max_tokens: 16}}
tenants:
  w: {{daily_usd: 100}}
anonymous_tenant: w
"""


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with ServerThread(StubUpstream()) as server:
        yield server.url


def test_two_workers_share_redis_and_metrics(
    stub_url: str, redis_url: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(stub=stub_url))
    metrics_dir = tmp_path / "metrics"
    port = _port()
    env = {
        **os.environ, "TTC_POLICY_PATH": str(policy), "TTC_REDIS_URL": redis_url,
        "TTC_REDIS_PREFIX": f"ttc-test-{uuid.uuid4().hex[:8]}:", "TTC_DATA_DIR": str(tmp_path),
        "TTC_LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "serve", "--workers", "2", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.3)
        total = 40
        for i in range(total):  # a fresh connection each: the kernel spreads them
            r = httpx.post(f"{url}/v1/chat/completions", json={
                "model": "ttc-auto", "messages": [{"role": "user", "content": f"q {i}"}]})
            assert r.status_code == 200, r.text
        pids = {int(m.group(1)) for f in metrics_dir.glob("*.db")
                if (m := re.search(r"_(\d+)\.db$", f.name))}
        assert len(pids) == 2  # both workers served and wrote their samples
        for _ in range(4):  # whichever worker answers /metrics reports both workers' counts
            text = httpx.get(f"{url}/metrics").text
            counts = re.findall(r'^ttc_requests_total\{[^}]*status="ok"[^}]*\} (\S+)$', text,
                                re.M)
            assert sum(float(c) for c in counts) == total
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics_dir_is_emptied_or_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "counter_1.db"
    stale.write_bytes(b"x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert prepare_metrics_dir() == tmp_path and not stale.exists()
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = prepare_metrics_dir()
    assert made.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
    made.rmdir()


def test_fast_json_matches_the_standard_library_on_odd_input() -> None:
    assert loads(dumps({"a": [1, 2.5, "é"]})) == {"a": [1, 2.5, "é"]}
    assert loads(b'{"s": "\\ud800"}') == {"s": "\ud800"}  # orjson refuses; json accepts
    assert loads(dumps({"s": "\ud800"})) == {"s": "\ud800"}
    with pytest.raises(ValueError):
        loads(b"{not json")
