"""`TTC_CLASSIFIER_BACKEND` through HTTP: /readyz and `classifier_source` name what runs (issue
11: they said "embedding" while the lexical backend ran), and the standalone `llm` backend asks
the policy's fallback model (the stub upstream, scripted)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread, StubUpstream
from tests.router.test_overrides import POLICY


def _serve(backend: str, policy: Path, redis_url: str) -> ServerThread:
    from router.app import create_app
    from router.settings import Settings

    settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=policy.parent,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
                        classifier_backend=backend)
    return ServerThread(create_app(settings))


@pytest.fixture(scope="module")
def stub_policy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, StubUpstream]]:
    stub = StubUpstream(answer="very_hard")
    with ServerThread(stub) as upstream:
        policy = tmp_path_factory.mktemp("backends") / "policy.yaml"
        policy.write_text(POLICY.format(base=upstream.url))
        yield policy, stub


def test_lexical_backend_is_named_as_lexical(
    stub_policy: tuple[Path, StubUpstream], redis_url: str
) -> None:
    with _serve("lexical", stub_policy[0], redis_url) as server:
        clf = httpx.get(f"{server.url}/readyz", timeout=10).json()["checks"]["classifier"]
        assert clf["backend"] == "lexical" and clf["embedding_model"] is None
        assert clf["task_head"] == "task-lexical.npz"
        body = httpx.post(f"{server.url}/v1/route", json={"input": "What is 2+2?"}).json()
        assert body["classifier_source"] == "lexical+rule:arithmetic" and body["tier"] == "easy"
        assert body["task"] == "maths"


def test_llm_backend_asks_the_fallback_model_for_every_query(
    stub_policy: tuple[Path, StubUpstream], redis_url: str
) -> None:
    policy, stub = stub_policy
    with _serve("llm", policy, redis_url) as server:
        clf = httpx.get(f"{server.url}/readyz", timeout=10).json()["checks"]["classifier"]
        assert clf["backend"] == "llm" and clf["llm_model"] == "stub"
        before = stub.requests
        text = f"Is {uuid.uuid4().hex} a palindrome?"
        body = httpx.post(f"{server.url}/v1/route", json={"input": text}).json()
        assert body["classifier_source"] == "llm" and body["tier"] == "very_hard"
        assert stub.requests == before + 1
        httpx.post(f"{server.url}/v1/route", json={"input": text})
        assert stub.requests == before + 1  # cached


def test_llm_backend_without_a_fallback_model_is_not_ready(
    stub_policy: tuple[Path, StubUpstream], redis_url: str, tmp_path: Path
) -> None:
    text = stub_policy[0].read_text().replace("fallback_model: stub, ", "")
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    with _serve("llm", policy, redis_url) as server:
        r = httpx.get(f"{server.url}/readyz", timeout=10)
        assert r.status_code == 503
        assert "needs classifier.fallback_model" in r.json()["checks"]["classifier"]["error"]
