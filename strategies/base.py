"""The strategy seam: every strategy has one signature and returns a `Result`.

    result = await strategy.run(problem, generator, verifier, params, budget)

Strategies never mutate their inputs, never talk to an SDK (only to a `Generator`), and are
registered by name in `strategies.REGISTRY`, which the policy loader checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from router.vocab.upstream import Capabilities, Message, Usage


@dataclass(frozen=True)
class Problem:
    """What to solve: the conversation, plus optional ground truth for checkers."""

    messages: tuple[Message, ...]
    reference: str | None = None  # reference answer (calibration, benchmarks, requests)
    tests: str | None = None  # code tests run by the sandbox checker (a Python snippet)
    io_tests: tuple[tuple[str, str], ...] = ()  # code tests as (stdin, expected stdout) pairs
    entry_point: str | None = None  # the function a HumanEval-style `check(candidate)` tests
    check: str | None = None  # a Python snippet of asserts over `answer` (answer_check verifier)
    answer_format: str = "auto"  # answer extractor name

    @property
    def has_tests(self) -> bool:
        return bool(self.tests) or bool(self.io_tests)

    @property
    def question(self) -> str:
        """The last user message: what the answer is checked against."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


@dataclass(frozen=True)
class Sample:
    text: str
    tokens: int
    finish_reason: str = "stop"
    token_logprobs: tuple[float, ...] | None = None  # only from a `LogprobGenerator`
    reasoning: str | None = None  # thinking the upstream returned apart from the text


@dataclass(frozen=True)
class Batch:
    """Samples from one or more upstream calls, with the usage they cost."""

    samples: tuple[Sample, ...]
    usage: Usage
    failed: int = 0  # samples lost to upstream errors (the rest still answered)


