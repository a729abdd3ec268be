"""Upstream faults: retries where safe, clean 502/504 bodies, well-formed stream errors,
search strategies that lose samples, and spend that is neither lost nor double-counted."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from bench.stub_upstream import StubUpstream
from tests.resilience.conftest import (
    PAYER_KEY,
    DroppingServer,
    assert_error_body,
    budget_view,
    control,
    policy_text,
    sse_events,
    start_router,
)
from tests.router.conftest import Running

PAYER = {"authorization": f"Bearer {PAYER_KEY}"}


@pytest.fixture(scope="module")
def dropper() -> Iterator[DroppingServer]:
    with DroppingServer() as server:
        yield server


@pytest.fixture(scope="module")
def router(
    resilience_stub: tuple[StubUpstream, str], dropper: DroppingServer, redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("faults")
    with start_router(tmp, policy_text(stub_url, dropper.url), redis_url, stub) as running:
        yield running


@pytest.fixture(autouse=True)
def _clear_faults(resilience_stub: tuple[StubUpstream, str]) -> Iterator[None]:
    yield
    control(resilience_stub[0], "ok", 0)


def body(text: str | None = None, **extra: Any) -> dict[str, Any]:
    content = text or f"question {uuid.uuid4().hex}"  # unique: never a cache hit
    return {"model": "ttc-auto", "messages": [{"role": "user", "content": content}], **extra}


def chat(r: Running, tier: str = "medium", path: str = "/v1/chat/completions",
         **extra: Any) -> httpx.Response:
    payload = body(**extra)
    if path == "/v1/messages":
        payload["max_tokens"] = 32
    return httpx.post(f"{r.url}{path}", json=payload, headers={**PAYER, "x-ttc-tier": tier},
                      timeout=60)


def stream(r: Running, tier: str = "medium", path: str = "/v1/chat/completions",
           timeout: float = 60) -> tuple[httpx.Response, list[tuple[str | None, str]], float]:
    payload = body(stream=True)
    if path == "/v1/messages":
        payload["max_tokens"] = 32
    began = time.perf_counter()
    with httpx.stream("POST", f"{r.url}{path}", json=payload, timeout=timeout,
                      headers={**PAYER, "x-ttc-tier": tier}) as resp:
        text = resp.read().decode()
    return resp, sse_events(text), time.perf_counter() - began


def retries(r: Running) -> float:
    metrics = httpx.get(f"{r.url}/metrics", timeout=10).text
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("ttc_upstream_calls_total{") and 'outcome="retry"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- non-streaming: retry, then a clean error ------------------------------------------------


def test_transient_500s_are_retried_with_backoff(router: Running) -> None:
    control(router.stub, "error500", count=2)
    before, retried = router.stub.requests, retries(router)
    began = time.perf_counter()
    resp = chat(router)
    assert resp.status_code == 200, resp.text
    assert router.stub.requests - before == 3  # two failures, then the answer
    assert retries(router) - retried == 2
    assert time.perf_counter() - began >= 0.25  # exponential backoff, 0.25 s initial


def test_429_retry_after_is_honoured(router: Running) -> None:
    control(router.stub, "error429", count=1, retry_after="1")
    began = time.perf_counter()
    resp = chat(router)
    assert resp.status_code == 200, resp.text
    assert time.perf_counter() - began >= 1.0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_persistent_429_is_a_clean_502(router: Running, path: str) -> None:
    control(router.stub, "error429", count=3)
    before = router.stub.requests
    resp = chat(router, path=path)
    assert resp.status_code == 502, resp.text
    err = assert_error_body(path, resp)
    assert "429" in err["message"]
    assert router.stub.requests - before == 3  # 1 try + max_retries 2, then give up
    assert resp.headers["x-request-id"]


def test_uvicorn_500_on_a_dropped_handler_is_retried(router: Running) -> None:
    control(router.stub, "drop", count=1)
    assert chat(router).status_code == 200


def test_dropped_connection_is_retried_then_502(router: Running, dropper: DroppingServer) -> None:
    before = dropper.connections
    resp = chat(router, tier="easy")  # the easy tier's model closes every connection
    assert resp.status_code == 502, resp.text
    err = assert_error_body("/v1/chat/completions", resp)
    assert err["type"] == "upstream_error" and "unreachable" in err["message"]
    assert dropper.connections - before == 2  # 1 try + max_retries 1


def test_malformed_json_is_a_clean_502(router: Running) -> None:
    control(router.stub, "malformed", count=1)
    resp = chat(router, path="/v1/messages")
    assert resp.status_code == 502, resp.text
    assert "malformed" in assert_error_body("/v1/messages", resp)["message"]


# -- streaming: an error event, never a hung connection -------------------------------------


def test_cut_stream_ends_with_an_error_event(router: Running) -> None:
    control(router.stub, "cut_stream", count=1)
    resp, events, _ = stream(router)
    assert resp.status_code == 200
    datas = [d for _, d in events]
    assert datas[-1] == "[DONE]"
    error = json.loads(datas[-2])
    assert error["error"]["type"] == "upstream_error" and error["error"]["message"]
    content = "".join(
        (json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for d in datas[:-2]
    )
    assert content == "The answer"  # the half the upstream sent before it cut
    assert not any('"finish_reason": "stop"' in d for d in datas)


def test_cut_stream_raises_in_the_openai_client(router: Running) -> None:
    control(router.stub, "cut_stream", count=1)
    client = openai.OpenAI(base_url=f"{router.url}/v1", api_key=PAYER_KEY, max_retries=0)
    chunks = client.chat.completions.create(
        model="ttc-auto", stream=True, messages=[{"role": "user", "content": uuid.uuid4().hex}])
    with pytest.raises(openai.APIError) as err:
        for _ in chunks:
            pass
    assert "upstream" in str(err.value)


def test_cut_anthropic_stream_ends_with_an_error_event(router: Running) -> None:
    control(router.stub, "cut_stream", count=1)
    resp, events, _ = stream(router, path="/v1/messages")
    assert resp.status_code == 200
    name, data = events[-1]
    assert name == "error"
    error = json.loads(data)
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "message_stop" not in [n for n, _ in events]


@pytest.mark.parametrize("fault", ["hang", "stall_stream"])
def test_stalled_stream_times_out_with_an_error_event(router: Running, fault: str) -> None:
    control(router.stub, fault, count=1)
    resp, events, seconds = stream(router, timeout=30)
    assert resp.status_code == 200
    assert events[-1][1] == "[DONE]"
    error = json.loads(events[-2][1])["error"]
    assert error["type"] in {"upstream_timeout", "upstream_error"}, error
    assert seconds < 2 * 3 + 5  # the 2 s upstream timeout, not the stub's hour


# -- search strategies that lose samples --------------------------------------------------------


@pytest.mark.parametrize(("tier", "after"), [("hard", 1), ("very_hard", 3)])
def test_search_that_loses_samples_still_answers(router: Running, tier: str, after: int) -> None:
    # hard: self_consistency, round 1 (one call, n=2) answers, round 2 fails after retries.
    # very_hard: best_of_n over an upstream without `n`: 4 calls, 3 answer, 1 fails 3 times.
    control(router.stub, "error500", count=3, after=after)
    resp = chat(router, tier=tier)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["choices"][0]["message"]["content"] == "The answer is 42."
    assert any("fail" in note or "lost" in note for note in data["ttc"]["notes"]), data["ttc"]


def test_search_strategies_answer_without_faults(router: Running) -> None:
    for tier, calls in (("hard", 2), ("very_hard", 4)):
        resp = chat(router, tier=tier)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-ttc-tier"] == tier
        assert resp.json()["ttc"]["calls"] == calls


# -- spend accounting ---------------------------------------------------------------------------


def _cost_of_stream(events: list[tuple[str | None, str]]) -> float:
    for _, data in events:
        if data.startswith("{") and '"ttc"' in data:
            return float(json.loads(data)["ttc"]["cost_usd"])
    return 0.0


def test_no_spend_lost_or_double_counted_after_faults(router: Running) -> None:
    before = budget_view(router.url, "payer")["day"]
    charged = 0.0
    statuses: list[int] = []
    faults = [
        ("ok", 0, "medium"), ("error500", 1, "medium"), ("error429", 1, "medium"),
        ("error500", 3, "medium"), ("hang", 1, "medium"), ("malformed", 1, "medium"),
        ("drop", 1, "medium"), ("ok", 0, "easy"), ("ok", 0, "hard"), ("ok", 0, "very_hard"),
        ("error500", 1, "hard"),
    ]
    for fault, count, tier in faults:
        control(router.stub, fault, count=count)
        resp = chat(router, tier=tier)
        statuses.append(resp.status_code)
        if resp.status_code == 200:
            charged += float(resp.headers["x-ttc-cost-usd"])
    for fault in ("ok", "cut_stream", "stall_stream", "hang"):
        control(router.stub, fault, count=1)
        _, events, _ = stream(router)
        charged += _cost_of_stream(events)
    assert statuses == [200, 200, 200, 502, 504, 502, 200, 502, 200, 200, 200]
    after = budget_view(router.url, "payer")["day"]
    assert after["reserved_usd"] == 0 and after["reserved_tokens"] == 0, after
    assert after["usd"] - before["usd"] == pytest.approx(charged, abs=1e-6)
    assert charged > 0


def _after_the_bill(url: str, before: dict[str, Any]) -> dict[str, Any]:
    """The payer's day once nothing is reserved and spend has moved past `before` (or 8 s)."""
    deadline = time.monotonic() + 8
    after = before
    while time.monotonic() < deadline:
        after = budget_view(url, "payer")["day"]
        if after["reserved_usd"] == 0 and after["usd"] > before["usd"]:
            break
        time.sleep(0.25)
    return after


