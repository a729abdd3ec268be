"""Test-time-compute strategies, registered by name, with their verifiers.

    REGISTRY["best_of_n"].run(problem, generator, verifier, params, budget) -> Result

The policy loader checks a tier with `check_strategy(REGISTRY, name, params, capabilities_for)`
and its verifier with `check_verifier_options(kind, options)`; the pipeline builds verifiers
with `build_verifier(kind, options, upstream_for)` and generators with
`UpstreamGenerator(upstream, resolve=upstream_for)` (the resolver lets `cascade` escalate to
another model of the policy).
"""

from strategies.aggregate import AGGREGATIONS, aggregate
from strategies.answers import ANSWER_FORMATS, answers_equivalent, extract_answer, group_answers
from strategies.base import (
    AccountedVerifier,
    Batch,
    Budget,
    Candidate,
    Generator,
    LogprobGenerator,
    MultiModelGenerator,
    Problem,
    Result,
    Sample,
    SampleBound,
    Scored,
    Stage,
    Strategy,
    StreamsTokens,
    TakesClientParams,
    ThinkingGenerator,
    Verifier,
    implements,
)
from strategies.generator import UpstreamGenerator
from strategies.greedy import Greedy
from strategies.montecarlo import StepValue
from strategies.registry import build_registry, check_strategy, stages_of
from strategies.select import is_outcome, pick_outcome
from strategies.think import ThinkFilter, split_thinking
from strategies.verifiers import (
    VERIFIERS,
    VerifierFactory,
    build_verifier,
    check_verifier_options,
)

REGISTRY: dict[str, Strategy] = build_registry()

__all__ = [
    "AGGREGATIONS",
    "ANSWER_FORMATS",
    "REGISTRY",
    "VERIFIERS",
    "AccountedVerifier",
    "Batch",
    "Budget",
    "Candidate",
    "Generator",
    "Greedy",
    "LogprobGenerator",
    "MultiModelGenerator",
    "Problem",
    "Result",
    "Sample",
    "SampleBound",
    "Scored",
    "Stage",
    "StepValue",
    "Strategy",
    "StreamsTokens",
    "TakesClientParams",
    "ThinkFilter",
    "ThinkingGenerator",
    "UpstreamGenerator",
    "Verifier",
    "VerifierFactory",
    "aggregate",
    "answers_equivalent",
    "build_registry",
    "build_verifier",
    "check_strategy",
    "check_verifier_options",
    "extract_answer",
    "group_answers",
    "implements",
    "is_outcome",
    "pick_outcome",
    "split_thinking",
    "stages_of",
]
