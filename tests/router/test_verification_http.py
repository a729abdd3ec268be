"""Requests that carry their own verification, through the official clients over HTTP.

A scripted upstream answers every sample with one of four programs, in order: two wrong ones,
one that passes half the tests, one that passes all. With tests, best-of-N selects the passing
program in the sandbox; without, the tier's fallback (a vote) runs and `ttc.notes` says so.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import structlog
from typer.testing import CliRunner

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.upstreams.base import GenerationRequest
from tests.fakes import ScriptedUpstream

GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
HALF = "```python\ndef add(a, b):\n    return a + b if a else 0\n```"
BAD = "```python\ndef add(a, b):\n    return a - b\n```"
PROGRAMS = [BAD, BAD, HALF, GOOD]
TESTS = "assert add(1, 2) == 3\nassert add(0, 5) == 5\n"
SECRET_REF = "reference-7f3a9c"

POLICY = """
models:
  coder:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: coder
    capabilities: {chat: true, n: true}
    price: {input_per_mtok: 1.0, output_per_mtok: 2.0}
verifiers:
  tests: {kind: code_tests, options: {timeout_s: 5, cpu_s: 3, memory_mb: 256, total_s: 30}}
  answer: {kind: math_reference}
tiers:
  easy: {strategy: greedy, model: coder, max_tokens: 64}
  medium:
    strategy: self_consistency
    params: {n: 4, round_size: 4}
    model: coder
    verifier: tests
    max_tokens: 64
    fallback: {verifier: null}
  hard:
    strategy: best_of_n
    params: {n: 4}
    model: coder
    verifier: tests
    max_tokens: 64
    fallback: {strategy: self_consistency, params: {n: 4, round_size: 4}}
  very_hard: {strategy: greedy, model: coder, max_tokens: 64}
tenants:
  default: {api_key_sha256: ["{default_hash}"], allow_tier_hint: true}
  other: {api_key_sha256: ["{other_hash}"], allow_tier_hint: true}