def _final_ttc(text: str) -> dict[str, Any]:
    """The `ttc` object of a stream's final chunk."""
    return dict(next(json.loads(d)["ttc"] for _, d in sse_events(text)
                     if d.startswith("{") and '"ttc"' in d))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_client_disconnect_mid_stream_bills_what_was_streamed(router: Running, path: str
                                                             ) -> None:
    """A client that hangs up after the first tokens is billed for them (an estimate: the
    upstream reported no usage), and the rest of the reservation is let go."""
    before = budget_view(router.url, "payer")["day"]
    control(router.stub, "stall_stream", count=1)
    payload = body(stream=True)
    if path == "/v1/messages":
        payload["max_tokens"] = 32
    with httpx.stream("POST", f"{router.url}{path}", json=payload,
                      headers=PAYER, timeout=30) as resp:
        for line in resp.iter_lines():
            if "The" in line:
                break  # got the first token: hang up
    after = _after_the_bill(router.url, before)
    assert after["reserved_usd"] == 0
    assert after["usd"] > before["usd"] and after["tokens"] > before["tokens"], (before, after)


def test_client_leaving_a_search_bills_its_calls(router: Running) -> None:
    """A client that hangs up while a search runs (best-of-4, every call hanging upstream):
    the search is cancelled and its calls are billed their estimates, not released free."""
    before = budget_view(router.url, "payer")["day"]
    control(router.stub, "hang", count=4)
    with httpx.stream("POST", f"{router.url}/v1/chat/completions", json=body(stream=True),
                      headers={**PAYER, "x-ttc-tier": "very_hard"}, timeout=30) as resp:
        assert resp.headers["x-ttc-strategy"] == "best_of_n"
        for line in resp.iter_lines():
            if line.startswith("data:"):
                break  # the first chunk (the role): the search is running; hang up
    after = _after_the_bill(router.url, before)
    assert after["reserved_usd"] == 0
    # four calls cut: each its prompt estimate plus its full 64 max_tokens
    assert after["tokens"] - before["tokens"] >= 4 * 64, (before, after)
    assert after["usd"] > before["usd"]


