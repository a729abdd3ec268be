"""Verifier kinds: PRM over HTTP, LLM judge, rollout value, maths reference, code tests."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from router.errors import InvalidRequest, UpstreamError
from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    StreamDelta,
    Usage,
)
from strategies import VERIFIERS, Scored, build_verifier, check_verifier_options
from strategies.verifiers.llm_judge import parse_judgement
from strategies.verifiers.prm_http import HttpPRM
from strategies.verifiers.rollout import RolloutValue
from tests.strategies.fakes import ScriptedGenerator, problem


async def test_prm_http_request_format_and_step_scores() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        n = body["messages"][2]["content"].count("<extra_0>")
        return httpx.Response(200, json={"data": [{"index": 0, "data": [[0.2, 0.8]] * n}]})

    prm = HttpPRM("http://prm/v1/", "qwen-prm", transport=httpx.MockTransport(handler))
    scores = await prm.score(problem("2+2?"), [["a\n\n", "b"], ["c"]])
    assert scores == [[0.8, 0.8], [0.8]]
    assert seen[0]["model"] == "qwen-prm"
    assert seen[0]["messages"][1] == {"role": "user", "content": "2+2?"}
    assert seen[0]["messages"][2]["content"] == "a<extra_0>b<extra_0>"


async def test_prm_http_reports_what_it_read_for_billing() -> None:
    """Each request's input tokens: the reply's `usage.prompt_tokens`, else an estimate at 3
    characters a token of the text sent (with a note), under its `bill_as` name; the worst
    case of one candidate covers the estimate."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        reply: dict[str, Any] = {"data": [{"index": 0, "data": [[0.5, 0.5]]}]}
        if body["messages"][2]["content"].startswith("a"):
            reply["usage"] = {"prompt_tokens": 42}
        return httpx.Response(200, json=reply)

    prm = HttpPRM("http://prm", "m", bill_as="verifier:prm",
                  transport=httpx.MockTransport(handler))
    reported = await prm.score_accounted(problem("2+2?"), [["a"]])
    assert reported.usage == Usage(prompt_tokens=42, calls=1) and reported.notes == ()
    assert reported.model == "verifier:prm"
    step = "x" * 300
    estimated = await prm.score_accounted(problem("2+2?"), [[step]])
    body = prm.request_body(problem("2+2?"), [step])
    chars = sum(len(m["content"]) for m in body["messages"])
    assert estimated.usage.prompt_tokens == -(-chars // 3) + 16
    assert any("estimated" in note for note in estimated.notes)
    both = await prm.score_accounted(problem("2+2?"), [["a"], [step]])
    assert both.usage.prompt_tokens == 42 + estimated.usage.prompt_tokens
    assert both.usage.calls == 2
    # the worst case of scoring that candidate (question ~3 tokens, 100 generated tokens)
    bound_in, bound_out = VERIFIERS["prm_http"].worst_tokens({}, 3, 100, 1)
    assert bound_out == 0 and estimated.usage.prompt_tokens <= bound_in


async def test_prm_http_errors_are_translated() -> None:
    prm = HttpPRM("http://prm", "m", transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    with pytest.raises(UpstreamError, match="answered 503"):
        await prm.score(problem(), [["a"]])
    bad = HttpPRM(
        "http://prm",
        "m",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"oops": 1})),
    )
    with pytest.raises(UpstreamError, match="unexpected reply"):
        await bad.score(problem(), [["a"]])


@dataclass
class JudgeUpstream:
    """Says yes (logprob -0.1) to steps containing 'good', else no (logprob -0.2)."""

    name: str = "judge"
    model: str = "judge-model"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=True, logprobs=True)
    )
    requests: list[GenerationRequest] = field(default_factory=list)

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        text = request.messages[0].content
        last = text.split("Is the last step")[0].strip().splitlines()[-1]
        word = "yes" if "good" in last else "no"
        lp = -0.1 if word == "yes" else -0.2
        return Generation((Choice(word, token_logprobs=(lp,)),), Usage(30, 1, calls=1))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        raise NotImplementedError
        yield StreamDelta()

    async def aclose(self) -> None:
        return None


async def test_llm_judge_scores_each_step_from_logprobs_and_reports_usage() -> None:
    upstream = JudgeUpstream()
    verifier = build_verifier("llm_judge", {"model": "judge"}, lambda name: upstream)
    assert verifier is not None
    scored = await verifier.score_accounted(problem(), [["good step", "bad step"]])  # type: ignore[attr-defined]
    assert isinstance(scored, Scored)
    assert scored.scores[0] == [
        pytest.approx(0.904837, abs=1e-5),
        pytest.approx(0.181269, abs=1e-5),
    ]
    assert scored.usage.calls == 2 and upstream.requests[0].logprobs


def test_parse_judgement_without_logprobs() -> None:
    assert parse_judgement("Yes.", None) == 1.0
    assert parse_judgement(" no", None) == 0.0
    assert parse_judgement("7/10", None) == 0.7
    assert parse_judgement("unsure", None) == 0.5


async def test_rollout_value_is_the_share_reaching_the_agreed_answer() -> None:
    gen = ScriptedGenerator({"p": ["Answer: 1", "Answer: 1", "Answer: 2", "Answer: 1"]})
    value = RolloutValue(gen, k=4)
    scored = await value.score_accounted(problem(), [["p"]])
    assert scored.scores == [[0.75]] and scored.usage.calls == 1
    gen2 = ScriptedGenerator({"p": ["Answer: 1", "Answer: 1", "Answer: 2", "Answer: 1"]})
    checked = await RolloutValue(gen2, k=4).score(problem(reference="2"), [["p"]])
    assert checked == [[0.25]]  # with a reference: the share that is correct


async def test_math_reference_checker() -> None:
    verifier = build_verifier("math_reference", {}, lambda n: JudgeUpstream())
    assert verifier is not None
    scores = await verifier.score(problem(reference="1/2"), [["so \\boxed{0.5}"], ["Answer: 2"]])
    assert scores == [[1.0], [0.0]]
    with pytest.raises(InvalidRequest):
        await verifier.score(problem(), [["x"]])


async def test_code_tests_checker_runs_programs_against_tests() -> None:
    verifier = build_verifier("code_tests", {"timeout_s": 5.0}, lambda n: JudgeUpstream())
    assert verifier is not None
    p = problem("write add")
    p = type(p)(messages=p.messages, tests="assert add(2, 3) == 5")
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    assert await verifier.score(p, [[good], [bad]]) == [[1.0], [0.0]]


def test_verifier_option_checks() -> None:
    assert set(VERIFIERS) == {
        "prm_http",
        "llm_judge",
        "rollout",
        "math_reference",
        "code_tests",
        "answer_check",
        "none",
    }
    assert check_verifier_options("prm_http", {"url": "http://x", "model": "m"}) == []
    assert check_verifier_options("prm_http", {"url": "http://x"}) == ["missing option 'model'"]
    assert "unknown verifier kind" in check_verifier_options("oracle", {})[0]
    errors = check_verifier_options("rollout", {"model": "m", "k": 0, "tempreature": 1})
    assert any("k must be >= 1" in e for e in errors) and any("tempreature" in e for e in errors)
    assert VERIFIERS["rollout"].models({"model": "small"}) == ["small"]
    assert build_verifier("none", {}, lambda n: JudgeUpstream()) is None
