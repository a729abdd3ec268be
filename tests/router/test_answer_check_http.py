"""A request that carries a check over its answer (`ttc.check`), through the official clients
over HTTP: best-of-N scores every sample with the check in the sandbox and answers the one that
passes; without a check the tier's fallback votes and says so.

The scripted upstream answers "sort 30 7 12" with, in order: the list unsorted (twice), the
sorted list, and the sorted list with a number missing. A vote picks the unsorted list.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.upstreams.base import GenerationRequest
from tests.fakes import ScriptedUpstream

ANSWERS = ["30 7 12", "30 7 12", "7 12 30", "7 30"]
CHECK = """
given = [30, 7, 12]
got = [int(t) for t in answer.split()]
assert sorted(got) == sorted(given)
assert all(a <= b for a, b in zip(got, got[1:]))
"""
KEY = "sk-check-tenant"
POLICY = f"""
models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: small
    capabilities: {{chat: true, n: true}}
verifiers:
  check: {{kind: answer_check, options: {{timeout_s: 5, cpu_s: 3}}}}
tiers:
  easy: {{strategy: greedy, model: small, max_tokens: 16}}
  medium: {{strategy: greedy, model: small, max_tokens: 16}}
  hard:
    strategy: best_of_n
    params: {{n: 4}}
    model: small
    verifier: check
    max_tokens: 16
    fallback: {{strategy: self_consistency, params: {{n: 4, round_size: 4}}}}
  very_hard: {{strategy: greedy, model: small, max_tokens: 16}}
tenants:
  default: {{api_key_sha256: ["{hashlib.sha256(KEY.encode()).hexdigest()}"]}}
cache: {{enabled: false}}
"""


@pytest.fixture(scope="module")
def url(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from router.app import create_app
    from router.settings import Settings

    cycle = itertools.cycle(ANSWERS)

    def handler(request: GenerationRequest) -> str:
        return next(cycle)

    upstream = ScriptedUpstream(handler=handler, name="small", model="small")
    tmp = tmp_path_factory.mktemp("check")
    (tmp / "policy.yaml").write_text(POLICY)
    settings = Settings(
        policy_path=tmp / "policy.yaml",
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp,
    )
    app = create_app(settings, upstreams={"small": upstream}, classifier=FixedClassifier(Tier.HARD))
    with ServerThread(app) as server:
        yield server.url


def _ask(url: str, ttc: dict[str, Any] | None, **kw: Any) -> Any:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    return client.chat.completions.create(
        model="ttc-hard",
        messages=[{"role": "user", "content": "Sort: 30 7 12"}],
        max_tokens=16,
        temperature=0.8,
        extra_body={"ttc": ttc} if ttc is not None else None,
        **kw,
    )


def test_the_check_selects_the_sorted_answer(url: str) -> None:
    completion = _ask(url, {"check": {"language": "python", "code": CHECK}})
    ttc = completion.model_extra["ttc"]
    assert completion.choices[0].message.content == "7 12 30"
    assert ttc["strategy"] == "best_of_n" and ttc["candidates"] == 4
    assert not any("fallback" in n for n in ttc["notes"]), ttc["notes"]


def test_without_a_check_the_fallback_votes_and_says_so(url: str) -> None:
    completion = _ask(url, None)
    ttc = completion.model_extra["ttc"]
    assert ttc["strategy"] == "self_consistency"
    assert completion.choices[0].message.content == "30 7 12"
    assert any("'check' needs check" in n for n in ttc["notes"]), ttc["notes"]


def test_the_flat_metadata_key_and_the_anthropic_endpoint_carry_it(url: str) -> None:
    completion = _ask(url, None, metadata={"ttc_check": CHECK})
    assert completion.choices[0].message.content == "7 12 30"
    client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    message = client.messages.create(
        model="ttc-hard",
        max_tokens=16,
        messages=[{"role": "user", "content": "Sort: 30 7 12"}],
        extra_body={"metadata": {"ttc": {"check": {"language": "python", "code": CHECK}}}},
    )
    block = message.content[0]
    assert block.type == "text" and block.text == "7 12 30"


@pytest.mark.parametrize(
    ("ttc", "param"),
    [
        ({"check": {"language": "js", "code": "x"}}, "ttc.check.language"),
        ({"check": {"language": "python", "code": ""}}, "ttc.check.code"),
        ({"check": {"language": "python", "code": "x" * 20_000}}, "ttc.check.code"),
        ({"check": "assert True"}, "ttc.check"),
    ],
)
def test_a_bad_check_is_a_400_naming_the_field(url: str, ttc: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _ask(url, ttc)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param, body
