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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from router.vocab.errors import UpstreamError, UpstreamTimeout
from strategies.base import Problem

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

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        sem = asyncio.Semaphore(self._limit)
        async with httpx.AsyncClient(
            timeout=self.timeout_s, headers=self._headers, transport=self._transport
        ) as client:

            async def one(steps: Sequence[str]) -> list[float]:
                async with sem:
                    try:
                        resp = await client.post(
                            self.url + "/pooling", json=self.request_body(problem, steps)
                        )
                    except httpx.TimeoutException as exc:
                        raise UpstreamTimeout(f"PRM at {self.url} timed out") from exc
                    except httpx.HTTPError as exc:
                        raise UpstreamError(
                            f"PRM at {self.url} unreachable: {exc.__class__.__name__}"
                        ) from exc
                if resp.status_code != 200:
                    raise UpstreamError(f"PRM at {self.url} answered {resp.status_code}")
                return self.parse(resp.json(), len(steps))

            return list(await asyncio.gather(*(one(c) for c in candidates)))


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
    )