anonymous_tenant: default
cache: {enabled: true, ttl_s: 60, cache_sampled: true}
"""
OTHER_KEY = "sk-other-tenant"
DEFAULT_KEY = "sk-default-tenant"


def _policy_text(text: str = POLICY) -> str:
    import hashlib

    for name, key in (("other_hash", OTHER_KEY), ("default_hash", DEFAULT_KEY)):
        text = text.replace("{" + name + "}", hashlib.sha256(key.encode()).hexdigest())
    return text


@dataclass
class Served:
    url: str
    upstream: ScriptedUpstream


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from router.app import create_app
    from router.settings import Settings

    cycle = itertools.cycle(PROGRAMS)

    def handler(request: GenerationRequest) -> str:
        return next(cycle)

    upstream = ScriptedUpstream(handler=handler, name="coder", model="coder")
    tmp = tmp_path_factory.mktemp("verify")
    policy = tmp / "policy.yaml"
    policy.write_text(_policy_text())
    settings = Settings(
        policy_path=policy,
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp,
    )
    app = create_app(settings, upstreams={"coder": upstream}, classifier=FixedClassifier(Tier.HARD))
    with ServerThread(app) as server:
        yield Served(server.url, upstream)


def _client(s: Served, key: str = DEFAULT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{s.url}/v1", api_key=key, max_retries=0)


def _ask(s: Served, ttc: dict[str, Any] | None = None, **kw: Any) -> Any:
    extra = {"ttc": ttc} if ttc is not None else None
    messages = kw.pop("messages", [{"role": "user", "content": "Write add(a, b) in Python."}])
    return _client(s, kw.pop("key", DEFAULT_KEY)).chat.completions.with_raw_response.create(
        model=kw.pop("model", "ttc-hard"),
        messages=messages,
        max_tokens=64,
        temperature=0.8,
        extra_body=extra,
        **kw,
    )


def test_tests_select_the_passing_candidate_in_the_sandbox(served: Served) -> None:
    before = len(served.upstream.requests)
    raw = _ask(served, {"tests": {"language": "python", "code": TESTS}})
    completion = raw.parse()
    ttc = completion.model_extra["ttc"]
    assert completion.choices[0].message.content == GOOD
    assert ttc["strategy"] == "best_of_n" and ttc["candidates"] == 4 and ttc["calls"] == 1
    assert not any("fallback" in n for n in ttc["notes"])
    assert len(served.upstream.requests) == before + 1 and served.upstream.requests[-1].n == 4
    words = sum(len(p.split()) for p in PROGRAMS)
    assert completion.usage.completion_tokens == words and completion.usage.prompt_tokens == 10


def test_without_tests_the_fallback_votes_and_says_so(served: Served) -> None:
    completion = _ask(served, messages=[{"role": "user", "content": "add, no tests"}]).parse()
    ttc = completion.model_extra["ttc"]
    assert ttc["strategy"] == "self_consistency"
    assert completion.choices[0].message.content == BAD  # 2 of 4 votes: unverified
    assert any(
        "'tests' needs tests, which the request does not carry: ran the fallback" in n
        for n in ttc["notes"]
    ), ttc["notes"]


def test_io_cases_with_self_consistency_check_every_sample(served: Served) -> None:
    """No scripted program prints anything, so every one fails the case: the vote decides
    among equals, and the note says the verifier selected."""
    cases = [{"input": "1\n", "output": "2"}]
    completion = _ask(
        served,
        {"tests": {"language": "python", "cases": cases}},
        model="ttc-medium",
        messages=[{"role": "user", "content": "io cases"}],
    ).parse()
    ttc = completion.model_extra["ttc"]
    assert ttc["strategy"] == "self_consistency" and ttc["candidates"] == 4
    assert "selected by the verifier" in " ".join(ttc["notes"])
    assert completion.choices[0].message.content == BAD  # all fail: ties go to the vote


@pytest.mark.parametrize(
    ("ttc", "metadata", "param"),
    [
        ({"tests": {"language": "ruby", "code": "x"}}, None, "ttc.tests.language"),
        ({"tests": {"language": "python"}}, None, "ttc.tests"),
        ({"reference": "x" * 5000}, None, "ttc.reference"),
        (
            {"tests": {"language": "python", "cases": [{"output": "1"}] * 65}},
            None,
            "ttc.tests.cases",
        ),
        (
            {"tests": {"language": "python", "cases": [{"input": 3, "output": "1"}]}},
            None,
            "ttc.tests.cases[0].input",
        ),
        ({"nope": 1}, None, "ttc.nope"),
        ({"verifier": "oracle"}, None, "ttc.verifier"),
        (None, {"ttc_reference": "x" * 5000}, "metadata.ttc_reference"),
        (None, {"ttc_tests": "assert 1", "ttc_tests_language": "c"}, "metadata.ttc_tests_language"),
    ],
)
def test_bad_verification_values_are_400_naming_the_field(
    served: Served, ttc: dict[str, Any] | None, metadata: dict[str, str] | None, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _ask(served, ttc, metadata=metadata)
    assert info.value.status_code == 400
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param, body


def test_references_and_tests_are_never_logged(served: Served) -> None:
    with structlog.testing.capture_logs() as logs:
        _ask(
            served,
            {"reference": SECRET_REF, "tests": {"language": "python", "code": TESTS}},
            messages=[{"role": "user", "content": "log check"}],
        )
    assert logs, "the request was logged"
    text = repr(logs)
    assert SECRET_REF not in text and "assert add" not in text


def test_cache_keys_split_by_tests_and_never_cross_tenants(served: Served) -> None:
    ask = {"messages": [{"role": "user", "content": "cache check"}]}
    first = _ask(served, {"tests": {"language": "python", "code": TESTS}}, **ask)
    again = _ask(served, {"tests": {"language": "python", "code": TESTS}}, **ask)
    other_tests = _ask(
        served, {"tests": {"language": "python", "code": "assert add(2, 2) == 4"}}, **ask
    )
    other_tenant = _ask(
        served, {"tests": {"language": "python", "code": TESTS}}, key=OTHER_KEY, **ask
    )
    assert first.headers["x-ttc-cache"] == "miss" and again.headers["x-ttc-cache"] == "hit"
    assert other_tests.headers["x-ttc-cache"] == "miss"
    assert other_tenant.headers["x-ttc-cache"] == "miss"


def test_anthropic_endpoint_carries_tests_in_metadata(served: Served) -> None:
    client = anthropic.Anthropic(base_url=served.url, api_key=DEFAULT_KEY, max_retries=0)
    message = client.messages.create(
        model="ttc-hard",
        max_tokens=64,
        messages=[{"role": "user", "content": "Write add(a, b), anthropic."}],
        extra_body={"metadata": {"ttc": {"tests": {"language": "python", "code": TESTS}}}},
    )
    block = message.content[0]
    assert block.type == "text" and block.text == GOOD
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="ttc-hard",
            max_tokens=64,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"metadata": {"ttc": {"tests": {"language": "go", "code": "x"}}}},
        )
    assert "metadata.ttc.tests.language" in str(info.value)


def test_policy_validate_refuses_a_verifier_requests_may_not_feed(tmp_path: Path) -> None:
    from router.policy_cli import policy_app

    bad = tmp_path / "bad.yaml"
    bad.write_text(_policy_text(POLICY.replace("    fallback: {verifier: null}\n", "")))
    result = CliRunner().invoke(policy_app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert (
        "tiers.medium.verifier: 'tests' needs tests from every request, and requests may not "
        "carry them; declare tiers.medium.fallback" in result.stderr
    )
    fb = POLICY.replace("fallback: {verifier: null}", "fallback: {verifier: answer}")
    bad.write_text(_policy_text(fb))
    result = CliRunner().invoke(policy_app, ["validate", str(bad)])
    assert "tiers.medium.fallback.verifier: 'answer' needs reference itself" in result.stderr


def test_the_readme_example_runs_and_selects_the_passing_program(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- verification-example -->\n```python\n", 1)[1].split("```", 1)[0]
    code = block.replace("http://127.0.0.1:8080/v1", f"{served.url}/v1").replace(
        "sk-your-key", DEFAULT_KEY
    )
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith(GOOD + "\n") and "\n4 [" in out
