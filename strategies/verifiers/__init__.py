"""Verifiers by kind, with option checks for the policy loader.

    VERIFIERS[kind].check(options) -> list[str]        # load time
    build_verifier(kind, options, upstream_for) -> Verifier | None

Kinds: prm_http (vLLM-served PRM), llm_judge (a policy model rates steps), rollout (Monte Carlo
value from a policy model), math_reference, code_tests (sandbox), answer_check (the request's
own check over the answer, in the sandbox), none. `needs` names what a request must carry for
the kind to work (`reference`, `tests`, `check`). `upstream_for(name)`
returns the `Upstream` of a policy model by name (judge and rollout kinds name one in
`options["model"]`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router.vocab.errors import PolicyError
from router.vocab.upstream import Upstream
from strategies.answers import ANSWER_FORMATS
from strategies.base import Verifier
from strategies.params import Spec, check

UpstreamFor = Callable[[str], Upstream]
# (options, question tokens, candidate tokens, steps per candidate) -> (input, output) tokens
# that scoring one candidate may cost at most; kinds that call no policy model spend none.
CostBound = Callable[[Mapping[str, Any], int, int, int], tuple[int, int]]


def _free(options: Mapping[str, Any], question: int, candidate: int, steps: int) -> tuple[int, int]:
    return 0, 0


@dataclass(frozen=True)
class VerifierFactory:
    kind: str
    specs: Mapping[str, Spec]
    make: Callable[[Mapping[str, Any], UpstreamFor], Verifier | None]
    required: tuple[str, ...] = ()
    model_keys: tuple[str, ...] = field(default=())
    needs: tuple[str, ...] = ()  # what a request must carry: "reference", "tests", "check"
    bound: CostBound = _free  # worst-case tokens of scoring one candidate (the reservation)

    def check(self, options: Mapping[str, Any]) -> list[str]:
        errors = [f"missing option {k!r}" for k in self.required if k not in options]
        return errors + check(options, self.specs)

    def models(self, options: Mapping[str, Any]) -> list[str]:
        """Policy model names this verifier calls (the loader checks they exist)."""
        return [str(options[k]) for k in self.model_keys if options.get(k)]

    def worst_tokens(
        self, options: Mapping[str, Any], question: int, candidate: int, steps: int
    ) -> tuple[int, int]:
        """Most (input, output) tokens scoring one candidate of `candidate` tokens in `steps`
        steps may spend on policy models (for the budget reservation)."""
        return self.bound(options, question, candidate, steps)

    def build(self, options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier | None:
        return self.make(options, upstream_for)


def _prm_http(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.verifiers.prm_http import build

    return build(options)


def _judge(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.verifiers.llm_judge import build

    return build(options, upstream_for(options["model"]))


def _rollout(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.generator import UpstreamGenerator
    from strategies.verifiers.rollout import build

    return build(options, UpstreamGenerator(upstream_for(options["model"])))


def _prm_bound(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    from strategies.verifiers.prm_http import worst_tokens

    return worst_tokens(options, question, candidate, steps)


def _judge_bound(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    from strategies.verifiers.llm_judge import worst_tokens

    return worst_tokens(options, question, candidate, steps)


def _rollout_bound(
    options: Mapping[str, Any], question: int, candidate: int, steps: int
) -> tuple[int, int]:
    from strategies.verifiers.rollout import worst_tokens

    return worst_tokens(options, question, candidate, steps)


def _math(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.verifiers.outcome import MathReference

    return MathReference(options.get("answer_format"))


def _code(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.verifiers.outcome import build_code_tests

    return build_code_tests(options)


def _answer_check(options: Mapping[str, Any], upstream_for: UpstreamFor) -> Verifier:
    from strategies.verifiers.answer_check import build_answer_check

    return build_answer_check(options)


def _none(options: Mapping[str, Any], upstream_for: UpstreamFor) -> None:
    return None


# The sandbox's limits, shared by the verifiers that run code in it.
_SANDBOX_LIMITS = {
    "timeout_s": Spec("float", lo=0.1, hi=120),
    "cpu_s": Spec("int", lo=1, hi=120),
    "memory_mb": Spec("int", lo=32, hi=16_384),
    "output_bytes": Spec("int", lo=1024, hi=10_000_000),
}

_FMT = Spec("str", None, choices=ANSWER_FORMATS)
VERIFIERS: dict[str, VerifierFactory] = {
    "prm_http": VerifierFactory(
        "prm_http",
        {
            "url": Spec("str"),
            "model": Spec("str"),
            "step_tag": Spec("str"),
            "format": Spec("str", choices=("messages", "raw")),
            "positive_index": Spec("int", lo=0, hi=16),
            "system": Spec("str"),
            "timeout_s": Spec("float", lo=0.1, hi=600),
            "max_concurrency": Spec("int", lo=1, hi=256),
            "api_key": Spec("str"),
        },
        _prm_http,
        required=("url", "model"),
        bound=_prm_bound,
    ),
    "llm_judge": VerifierFactory(
        "llm_judge",
        {
            "model": Spec("str"),
            "prompt": Spec("str"),
            "steps": Spec("str", choices=("each", "last")),
            "max_tokens": Spec("int", lo=1, hi=64),
            "max_concurrency": Spec("int", lo=1, hi=256),
        },
        _judge,
        required=("model",),
        model_keys=("model",),
        bound=_judge_bound,
    ),
    "rollout": VerifierFactory(
        "rollout",
        {
            "model": Spec("str"),
            "k": Spec("int", lo=1, hi=64),
            "temperature": Spec("float", lo=0, hi=2),
            "max_tokens": Spec("int", lo=1, hi=100_000),
            "stop": Spec("str_list"),
            "answer_format": _FMT,
            "use_reference": Spec("bool"),
        },
        _rollout,
        required=("model",),
        model_keys=("model",),
        bound=_rollout_bound,
    ),
    "math_reference": VerifierFactory(
        "math_reference", {"answer_format": _FMT}, _math, needs=("reference",)
    ),
    "code_tests": VerifierFactory(
        "code_tests",
        {
            **_SANDBOX_LIMITS,
            "max_concurrency": Spec("int", lo=1, hi=16),
            "total_s": Spec("float", lo=0.1, hi=600),
        },
        _code,
        needs=("tests",),
    ),
    "answer_check": VerifierFactory(
        "answer_check",
        {
            **_SANDBOX_LIMITS,
            "answer_format": _FMT,
        },
        _answer_check,
        needs=("check",),
    ),
    "none": VerifierFactory("none", {}, _none),
}


def check_verifier_options(kind: str, options: Mapping[str, Any]) -> list[str]:
    factory = VERIFIERS.get(kind)
    if factory is None:
        return [f"unknown verifier kind {kind!r} (valid: {', '.join(sorted(VERIFIERS))})"]
    return factory.check(options)


def build_verifier(
    kind: str, options: Mapping[str, Any], upstream_for: UpstreamFor
) -> Verifier | None:
    """The verifier for a policy's `verifier:` block (None for kind `none`). Options are
    assumed checked; an unknown kind raises `PolicyError`."""
    factory = VERIFIERS.get(kind)
    if factory is None:
        raise PolicyError(f"unknown verifier kind {kind!r} (valid: {', '.join(sorted(VERIFIERS))})")
    return factory.build(options, upstream_for)


__all__ = ["VERIFIERS", "VerifierFactory", "build_verifier", "check_verifier_options"]
