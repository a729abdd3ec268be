"""One runtime per policy revision: built whole when a policy loads, swapped in one step on a
reload, and what a request took at its start stays its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.errors import PolicyError
from router.runtime import compile_runtime
from router.upstreams.scripted import ScriptedUpstream
from strategies.verifiers.llm_judge import JudgePRM
from tests.policies.samples import base_doc, load_doc


class NoMetrics:
    classifier_latency = fallbacks = fallback_latency = None


def test_compiled_runtime_holds_the_policys_clients_verifiers_and_fallback() -> None:
    doc = base_doc()
    doc["verifiers"]["judge"] = {"kind": "llm_judge", "model": "chat"}
    doc["classifier"] = {"fallback_model": "chat"}
    loaded = load_doc(doc)
    chat, raw = ScriptedUpstream(name="chat"), ScriptedUpstream(name="raw")
    rt = compile_runtime(loaded, {"chat": chat, "raw": raw}, NoMetrics())  # type: ignore[arg-type]
    assert rt.revision == loaded.revision and rt.upstream("chat") is chat
    judge = rt.verifier("judge")
    assert isinstance(judge, JudgePRM) and judge.upstream is chat and judge.model == "chat"
    assert rt.verifier("judge") is judge and rt.verifier(None) is None  # built once
    assert rt.fallback is not None and rt.fallback.upstream is chat
    with pytest.raises(PolicyError):
        rt.upstream("nope")
    with pytest.raises(PolicyError):
        rt.verifier("nope")
    with pytest.raises(TypeError):
        rt.verifiers["judge"] = None  # type: ignore[index]


POLICY = """
models:
  m:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: m
    capabilities: {{chat: true, completions: true, n: true}}
tiers:
  easy: {{strategy: greedy, model: m, max_tokens: {tokens}}}
  medium: {{strategy: greedy, model: m, max_tokens: 16}}
  hard: {{strategy: greedy, model: m, max_tokens: 16}}
  very_hard: {{strategy: greedy, model: m, max_tokens: 16}}
cache: {{enabled: false}}
"""


@pytest.fixture()
def service(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, ScriptedUpstream]]:
    from router.app import create_app
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(tokens=8))
    up = ScriptedUpstream(lambda r: "four")
    settings = Settings(policy_path=policy, redis_url=redis_url, data_dir=tmp_path,
                        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
                        admin_token="secret")
    app = create_app(settings, upstreams={"m": up}, classifier=FixedClassifier(Tier.EASY))
    with ServerThread(app) as server:
        yield server.url, policy, up


def test_a_reload_swaps_the_runtime(service: tuple[str, Path, ScriptedUpstream]) -> None:
    url, policy, up = service
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "2+2?"}]}
    first = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert first.status_code == 200 and up.requests[-1].max_tokens == 8
    policy.write_text(POLICY.format(tokens=12))
    r = httpx.post(f"{url}/admin/policy/reload", headers={"authorization": "Bearer secret"},
                   timeout=30)
    assert r.status_code == 200, r.text
    second = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert second.status_code == 200 and up.requests[-1].max_tokens == 12
    assert (second.headers["x-ttc-policy-revision"]
            != first.headers["x-ttc-policy-revision"])
