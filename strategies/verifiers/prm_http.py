"""A process reward model served over HTTP by vLLM's pooling API.

Serve e.g. Qwen2.5-Math-PRM-7B with vLLM's pooling runner (`vllm serve Qwen/Qwen2.5-Math-PRM-7B
--runner pooling`; for Math-Shepherd style models configure STEP pooling with the step tag and
the good/bad token ids). One request per candidate:

    POST {url}/pooling
    {"model": MODEL, "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "step 1<extra_0>step 2<extra_0>"}]}
    -> {"data": [{"index": 0, "data": [[p_bad, p_good], [p_bad, p_good]]}]}

Steps are the candidate's steps with their delimiter stripped, each followed by `step_tag`
(`<extra_0>` for Qwen2.5-Math-PRM, `ки` for Math-Shepherd). With `format: raw` the request
sends `{"input": question + "\\n" + tagged steps}` instead of messages. The reply holds one
entry per step tag: a `[p_bad, p_good]` pair (the score is entry `positive_index`) or a plain
number. A reply with fewer entries than steps is padded with its last score.

Billing: each request's input tokens are the reply's `usage.prompt_tokens` (vLLM sends it) or,
when the reply has none, an estimate at 3 characters a token of the text sent (stated in a
note). The calls are reported under `bill_as` (`verifier:<name>`), which the pipeline prices
at the verifier's `price` in the policy (default zero).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from router.vocab.errors import UpstreamError, UpstreamTimeout
from router.vocab.upstream import Usage
from strategies.base import Problem, Scored

CHARS_PER_TOKEN = 3  # the router's conservative prompt estimate
TEMPLATE_TOKENS = 16  # chat template and body framing, per request (the worst case's slack)
ESTIMATED_NOTE = (
    "prm_http: the PRM reported no usage; its input tokens are estimated (3 chars a token)"
)
DEFAULT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


class HttpPRM:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        step_tag: str = "<extra_0>",
        fmt: str = "messages",
        positive_index: int = 1,
        system: str = DEFAULT_SYSTEM,
        timeout_s: float = 30.0,
        max_concurrency: int = 8,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        bill_as: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.step_tag = step_tag
        self.fmt = fmt
        self.positive_index = positive_index
        self.system = system
        self.timeout_s = timeout_s
        self._limit = max_concurrency
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        self.bill_as = bill_as  # what its calls are billed under (`verifier:<name>`)

    def request_body(self, problem: Problem, steps: Sequence[str]) -> dict[str, Any]:
        tagged = "".join(s.strip() + self.step_tag for s in steps)
        if self.fmt == "raw":
            return {"model": self.model, "input": problem.question + "\n" + tagged}
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self.system},
                {"role": "user", "content": problem.question},
                {"role": "assistant", "content": tagged},
            ],
        }

    def parse(self, body: Any, n_steps: int) -> list[float]:
        try:
            entries = body["data"][0]["data"]
            scores = [
                float(e[self.positive_index]) if isinstance(e, list) else float(e) for e in entries
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UpstreamError(f"PRM at {self.url} sent an unexpected reply") from exc
        if not scores:
            raise UpstreamError(f"PRM at {self.url} returned no step scores")
        return (scores + [scores[-1]] * n_steps)[: max(n_steps, 1)]

    def estimate_tokens(self, body: Mapping[str, Any]) -> int:
        """Input tokens of a request whose reply reports none: 3 characters a token."""
        if "input" in body:
            chars = len(body["input"])
        else:
            chars = sum(len(m["content"]) for m in body["messages"])
        return math.ceil(chars / CHARS_PER_TOKEN) + TEMPLATE_TOKENS

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        return (await self.score_accounted(problem, candidates)).scores

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored:
        sem = asyncio.Semaphore(self._limit)
        async with httpx.AsyncClient(
            timeout=self.timeout_s, headers=self._headers, transport=self._transport
        ) as client:

            async def one(steps: Sequence[str]) -> tuple[list[float], int, bool]:
                body = self.request_body(problem, steps)
                async with sem:
                    try:
                        resp = await client.post(self.url + "/pooling", json=body)
                    except httpx.TimeoutException as exc:
                        raise UpstreamTimeout(f"PRM at {self.url} timed out") from exc
                    except httpx.HTTPError as exc:
                        raise UpstreamError(
                            f"PRM at {self.url} unreachable: {exc.__class__.__name__}"
                        ) from exc
                if resp.status_code != 200:
                    raise UpstreamError(f"PRM at {self.url} answered {resp.status_code}")
                reply = resp.json()
                reported = _reported_tokens(reply)
                tokens = reported if reported is not None else self.estimate_tokens(body)
                return self.parse(reply, len(steps)), tokens, reported is None

            done = await asyncio.gather(*(one(c) for c in candidates))
        usage = Usage(prompt_tokens=sum(t for _, t, _ in done), calls=len(done))
        notes = (ESTIMATED_NOTE,) if any(est for _, _, est in done) else ()
        return Scored([s for s, _, _ in done], usage, notes, model=self.bill_as)


def _reported_tokens(reply: Any) -> int | None:
    try:
        tokens = reply["usage"]["prompt_tokens"]
    except (KeyError, TypeError):
        return None
    return tokens if isinstance(tokens, int) and tokens >= 0 else None


def worst_tokens(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    """Most (input, output) tokens scoring one candidate may be billed: one request showing
    the system prompt, the question, the candidate and a step tag per step. The candidate
    counts twice, so an estimate at 3 characters a token (a reply without usage) stays
    covered while the text averages under 6 characters a token."""
    system = math.ceil(len(str(options.get("system", DEFAULT_SYSTEM))) / CHARS_PER_TOKEN)
    tag = math.ceil(len(str(options.get("step_tag", "<extra_0>"))) / CHARS_PER_TOKEN) + 1
    return system + TEMPLATE_TOKENS + question + 2 * candidate + tag * max(1, steps), 0


def build(options: Mapping[str, Any]) -> HttpPRM:
    return HttpPRM(
        options["url"],
        options["model"],
        step_tag=options.get("step_tag", "<extra_0>"),
        fmt=options.get("format", "messages"),
        positive_index=options.get("positive_index", 1),
        system=options.get("system", DEFAULT_SYSTEM),
        timeout_s=options.get("timeout_s", 30.0),
        max_concurrency=options.get("max_concurrency", 8),
        api_key=options.get("api_key"),
        bill_as=options.get("bill_as"),
    )
