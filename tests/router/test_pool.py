"""The upstream pool builds clients from policy model specs (real llama.cpp server over HTTP)."""

from __future__ import annotations

import pytest

from policies.schema import ModelSpec
from router.metrics import Metrics
from router.settings import Settings
from router.upstreams.base import GenerationRequest
from router.upstreams.pool import UpstreamPool

pytestmark = pytest.mark.model

PROMPT = "2+3=5\n4+4=8\n6+1="


@pytest.mark.parametrize("count", [False, True])
async def test_count_choice_tokens_counts_every_choice(
    local_model_server: object, count: bool
) -> None:
    # llama.cpp reports usage for the first of `n` choices only; the model spec's
    # `count_choice_tokens` makes the client count each choice from its logprobs
    spec = ModelSpec(
        provider="openai",
        base_url=local_model_server.base_url,  # type: ignore[attr-defined]
        model="local",
        capabilities={"chat": True, "completions": True, "n": True},
        count_choice_tokens=count,
    )
    pool = UpstreamPool(Settings(), Metrics())
    await pool.rebuild({"m": spec})
    try:
        gen = await pool.get("m").generate(
            GenerationRequest(prompt=PROMPT, n=4, max_tokens=6, temperature=1.0, seed=7)
        )
    finally:
        await pool.aclose()
    per_choice = [c.completion_tokens for c in gen.choices]
    if count:
        assert all(t > 0 for t in per_choice)
        assert gen.usage.completion_tokens == sum(per_choice)
    else:  # what the server reports: one choice's worth of tokens
        assert gen.usage.completion_tokens <= 6
