"""Security: tenant isolation (cache, spend, admin views), the admin token, secrets and
prompts kept out of logs and responses, upstream URLs only from the policy, and tier hints
held under `max_tier`. The log checks read the stderr of a router running as its own process
at debug level."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from bench.stub_upstream import StubUpstream
from tests.conftest import REPO, _free_port
from tests.resilience.conftest import (
    ACME_KEY,
    ADMIN_TOKEN,
    LOWTIER_KEY,
    OTHER_KEY,
    PAYER_KEY,
    TIGHT_KEY,
    DroppingServer,
    assert_error_body,
    budget_view,
    control,
    policy_text,
    sse_events,
    start_router,
)

UPSTREAM_KEY = f"sk-upstream-{uuid.uuid4().hex}"
WRONG_KEY = f"sk-wrong-{uuid.uuid4().hex}"
WRONG_ADMIN = f"admin-wrong-{uuid.uuid4().hex}"
MARKER = f"PROMPT-MARKER-{uuid.uuid4().hex}"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Process:
    url: str
    stderr: Path
    stub: StubUpstream
    proc: subprocess.Popen[bytes]

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")


@pytest.fixture(scope="module")
def dropper() -> Iterator[DroppingServer]:
    with DroppingServer() as server:
        yield server


@pytest.fixture(scope="module")
def router_process(
    resilience_stub: tuple[StubUpstream, str], dropper: DroppingServer, redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Process]:
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("security")
    policy = tmp / "policy.yaml"
    policy.write_text(policy_text(stub_url, dropper.url))
    port = _free_port()
    env = {
        **os.environ, "TTC_PORT": str(port), "TTC_POLICY_PATH": str(policy),
        "TTC_REDIS_URL": redis_url, "TTC_REDIS_PREFIX": f"ttc-sec-{uuid.uuid4().hex[:8]}:",
        "TTC_DATA_DIR": str(tmp), "TTC_ADMIN_TOKEN": ADMIN_TOKEN, "TTC_LOG_LEVEL": "debug",
        "TTC_RESILIENCE_UPSTREAM_KEY": UPSTREAM_KEY, "HF_HUB_OFFLINE": "1",
    }
    env.pop("TTC_LOG_PROMPTS", None)
    stderr = tmp / "router.stderr"
    with stderr.open("wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "tests.resilience.serve_app"], env=env,
                                cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"router process did not start:\n{stderr.read_text()[-3000:]}")
        time.sleep(0.2)
    yield Process(url, stderr, stub, proc)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def chat(url: str, key: str | None, content: str, /, **extra: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers.update(extra.pop("headers", {}))
    return httpx.post(f"{url}/v1/chat/completions", timeout=30, headers=headers,
                      json={"model": "ttc-auto", "messages": [{"role": "user", "content": content}],
                            **extra})


# -- secrets and prompts --------------------------------------------------------------------


def test_keys_and_prompts_never_logged_or_echoed(router_process: Process) -> None:
    url, stub = router_process.url, router_process.stub
    seen: list[httpx.Response] = []
    before = len(stub.authorizations)
    seen.append(chat(url, PAYER_KEY, f"{MARKER} ok"))
    seen.append(httpx.post(f"{url}/v1/messages", timeout=30, headers={"x-api-key": OTHER_KEY},
                           json={"model": "ttc-auto", "max_tokens": 16, "messages": [
                               {"role": "user", "content": f"{MARKER} anthropic"}]}))
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {PAYER_KEY}"},
                      json={"model": "ttc-auto", "stream": True, "messages": [
                          {"role": "user", "content": f"{MARKER} stream"}]}) as resp:
        resp.read()
        seen.append(resp)
    control(stub, "error500", count=3)
    seen.append(chat(url, PAYER_KEY, f"{MARKER} upstream fails"))
    control(stub, "ok", 0)
    seen.append(chat(url, WRONG_KEY, f"{MARKER} wrong key"))
    seen.append(httpx.post(f"{url}/v1/chat/completions", headers={"x-api-key": WRONG_KEY},
                           json={"model": "ttc-auto",
                                 "messages": [{"role": "wizard", "content": MARKER}]}))
    seen.append(chat(url, PAYER_KEY, f"{MARKER} bad model", model="no-such-model"))
    seen.append(httpx.get(f"{url}/admin/policy",
                          headers={"authorization": f"Bearer {WRONG_ADMIN}"}))
    seen.append(httpx.get(f"{url}/admin/policy", headers={"x-admin-token": WRONG_ADMIN}))
    seen.append(httpx.get(f"{url}/admin/policy", headers=ADMIN))
    seen.append(httpx.get(f"{url}/readyz"))
    seen.append(httpx.get(f"{url}/metrics"))
    seen.append(httpx.post(f"{url}/v1/route", headers={"authorization": f"Bearer {PAYER_KEY}"},
                           json={"input": f"{MARKER} route"}))
    assert [r.status_code for r in seen] == [200, 200, 200, 502, 401, 400, 404, 401, 401, 200,
                                             200, 200, 200]
    secrets = [PAYER_KEY, OTHER_KEY, WRONG_KEY, UPSTREAM_KEY, ADMIN_TOKEN, WRONG_ADMIN]
    for resp in seen:
        echoed = resp.text + "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        for secret in secrets:
            assert secret not in echoed, (resp.request.url, secret)
    # Only the policy's upstream key reaches the upstream; never a client's key.
    sent = stub.authorizations[before:]
    assert sent and set(sent) == {f"Bearer {UPSTREAM_KEY}"}, set(sent)

    time.sleep(0.3)
    logs = router_process.logs()
    assert '"request_received"' in logs and '"prompt_sha256"' in logs  # requests are logged
    assert '"request_failed"' in logs  # ... failures too
    for secret in secrets:
        assert secret not in logs, secret
    assert MARKER not in logs


def test_prompts_are_logged_only_when_enabled(
    resilience_stub: tuple[StubUpstream, str], redis_url: str, tmp_path: Path,
) -> None:
    stub, stub_url = resilience_stub
    marker = f"OPT-IN-{uuid.uuid4().hex}"
    for enabled in (False, True):
        router_cm = start_router(tmp_path / str(enabled), policy_text(stub_url), redis_url,
                                 stub, log_prompts=enabled, log_level="info")
        with router_cm as router, structlog.testing.capture_logs() as logs:
            assert chat(router.url, None, marker).status_code == 200
        text = repr(logs)
        assert "request_received" in text
        assert (marker in text) is enabled


# -- admin token ----------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/admin/policy"), ("POST", "/admin/policy/reload"), ("GET", "/admin/spend"),
    ("GET", "/admin/tenants/payer/budget"), ("POST", "/admin/tenants/payer/budget/reset"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_refuses_missing_and_wrong_tokens(
    router_process: Process, method: str, path: str
) -> None:
    url = router_process.url + path
    wrong_same_length = "x" * len(ADMIN_TOKEN)
    attempts: list[dict[str, str]] = [
        {}, {"authorization": f"Bearer {WRONG_ADMIN}"},
        {"authorization": f"Bearer {wrong_same_length}"},
        {"authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"authorization": f"Bearer {ADMIN_TOKEN}x"}, {"authorization": f"Basic {ADMIN_TOKEN}"},
        {"authorization": f"Bearer {PAYER_KEY}"}, {"x-api-key": ADMIN_TOKEN},
        {"x-admin-token": WRONG_ADMIN}, {"x-admin-token": ""},
    ]
    for headers in attempts:
        resp = httpx.request(method, url, headers=headers, timeout=30)
        assert resp.status_code == 401, (headers, resp.status_code, resp.text)
        err = assert_error_body(path, resp)
        assert err["type"] == "authentication_error"
    resp = httpx.request(method, url, params={"token": ADMIN_TOKEN}, timeout=30)
    assert resp.status_code == 401  # never from the query string (it would end up in logs)
    for headers in ({"authorization": f"Bearer {ADMIN_TOKEN}"},
                    {"authorization": f"bearer {ADMIN_TOKEN}"}, {"x-admin-token": ADMIN_TOKEN}):
        resp = httpx.request(method, url, headers=headers, timeout=30)
        assert resp.status_code == 200, (headers, resp.text)


def test_admin_is_absent_without_a_token(
    resilience_stub: tuple[StubUpstream, str], redis_url: str, tmp_path: Path,
) -> None:
    stub, stub_url = resilience_stub
    with start_router(tmp_path, policy_text(stub_url), redis_url, stub,
                      admin_token=None) as router:
        for method, path in ADMIN_CALLS:
            for headers in ({}, {"authorization": "Bearer x"}, {"x-admin-token": "anything"}):
                resp = httpx.request(method, router.url + path, headers=headers, timeout=30)
                assert resp.status_code == 404, (path, resp.text)


def test_admin_rejects_tenant_names_that_could_reach_other_keys(router_process: Process) -> None:
    for name in ("payer}:b:{other", "*", "payer:*", ".." , "a" * 65, "payer%2F..%2Fother"):
        resp = httpx.get(f"{router_process.url}/admin/tenants/{name}/budget", headers=ADMIN)
        assert resp.status_code in (400, 404), (name, resp.status_code, resp.text)
    resp = httpx.get(f"{router_process.url}/admin/spend", headers=ADMIN,
                     params={"tenant": "payer}:b:{other"})
    assert resp.status_code == 400


# -- tenant isolation -------------------------------------------------------------------------


def test_cache_entries_are_per_tenant(router_process: Process) -> None:
    url, stub = router_process.url, router_process.stub
    question = f"isolated cache {uuid.uuid4().hex}"
    assert chat(url, PAYER_KEY, question).headers["x-ttc-cache"] == "miss"
    assert chat(url, PAYER_KEY, question).headers["x-ttc-cache"] == "hit"
    for key in (OTHER_KEY, ACME_KEY, None):
        calls = stub.requests
        resp = chat(url, key, question)
        assert resp.status_code == 200 and resp.headers["x-ttc-cache"] == "miss", key
        assert stub.requests == calls + 1  # answered by the upstream, not payer's entry


def test_spend_and_admin_views_are_per_tenant(router_process: Process) -> None:
    url = router_process.url
    payer0, other0 = budget_view(url, "payer")["day"], budget_view(url, "other")["day"]
    resp = chat(url, PAYER_KEY, f"spend {uuid.uuid4().hex}")
    cost = float(resp.headers["x-ttc-cost-usd"])
    assert cost > 0
    payer1, other1 = budget_view(url, "payer")["day"], budget_view(url, "other")["day"]
    assert payer1["usd"] - payer0["usd"] == pytest.approx(cost, abs=1e-6)
    assert other1["usd"] == other0["usd"]
    view = budget_view(url, "payer")
    assert view["tenant"] == "payer" and "other" not in str(view)
    # A tenant's own key is no admin credential, and nothing public shows budgets.
    assert httpx.get(f"{url}/admin/tenants/other/budget",
                     headers={"authorization": f"Bearer {PAYER_KEY}"}).status_code == 401
    public = chat(url, PAYER_KEY, f"spend {uuid.uuid4().hex}")
    assert "other" not in str(dict(public.headers)) and "other" not in public.text


def test_tenant_header_is_ignored_without_gateway_mode(router_process: Process) -> None:
    for header in ("x-ttc-tenant", "x-tenant", "x-tenant-id"):
        resp = httpx.post(f"{router_process.url}/v1/route", headers={header: "payer"},
                          json={"input": "who am I"})
        assert resp.json()["tenant"] == "default", header


# -- upstream URLs only from the policy -----------------------------------------------------------


def test_request_fields_cannot_redirect_the_router(router_process: Process) -> None:
    trap = DroppingServer()
    with trap:
        target = f"{trap.url}/v1"
        url, stub = router_process.url, router_process.stub
        fields = {"base_url": target, "api_base": target, "baseURL": target,
                  "endpoint": target, "url": target, "extra_body": {"base_url": target},
                  "extra_headers": {"host": f"127.0.0.1:{trap.port}"},
                  "metadata": {"base_url": target, "upstream": target}}
        headers = {"x-ttc-upstream": target, "x-forwarded-host": f"127.0.0.1:{trap.port}",
                   "x-base-url": target, "x-ttc-model": "dropper", "forwarded": f"host={target}"}
        before = len(stub.bodies)
        resp = chat(url, PAYER_KEY, "where do you send this", headers=headers, **fields)
        assert resp.status_code == 200, resp.text
        sent = stub.bodies[before]
        assert not set(fields) & set(sent), sent  # unknown fields are not forwarded either
        anthropic = httpx.post(f"{url}/v1/messages", headers={"x-api-key": PAYER_KEY, **headers},
                               json={"model": "ttc-auto", "max_tokens": 16, "messages": [
                                   {"role": "user", "content": "hi"}], **fields})
        assert anthropic.status_code == 200, anthropic.text
        for model in (target, f"{trap.url}", f"openai/{target}", "stub@" + target):
            resp = chat(url, PAYER_KEY, "named url", model=model)
            assert resp.status_code == 404, (model, resp.text)
        time.sleep(0.2)
    assert trap.connections == 0


# -- tier hints and max_tier ----------------------------------------------------------------------


def route(url: str, key: str | None, **kwargs: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))
    resp = httpx.post(f"{url}/v1/route", headers=headers,
                      json={"input": "x", **kwargs}, timeout=30)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_hints_never_exceed_max_tier(router_process: Process) -> None:
    url = router_process.url
    very = {"x-ttc-tier": "very_hard"}
    # acme: hints allowed, max_tier hard.
    assert route(url, ACME_KEY, headers=very)["tier"] == "hard"
    assert route(url, ACME_KEY, model="ttc-very-hard")["tier"] == "hard"
    assert route(url, ACME_KEY, headers={"x-ttc-tier": "easy"})["tier"] == "easy"
    resp = chat(url, ACME_KEY, "metadata hint", metadata={"ttc_tier": "very_hard"})
    assert resp.headers["x-ttc-tier"] == "hard"
    resp = chat(url, ACME_KEY, "pinned", model="ttc-very-hard", headers=very)
    assert resp.headers["x-ttc-tier"] == "hard"
    msg = httpx.post(f"{url}/v1/messages", headers={"x-api-key": ACME_KEY, **very},
                     json={"model": "ttc-auto", "max_tokens": 16,
                           "metadata": {"ttc_tier": "very_hard"},
                           "messages": [{"role": "user", "content": "hi"}]})
    assert msg.headers["x-ttc-tier"] == "hard"
    # lowtier: no hints, max_tier easy (clamps the classifier's medium too).
    assert route(url, LOWTIER_KEY, headers=very)["tier"] == "easy"
    assert route(url, LOWTIER_KEY, model="ttc-very-hard")["tier"] == "easy"
    # anonymous: hints ignored.
    assert route(url, None, headers=very)["tier"] == "medium"
    assert route(url, None, model="ttc-very-hard")["tier"] == "medium"


def test_passthrough_models_respect_budget_caps(router_process: Process) -> None:
    url = router_process.url
    assert chat(url, TIGHT_KEY, "routed").status_code == 429
    before = budget_view(url, "payer")["day"]["usd"]
    resp = chat(url, PAYER_KEY, f"direct {uuid.uuid4().hex}", model="stub")
    assert resp.status_code == 200
    assert budget_view(url, "payer")["day"]["usd"] > before  # the spend is recorded
    assert chat(url, TIGHT_KEY, "direct", model="stub").status_code == 429


def test_stream_error_events_do_not_leak_internals(router_process: Process) -> None:
    control(router_process.stub, "cut_stream", count=1)
    with httpx.stream("POST", f"{router_process.url}/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {PAYER_KEY}"},
                      json={"model": "ttc-auto", "stream": True, "messages": [
                          {"role": "user", "content": uuid.uuid4().hex}]}) as resp:
        text = resp.read().decode()
    events = sse_events(text)
    assert events[-1][1] == "[DONE]"
    assert "Traceback" not in text and "127.0.0.1" not in text and UPSTREAM_KEY not in text
