"""Every sampling and search strategy through the HTTP API, with a scripted upstream and a PRM
served over HTTP that prefers the answer 7.

Asserted per strategy: the answer returned is the verifier's preference, `ttc.calls` equals the
upstream calls actually made, `usage` equals the tokens the upstream actually produced, and
`ttc.candidates` is the number of candidates the strategy weighed.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from bench.stub_upstream import ServerThread
from classifier.base import FixedClassifier, Tier
from router.upstreams.base import GenerationRequest
from tests.fakes import ScriptedUpstream

PREFERRED = {"7": 0.9, "5": 0.2}

POLICY = """
models:
  stub:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model: stub
    capabilities: {{chat: true, completions: true, n: true}}
verifiers:
  prm: {{kind: prm_http, options: {{url: "{prm}", model: prm, step_tag: "<s>"}}}}
tenants:
  default: {{allow_tier_hint: true}}
anonymous_tenant: default
cache: {{enabled: false}}
tiers:
{tiers}
"""
FIRST = """
  easy: {strategy: greedy, model: stub, max_tokens: 32}
  medium: {strategy: self_consistency, model: stub, verifier: prm, max_tokens: 32,
           params: {n: 4, round_size: 4}}
  hard: {strategy: best_of_n, model: stub, verifier: prm, max_tokens: 32, params: {n: 4}}
  very_hard: {strategy: beam_search, model: stub, verifier: prm, max_tokens: 32,
              params: {width: 2, expansions: 2, max_depth: 3}}
"""
SECOND = """
  easy: {strategy: mcts, model: stub, verifier: prm, max_tokens: 32,
         params: {simulations: 6, branching: 2, max_depth: 3}}
  medium: {strategy: dvts, model: stub, verifier: prm, max_tokens: 32,
           params: {n: 4, width: 2, expansions: 2, max_depth: 3}}
  hard: {strategy: greedy, model: stub, max_tokens: 32}
  very_hard: {strategy: greedy, model: stub, max_tokens: 32}
"""


class PRMApp:
    """vLLM's pooling API shape: one `[p_bad, p_good]` per step tag; a step naming 7 is good,
    one naming 5 is bad, anything else is 0.5."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        self.requests += 1
        steps = json.loads(body)["messages"][-1]["content"].split("<s>")[:-1]
        pairs = []
        for step in steps:
            good = next((p for k, p in PREFERRED.items() if k in step), 0.5)
            pairs.append([1 - good, good])
        data = json.dumps({"data": [{"index": 0, "data": pairs}]}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@dataclass
class Script:
    """Whole solutions for sampling; first steps, then final steps, for search. Alternates
    the wrong answer 5 and the right answer 7; honours stop sequences; records every output."""

    outputs: list[str] = field(default_factory=list)
    turn: Iterator[int] = field(default_factory=lambda: itertools.cycle([0, 1]))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, r: GenerationRequest) -> str:
        partial = r.prompt is not None and "Step" in r.prompt
        options = (
            ["Answer: 5", "Answer: 7"]
            if partial
            else ["Step A\n\nAnswer: 5", "Step B\n\nAnswer: 7"]
        )
        with self.lock:
            out = options[next(self.turn)]
            for stop in r.stop:
                out = out.split(stop)[0] if stop and stop in out else out
            self.outputs.append(out)
        return out


@dataclass
class Served:
    url: str
    upstream: ScriptedUpstream
    script: Script


@pytest.fixture(scope="module", params=[FIRST, SECOND], ids=["first", "second"])
def served(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    from router.app import create_app
    from router.settings import Settings

    script = Script()
    upstream = ScriptedUpstream(handler=script, name="stub", model="stub")
    tmp = tmp_path_factory.mktemp("scripted")
    with ServerThread(PRMApp()) as prm:
        policy = tmp / "policy.yaml"
        policy.write_text(POLICY.format(prm=prm.url, tiers=request.param))
        settings = Settings(
            policy_path=policy,
            redis_url=redis_url,
            redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
            data_dir=tmp,
        )
        app = create_app(
            settings, upstreams={"stub": upstream}, classifier=FixedClassifier(Tier.EASY)
        )
        with ServerThread(app) as server:
            yield Served(server.url, upstream, script)


def _ask(s: Served, tier: str) -> tuple[dict[str, Any], list[str], int]:
    """The response body, the upstream's outputs during it, and its calls."""
    calls, outs = len(s.upstream.requests), len(s.script.outputs)
    s.script.turn = itertools.cycle([0, 1])  # every request meets the wrong answer first
    r = httpx.post(
        f"{s.url}/v1/chat/completions",
        timeout=60,
        json={
            "model": f"ttc-{tier.replace('_', '-')}",
            "max_tokens": 32,
            "messages": [{"role": "user", "content": "What is 3+4?"}],
        },
    )
    assert r.status_code == 200, r.text
    return r.json(), s.script.outputs[outs:], len(s.upstream.requests) - calls


CASES: dict[str, list[tuple[str, str, int | None]]] = {
    "first": [
        ("easy", "greedy", 1),
        ("medium", "self_consistency", 4),
        ("hard", "best_of_n", 4),
        ("very_hard", "beam_search", None),
    ],
    "second": [("easy", "mcts", None), ("medium", "dvts", None)],
}


def test_strategies_answer_what_the_verifier_prefers_and_account_exactly(
    served: Served, request: pytest.FixtureRequest
) -> None:
    which = str(request.node.callspec.id)
    for tier, strategy, candidates in CASES[which]:
        body, outputs, calls = _ask(served, tier)
        ttc, usage = body["ttc"], body["usage"]
        answer = body["choices"][0]["message"]["content"]
        assert ttc["strategy"] == strategy
        # the PRM's requests are in the usage too, under its billing name (this PRM reports
        # no usage: its input tokens are estimated, and the notes say so)
        prm = ttc.get("model_usage", {}).get("verifier:prm", {"calls": 0, "prompt_tokens": 0,
                                                               "completion_tokens": 0})
        assert (prm["calls"] > 0) == (strategy != "greedy"), strategy
        assert (prm["prompt_tokens"] > 0) == (strategy != "greedy"), strategy
        assert prm["completion_tokens"] == 0
        assert any("estimated" in n for n in ttc["notes"]) == (strategy != "greedy"), strategy
        assert ttc["calls"] - prm["calls"] == calls >= 1, strategy
        assert usage["completion_tokens"] == sum(len(o.split()) for o in outputs), strategy
        # the scripted upstream's 10 per call
        assert usage["prompt_tokens"] - prm["prompt_tokens"] == 10 * calls, strategy
        if candidates is not None:
            assert ttc["candidates"] == candidates, strategy
        else:
            assert ttc["candidates"] >= 2, strategy
        if strategy == "greedy":
            assert answer == outputs[0]  # one sample, no verifier: what came back
        else:
            assert answer.endswith("Answer: 7"), (strategy, answer)  # the PRM's preference
