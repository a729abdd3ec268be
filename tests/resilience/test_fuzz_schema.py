"""Schemathesis against the router's own OpenAPI schema: every operation, positive and
negative generated cases; no 5xx anywhere, and every 4xx has a well-formed error body
(OpenAI-style, Anthropic-style on /v1/messages).

Case counts (default suite): `CASES_PER_RUN` per operation and generation mode, over every
operation the schema lists (12 today: 24 runs, >= 1,000 cases; `test_enough_cases` checks the
total). `TTC_FUZZ_CASES=N` raises the per-run count for a longer local run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from bench.stub_upstream import StubUpstream
from tests.resilience.conftest import ADMIN_TOKEN, assert_error_body, policy_text, start_router
from tests.router.conftest import Running

CASES_PER_RUN = int(os.environ.get("TTC_FUZZ_CASES", "90"))
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def router(
    resilience_stub: tuple[StubUpstream, str], redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    stub, stub_url = resilience_stub
    tmp = tmp_path_factory.mktemp("fuzz")
    with start_router(tmp, policy_text(stub_url), redis_url, stub) as running:
        yield running


@pytest.fixture(scope="module")
def schema(router: Running) -> Any:
    import schemathesis

    return schemathesis.openapi.from_url(f"{router.url}/openapi.json")


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def check_response(path: str, resp: Any, label: str) -> None:
    """`resp`: schemathesis' transport response (header values are lists)."""
    assert resp.status_code < 500, f"{label}: {resp.status_code} {resp.content[:500]!r}"
    if 400 <= resp.status_code < 500:
        headers = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in resp.headers.items()}
        plain = httpx.Response(resp.status_code, content=resp.content, headers=headers)
        assert_error_body(path, plain)


def run_operation(router: Running, op: Any, mode: Any, n: int) -> int:
    """Run `n` generated cases of one operation; returns how many were sent."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"} if op.path.startswith("/admin") else {}
    sent = 0
    session = requests.Session()

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        nonlocal sent
        case = data.draw(op.as_strategy(generation_mode=mode))
        try:
            resp = case.call(base_url=router.url, session=session, headers=headers, timeout=30)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL,
                UnicodeEncodeError, ValueError):
            return  # the client library refuses to send it: not a router case
        sent += 1
        TALLY[f"{resp.status_code // 100}xx"] += 1
        check_response(op.path, resp, f"{op.method.upper()} {op.path} {mode.value}")

    try:
        fuzz()
    except Unsatisfiable:
        pass  # nothing negative to generate (an operation without parameters or body)
    finally:
        session.close()
    return sent


def test_schema_lists_every_endpoint(schema: Any) -> None:
    paths = {op.path for op in operations(schema)}
    expected = {"/v1/chat/completions", "/v1/messages", "/v1/models", "/v1/route", "/healthz",
                "/readyz", "/metrics", "/admin/policy", "/admin/policy/reload", "/admin/spend",
                "/admin/tenants/{tenant}/budget", "/admin/tenants/{tenant}/budget/reset"}
    assert expected <= paths, expected - paths


def test_fuzz_every_operation(router: Running, schema: Any) -> None:
    from schemathesis import GenerationMode

    per_op: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for op in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{op.method.upper()} {op.path} {mode.value}"
            began = time.perf_counter()
            per_op[label] = run_operation(router, op, mode, CASES_PER_RUN)
            seconds[label] = time.perf_counter() - began
    total = sum(per_op.values())
    TALLY["total"] = total
    print(f"schemathesis cases: {total} ({dict(TALLY)})")
    for label, count in per_op.items():
        print(f"  {label}: {count} cases in {seconds[label]:.1f}s")
    positive = [c for label, c in per_op.items() if label.endswith("positive")]
    assert all(c > 0 for c in positive), per_op
    assert total >= 1000 or CASES_PER_RUN < 90, total