@runtime_checkable
class Generator(Protocol):
    """Samples solutions for a problem. Wraps an upstream and its prompt format."""

    capabilities: Capabilities

    async def sample(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch: ...

    async def extend(
        self,
        problem: Problem,
        prefix: str,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
    ) -> Batch:
        """Continue a partial solution `prefix` (step-level strategies)."""
        ...


@runtime_checkable
class Verifier(Protocol):
    """Scores candidate solutions, one list of per-step scores (in [0, 1]) per candidate.

    Outcome verifiers return a single score per candidate.
    """

    async def score(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> list[list[float]]: ...


@dataclass(frozen=True)
class Scored:
    """Scores plus what computing them cost (judge and rollout verifiers call models)."""

    scores: list[list[float]]
    usage: Usage = field(default_factory=Usage)
    notes: tuple[str, ...] = ()  # what the client should know (e.g. a sandbox limit reached)
    model: str | None = None  # the policy model that spent `usage` (billed at its price)


@runtime_checkable
class AccountedVerifier(Verifier, Protocol):
    """A verifier that spends tokens reports them; strategies add them to `Result.usage`."""

    async def score_accounted(
        self, problem: Problem, candidates: Sequence[Sequence[str]]
    ) -> Scored: ...


@runtime_checkable
class ThinkingGenerator(Generator, Protocol):
    """A generator whose upstream takes a native thinking budget (Anthropic `budget_tokens`,
    OpenAI `reasoning_effort`)."""

    async def think(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        budget_tokens: int | None = None,
        reasoning_effort: str | None = None,
    ) -> Batch: ...


@runtime_checkable
class MultiModelGenerator(Generator, Protocol):
    """A generator that can hand out a generator for another model of the policy, by its
    policy name (the cascade strategy escalates through it)."""

    def with_model(self, name: str) -> Generator: ...


@runtime_checkable
class LogprobGenerator(Generator, Protocol):
    """A generator that can hand out a twin whose samples carry per-token log-probabilities
    (`Sample.token_logprobs`; the draft/target strategy scores draft steps with them)."""

    def with_logprobs(self) -> Generator: ...


@dataclass(frozen=True)
class Budget:
    """Hard limits for one run. `None` means unlimited."""

    max_tokens: int | None = None  # total tokens over every call of the run
    deadline_s: float | None = None  # wall-clock seconds from the start of the run
    max_tokens_per_sample: int = 512
    # the client's own limit on the answer (`max_tokens`): step-level strategies end a chain of
    # steps there, so a search answer is never longer than a single sample could be
    max_answer_tokens: int | None = None


@dataclass(frozen=True)
class Candidate:
    text: str
    answer: str | None = None
    score: float | None = None  # aggregated verifier score (or vote share without a verifier)
    tokens: int = 0
    steps: tuple[str, ...] = ()  # step-level strategies: the chain, one entry per step
    step_scores: tuple[float, ...] = ()  # per-step verifier scores, when a PRM scored them


@dataclass(frozen=True)
class Result:
    """What a strategy returns. `anytime` is True when a budget or deadline cut the run;
    `stopped` says which ("deadline", "tokens", "upstream": samples lost to upstream errors)."""

    text: str
    strategy: str
    answer: str | None = None
    candidates: tuple[Candidate, ...] = ()
    usage: Usage = field(default_factory=Usage)
    anytime: bool = False
    finish_reason: str = "stop"
    trace: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    score: float | None = None  # the chosen answer's score (verifier score or vote share)
    # usage spent on policy models other than the request's own, by model name (also counted
    # in `usage`); the pipeline bills each at its own price
    model_usage: Mapping[str, Usage] = field(default_factory=dict)
    reasoning: str | None = None  # the chosen answer's thinking, when it came apart from it
    stopped: str | None = None


class Stage(NamedTuple):
    """One part a composite strategy may run: its label, strategy, params and the policy model
    it runs on (None: the tier's own)."""

    label: str
    strategy: Strategy
    params: Mapping[str, Any]
    model: str | None = None


@runtime_checkable
class SampleBound(Protocol):
    """A strategy whose samples are not bounded by the prompt and the tier's per-sample token
    limit alone (thinking: a thinking budget, re-sent before the answer). The planner's worst
    case asks it."""

    def sample_bound(self, params: Mapping[str, Any], max_tokens: int) -> tuple[int, int]:
        """(tokens re-sent on top of the prompt, tokens generated) per sample, at most."""
        ...


@runtime_checkable
class StreamsTokens(Protocol):
    """A strategy whose answer is one sample sent as it is: the service streams that sample's
    tokens straight to the client (others send keep-alives, then the chosen answer)."""

    def stream_params(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """The sampling params of the one streamed call (temperature, stop, seed)."""
        ...


@runtime_checkable
class TakesClientParams(Protocol):
    """A strategy that honours some of the client's own knobs (temperature, seed, stop, a
    thinking budget); the planner merges them into the policy's params through it."""

    def client_params(
        self, params: Mapping[str, Any], client: Mapping[str, Any]
    ) -> dict[str, Any]: ...


class Strategy(Protocol):
    name: str
    step_level: bool  # needs Capabilities.continues_partial
    requires_verifier: bool  # the loader refuses a tier without one

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        """Problems with `params` (unknown keys, out of range), for the policy loader."""
        ...

    def max_samples(self, params: Mapping[str, Any]) -> int:
        """Worst-case number of generated sequences (each up to the sample token limit),
        for the budget reservation."""
        ...

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result: ...


_CONFORMS: dict[tuple[type, type], bool] = {}  # (class, protocol) -> conforms


def implements(obj: object, protocol: type) -> bool:
    """`isinstance(obj, protocol)` for the method-only protocols above, answered once per
    class: Python's runtime protocol check walks the protocol's members on every call, and
    the planner asks several times a request (`router.planning`, `router.worstcase`)."""
    key = (type(obj), protocol)
    known = _CONFORMS.get(key)
    if known is None:
        known = _CONFORMS[key] = issubclass(key[0], protocol)
    return known
