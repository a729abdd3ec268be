"""The HTTP API through the official clients, against the stub upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.router.conftest import ACME_KEY, TIGHT_KEY, Running


def client(r: Running, key: str = ACME_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{r.url}/v1", api_key=key, max_retries=0)


def test_chat_completion_with_openai_client(router_server: Running) -> None:
    raw = client(router_server).chat.completions.with_raw_response.create(
        model="ttc-auto",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 6 x 7?"},
        ],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "The answer is 42."
    assert completion.usage is not None and completion.usage.prompt_tokens == 10
    h = raw.headers
    assert h["x-ttc-tier"] == "medium" and h["x-ttc-strategy"] == "greedy"
    assert float(h["x-ttc-confidence"]) == 1.0
    assert float(h["x-ttc-overhead-ms"]) >= 0 and h["x-request-id"]
    # 10 prompt tokens at $1/M + 4 completion tokens at $2/M
    assert float(h["x-ttc-cost-usd"]) == pytest.approx(18e-6)
    ttc = completion.model_extra["ttc"]  # type: ignore[index]
    assert ttc["tier"] == "medium" and ttc["calls"] == 1 and ttc["candidates"] == 1


def test_content_parts_and_developer_role(router_server: Running) -> None:
    before = len(router_server.stub.bodies)
    client(router_server).chat.completions.create(
        model="ttc-auto",
        messages=[
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one "},
                    {"type": "text", "text": "part two"},
                ],
            },
        ],
        temperature=0.3,
        seed=7,
    )
    sent = router_server.stub.bodies[before]
    assert sent["messages"] == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "part one part two"},
    ]
    assert sent["temperature"] == 0.3 and sent["seed"] == 7


def test_streaming_chat_streams_tokens_and_usage(router_server: Running) -> None:
    stream = client(router_server).chat.completions.create(
        model="ttc-auto",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        for c in chunk.choices:
            pieces.append(c.delta.content or "")
            finish = c.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) == "The answer is 42."
    assert len([p for p in pieces if p]) == 4  # word by word, as the upstream sent them
    assert finish == "stop" and usage is not None and usage.completion_tokens == 4


def test_n_choices(router_server: Running) -> None:
    completion = client(router_server).chat.completions.create(
        model="ttc-auto", messages=[{"role": "user", "content": "two please"}], n=2
    )
    assert [c.index for c in completion.choices] == [0, 1]


def test_anthropic_messages(router_server: Running) -> None:
    c = anthropic.Anthropic(base_url=router_server.url, api_key=ACME_KEY, max_retries=0)
    message = c.messages.create(
        model="ttc-auto",
        max_tokens=32,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is 6 x 7?"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "The answer is 42."
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 10
    with c.messages.stream(
        model="ttc-auto", max_tokens=32, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "The answer is 42." and final.usage.output_tokens == 4


def test_models_route_health_metrics(router_server: Running) -> None:
    ids = [m.id for m in client(router_server).models.list()]
    assert "ttc-auto" in ids and "stub" in ids and "ttc-very-hard" in ids
    r = httpx.post(f"{router_server.url}/v1/route", json={"input": "What is 2+2?"})
    body = r.json()
    assert r.status_code == 200 and body["tier"] == "medium" and body["strategy"] == "greedy"
    assert body["estimated_worst_case_usd"] > 0 and r.headers["x-ttc-tier"] == "medium"
    assert httpx.get(f"{router_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{router_server.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"]["ok"] is True
    metrics = httpx.get(f"{router_server.url}/metrics").text
    assert 'ttc_requests_total{endpoint="chat"' in metrics
    assert "ttc_overhead_seconds_bucket" in metrics


def test_cache_hit_on_repeat(router_server: Running) -> None:
    messages = [{"role": "user", "content": "cache me: what is the capital of France?"}]
    first = client(router_server).chat.completions.with_raw_response.create(
        model="ttc-auto", messages=messages
    )
    calls = router_server.stub.requests
    second = client(router_server).chat.completions.with_raw_response.create(
        model="ttc-auto", messages=messages
    )
    assert first.headers["x-ttc-cache"] == "miss" and second.headers["x-ttc-cache"] == "hit"
    assert router_server.stub.requests == calls  # served without calling the upstream
    assert second.parse().choices[0].message.content == "The answer is 42."
    assert float(second.headers["x-ttc-cost-usd"]) == 0.0


def test_several_choices_are_not_cached_by_default(router_server: Running) -> None:
    # n > 1 at temperature 0 is still a sampled result: `cache_sampled` is off in this policy
    messages = [{"role": "user", "content": "cache me not: name two colours"}]
    create = client(router_server).chat.completions.with_raw_response.create
    first = create(model="ttc-auto", messages=messages, n=2, temperature=0)
    calls = router_server.stub.requests
    second = create(model="ttc-auto", messages=messages, n=2, temperature=0)
    assert first.headers["x-ttc-cache"] == second.headers["x-ttc-cache"] == "bypass"
    assert router_server.stub.requests > calls


def test_tenant_key_and_tier_hint(router_server: Running) -> None:
    acme = client(router_server, ACME_KEY)
    raw = acme.chat.completions.with_raw_response.create(
        model="ttc-auto",
        messages=[{"role": "user", "content": "hint me"}],
        extra_headers={"x-ttc-tier": "very_hard"},
    )
    assert raw.headers["x-ttc-tier"] == "hard"  # the hint cannot exceed acme's max_tier
    with pytest.raises(openai.AuthenticationError) as err:
        client(router_server, "sk-wrong").chat.completions.create(
            model="ttc-auto", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.status_code == 401
    assert "sk-wrong" not in err.value.response.text


def test_budget_reject_is_429_with_remaining(router_server: Running) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        client(router_server, TIGHT_KEY).chat.completions.create(
            model="ttc-auto", messages=[{"role": "user", "content": "too expensive"}]
        )
    assert err.value.status_code == 429
    body = err.value.response.json()["error"]
    assert body["type"] == "budget_exceeded" and "x-ttc-budget-remaining" in {
        k.lower() for k in err.value.response.headers
    }