def test_stream_the_deadline_cut_before_any_token_bills_its_prompt(
    resilience_stub: tuple[StubUpstream, str], dropper: DroppingServer, redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The deadline (1 s, under the upstream's 5 s timeout) cuts a stream before any token:
    the error event says so, and what the stream settled (the prompt's estimate, as the
    same request unstreamed is billed) stays billed: the reservation is not released over it."""
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("deadline")
    policy = policy_text(stub_url, dropper.url, deadline=1, timeout=5)
    with start_router(tmp, policy, redis_url, stub) as running:
        before = budget_view(running.url, "payer")["day"]
        control(stub, "hang", count=1)
        resp, events, _ = stream(running)
        assert resp.status_code == 200
        error = json.loads(events[-2][1])["error"]
        assert error["code"] == "deadline_exceeded", error
        after = _after_the_bill(running.url, before)
        assert after["reserved_usd"] == 0
        assert after["usd"] > before["usd"] and after["tokens"] > before["tokens"]


def test_stream_the_deadline_cut_logs_its_estimated_call(
    resilience_stub: tuple[StubUpstream, str], dropper: DroppingServer, redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A stream the deadline cut after some tokens, before the upstream reported usage: its
    call is in the call log as an estimate, and the log still sums to the billed cost."""
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("deadline-log")
    policy = policy_text(stub_url, dropper.url, deadline=1, timeout=5)
    with start_router(tmp, policy, redis_url, stub) as running:
        control(stub, "stall_stream", count=1)
        with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body(stream=True),
                          headers={**PAYER, "x-ttc-tier": "medium", "x-ttc-trace": "1"},
                          timeout=30) as resp:
            text = resp.read().decode()
    ttc = _final_ttc(text)
    assert ttc["stopped"] == "deadline", ttc
    log = ttc["call_log"]
    assert [(c["stage"], c["estimated"]) for c in log] == [("generation", True)], log
    assert log[0]["completion_tokens"] > 0
    assert sum(c["cost_usd"] for c in log) == pytest.approx(ttc["cost_usd"], abs=1e-12)


def test_traced_token_stream_carries_its_call_log(router: Running) -> None:
    with httpx.stream("POST", f"{router.url}/v1/chat/completions", json=body(stream=True),
                      headers={**PAYER, "x-ttc-tier": "medium", "x-ttc-trace": "1"},
                      timeout=30) as resp:
        text = resp.read().decode()
    ttc = _final_ttc(text)
    log = ttc["call_log"]
    assert [(c["stage"], c["estimated"]) for c in log] == [("generation", False)], log
    assert ttc["trace"][0]["streamed_pieces"] > 0
    assert log[0]["cost_usd"] == pytest.approx(ttc["cost_usd"], abs=1e-12) and ttc["cost_usd"] > 0
