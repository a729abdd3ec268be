"""One runtime per policy revision: built whole when a policy loads, swapped in one step on a
reload, and what a request took at its start stays its own."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.calllog import Logged
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
    # each client is wrapped for the call log, with the stage that calls it
    generation = rt.upstream("chat")
    assert rt.revision == loaded.revision and isinstance(generation, Logged)
    assert generation.inner is chat and generation.name == "chat"
    judge = rt.verifier("judge")
    assert isinstance(judge, JudgePRM) and judge.model == "chat"
    assert isinstance(judge.upstream, Logged) and judge.upstream.inner is chat
    assert rt.verifier("judge") is judge and rt.verifier(None) is None  # built once
    assert rt.fallback is not None and isinstance(rt.fallback.upstream, Logged)
    assert rt.fallback.upstream.inner is chat
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
                        admin_token="secret", local_model_path=tmp_path / "missing.gguf")
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


# The new policy validates (a `local` model needs nothing more in the policy) but its runtime
# cannot be built: the configured GGUF (TTC_LOCAL_MODEL_PATH) does not exist.
def test_a_policy_whose_runtime_cannot_be_built_is_refused(
    service: tuple[str, Path, ScriptedUpstream],
) -> None:
    url, policy, up = service
    admin = {"authorization": "Bearer secret"}
    body = {"model": "ttc-auto", "messages": [{"role": "user", "content": "2+2?"}]}
    before = httpx.get(f"{url}/admin/policy", headers=admin, timeout=30).json()
    policy.write_text(POLICY.format(tokens=12).replace(
        "models:\n", "models:\n  extra: {provider: local, model: gemma}\n", 1))
    r = httpx.post(f"{url}/admin/policy/reload", headers=admin, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["revision"] == before["revision"]
    assert "local model file not found" in r.json()["error"]["message"]

    after = httpx.get(f"{url}/admin/policy", headers=admin, timeout=30).json()
    assert after["revision"] == before["revision"]  # the reported revision stays the old one
    assert "runtime" in after["last_error"] and "missing.gguf" in after["last_error"]
    assert "extra" not in after["policy"]["models"]
    ready = httpx.get(f"{url}/readyz", timeout=30).json()
    detail = ready.get("checks", ready)["policy"]
    assert detail["revision"] == before["revision"]
    assert detail["last_reload_error"] == after["last_error"]
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    # (the file watcher may have tried the same file too: one refusal or two, never a swap)
    assert re.search(r'ttc_policy_reloads_total\{outcome="error"\} [12]\.0', metrics)
    assert not re.search(r'ttc_policy_reloads_total\{outcome="ok"\} [1-9]', metrics)
    assert f'ttc_policy_info{{revision="{before["revision"]}"}} 1.0' in metrics

    served = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert served.status_code == 200  # the old policy and its runtime keep serving
    assert served.headers["x-ttc-policy-revision"] == before["revision"]
    assert up.requests[-1].max_tokens == 8

    policy.write_text(POLICY.format(tokens=12))  # fixed: the next reload swaps both
    r = httpx.post(f"{url}/admin/policy/reload", headers=admin, timeout=30)
    assert r.status_code == 200 and r.json()["revision"] != before["revision"], r.text
    served = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert served.headers["x-ttc-policy-revision"] == r.json()["revision"]
    assert up.requests[-1].max_tokens == 12
    assert httpx.get(f"{url}/admin/policy", headers=admin, timeout=30).json()["last_error"] is None
