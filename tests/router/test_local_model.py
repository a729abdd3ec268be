"""End to end on the embedded defaults: the packaged policy, the packaged classifier and the
real local model (llama.cpp + Gemma 3 270M), driven by the official clients over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from bench.stub_upstream import ServerThread

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def local_router(
    redis_url: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from router.app import create_app
    from router.settings import Settings

    settings = Settings(
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=model_dir,
        local_parallel=8,
        local_ctx_per_slot=1024,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def test_ready_with_embedded_defaults(local_router: str) -> None:
    ready = httpx.get(f"{local_router}/readyz", timeout=10).json()
    assert ready["ready"] is True, ready
    assert ready["checks"]["classifier"]["kind"] == "EmbeddingClassifier"
    assert "local" in ready["checks"]["upstreams"]["models"]


def test_easy_question_greedy_and_streaming(local_router: str) -> None:
    client = openai.OpenAI(base_url=f"{local_router}/v1", api_key="unused", max_retries=0)
    # the default policy has no tenant keys: any key is the anonymous tenant
    raw = client.chat.completions.with_raw_response.create(
        model="ttc-easy",
        max_tokens=8,
        messages=[{"role": "user", "content": "Q: What is the capital of France?\nA:"}],
    )
    completion = raw.parse()
    assert raw.headers["x-ttc-tier"] == "easy" and raw.headers["x-ttc-strategy"] == "greedy"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="ttc-easy",
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Q: What colour is the sky?\nA:"}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_classified_request_runs_its_tier_strategy(local_router: str) -> None:
    client = openai.OpenAI(base_url=f"{local_router}/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="ttc-medium",
        max_tokens=6,
        messages=[{"role": "user", "content": "7+5=12\n3+4=7\n8+6="}],
    )
    ttc = raw.parse().model_extra["ttc"]  # type: ignore[index]
    assert raw.headers["x-ttc-strategy"] == ttc["strategy"] != "greedy"
    assert ttc["calls"] >= 1 and ttc["candidates"] >= 2


def test_anthropic_client_streams_from_local_model(local_router: str) -> None:
    client = anthropic.Anthropic(base_url=local_router, api_key="unused", max_retries=0)
    with client.messages.stream(
        model="ttc-easy",
        max_tokens=8,
        messages=[{"role": "user", "content": "Q: Name a fruit.\nA:"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and final.usage.output_tokens > 0
