"""A running router (uvicorn on loopback) in front of the stub upstream, per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from classifier.base import FixedClassifier, Tier

STUB_POLICY = """
models:
  stub:
    provider: openai
    base_url: {base}/v1
    model: stub
    capabilities: {{chat: true, completions: true, n: true}}
    price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
    timeout_s: {timeout}
    max_retries: 2
tiers:
  easy: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: 10}}
  medium: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: 10}}
  hard: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: 10}}
  very_hard: {{strategy: greedy, model: stub, max_tokens: 64, deadline_s: 10}}
budgets: {{on_exceeded: {on_exceeded}}}
tenants:
  acme:
    api_key_sha256: ["{acme_hash}"]
    allow_tier_hint: true
    max_tier: hard
  tight:
    api_key_sha256: ["{tight_hash}"]
    daily_usd: 0.0000001
anonymous_tenant: {anonymous}
cache: {{enabled: true, ttl_s: 60}}
"""

ACME_KEY = "sk-acme-test-key"
TIGHT_KEY = "sk-tight-test-key"


def sha(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Running:
    url: str
    stub: StubUpstream
    app: Any
    policy_path: Path

    @property
    def state(self) -> Any:
        return self.app.state.ttc


def write_policy(path: Path, stub_url: str, **overrides: Any) -> Path:
    values = {
        "base": stub_url,
        "timeout": 2,
        "on_exceeded": "reject",
        "anonymous": "default",
        "acme_hash": sha(ACME_KEY),
        "tight_hash": sha(TIGHT_KEY),
    }
    values.update(overrides)
    path.write_text(STUB_POLICY.format(**values))
    return path


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[StubUpstream, str]]:
    app = StubUpstream()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture(scope="module")
def router_server(
    stub: tuple[StubUpstream, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    from router.app import create_app
    from router.settings import Settings

    stub_app, stub_url = stub
    tmp = tmp_path_factory.mktemp("router")
    policy = write_policy(tmp / "policy.yaml", stub_url)
    settings = Settings(
        policy_path=policy,
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp,
        max_body_bytes=64 * 1024,
        admin_token="admin-secret",  # type: ignore[arg-type]
    )
    app = create_app(settings, classifier=FixedClassifier(Tier.MEDIUM))
    with ServerThread(app) as server:
        yield Running(server.url, stub_app, app, policy)
