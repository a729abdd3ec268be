"""What a request carries to verify its answer, and how the plan uses it.

A request may carry a reference answer, code tests, a check over the answer and a verifier hint:

- OpenAI `/v1/chat/completions`: a top-level `ttc` object (the openai client sends it with
  `extra_body={"ttc": {...}}`) and/or `metadata` keys `ttc_reference`, `ttc_tests` (a Python
  test snippet), `ttc_tests_language`, `ttc_check` (a Python check snippet), `ttc_verifier`;
- Anthropic `/v1/messages`: `metadata.ttc` (the same object) and/or the same flat keys.

    "ttc": {"reference": "42",
            "tests": {"language": "python", "code": "assert add(1, 2) == 3",
                      "cases": [{"input": "2\\n", "output": "4"}], "entry_point": "add"},
            "check": {"language": "python", "code": "assert sorted(answer.split()) == ..."},
            "verifier": "tests"}

`check` is a snippet of asserts over the candidate's `answer` (a string) and `text`, run in
the sandbox by the `answer_check` verifier: what a right answer looks like, stated by the
request, for answers that are not programs (`strategies.verifiers.answer_check`).

Sizes and counts are limited (`LIMITS`); a bad value is a 400 naming the field (`ttc.tests.
cases[3].input`, `metadata.ttc_reference`). References and tests are never logged; the cache
key holds only their digest, under the requesting tenant.

Planning: a verifier declares what it needs (`VerifierFactory.needs`). When the tier's
verifier needs an input the request does not carry, the tier's `fallback` (a verifier and/or a
strategy) runs instead and a note says so; a request never fails for lack of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.errors import InvalidRequest
from strategies import Problem

if TYPE_CHECKING:
    from policies.schema import Policy, TierPolicy
    from router.planning import Call

LIMITS = {
    "reference_chars": 4096,
    "tests_chars": 65_536,
    "check_chars": 16_384,
    "cases": 64,
    "case_chars": 8192,
    "verifier_chars": 64,
}


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    input: str = Field("", max_length=LIMITS["case_chars"])
    output: str = Field(max_length=LIMITS["case_chars"])


class _Tests(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    language: Literal["python"]
    code: str | None = Field(None, min_length=1, max_length=LIMITS["tests_chars"])
    cases: list[_Case] | None = Field(None, min_length=1, max_length=LIMITS["cases"])
    entry_point: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    language: Literal["python"]
    code: str = Field(min_length=1, max_length=LIMITS["check_chars"])


class _Ttc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reference: str | None = Field(None, min_length=1, max_length=LIMITS["reference_chars"])
    tests: _Tests | None = None
    check: _Check | None = None
    verifier: str | None = Field(None, min_length=1, max_length=LIMITS["verifier_chars"])


@dataclass(frozen=True)
class Verification:
    """A request's verification inputs (never logged)."""

    reference: str | None = None
    tests: str | None = None
    io_tests: tuple[tuple[str, str], ...] = ()
    entry_point: str | None = None
    verifier: str | None = None
    check: str | None = None

    @property
    def carries(self) -> frozenset[str]:
        have = set()
        if self.reference is not None:
            have.add("reference")
        if self.tests or self.io_tests:
            have.add("tests")
        if self.check:
            have.add("check")
        return frozenset(have)

    def digest(self) -> str:
        """What the cache key holds: a digest, never the values."""
        raw = json.dumps(
            [self.reference, self.tests, self.io_tests, self.entry_point, self.verifier]
            + ([self.check] if self.check else [])
        )
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


METADATA_KEYS = {
    "ttc_reference": "reference",
    "ttc_tests": "code",
    "ttc_tests_language": "language",
    "ttc_check": "check",
    "ttc_verifier": "verifier",
}


def parse(ttc: Any, metadata: Mapping[str, Any] | None, where: str) -> Verification | None:
    """The verification inputs of a request: the `ttc` object (at `where`, e.g. `ttc` or
    `metadata.ttc`) merged over the flat `metadata` keys. None when there are none."""
    merged: dict[str, Any] = {}
    flat = {k: v for k, v in (metadata or {}).items() if k in METADATA_KEYS}
    for key, value in flat.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"metadata.{key} must be a string", param=f"metadata.{key}")
    if "ttc_reference" in flat:
        merged["reference"] = flat["ttc_reference"]
    if "ttc_verifier" in flat:
        merged["verifier"] = flat["ttc_verifier"]
    if "ttc_check" in flat:
        merged["check"] = {"language": "python", "code": flat["ttc_check"]}
    if "ttc_tests" in flat:
        merged["tests"] = {
            "language": flat.get("ttc_tests_language", "python"),
            "code": flat["ttc_tests"],
        }
    if ttc is not None:
        if not isinstance(ttc, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        merged.update(ttc)
    if not merged:
        return None
    try:
        spec = _Ttc.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        field = where + loc
        if ttc is None and err["loc"]:
            field = _flat_name(err["loc"])
        raise InvalidRequest(f"{field}: {err['msg']}", param=field) from None
    tests = spec.tests
    if tests is not None and tests.code is None and not tests.cases:
        raise InvalidRequest(f"{where}.tests needs `code` or `cases`", param=f"{where}.tests")
    return Verification(
        reference=spec.reference,
        tests=tests.code if tests else None,
        io_tests=tuple((c.input, c.output) for c in (tests.cases or [])) if tests else (),
        entry_point=tests.entry_point if tests else None,
        verifier=spec.verifier,
        check=spec.check.code if spec.check else None,
    )


def _flat_name(loc: tuple[Any, ...]) -> str:
    inner = {"reference": "ttc_reference", "verifier": "ttc_verifier", "check": "ttc_check"}
    if loc[0] == "tests":
        key = "ttc_tests_language" if len(loc) > 1 and loc[1] == "language" else "ttc_tests"
        return f"metadata.{key}"
    return f"metadata.{inner.get(str(loc[0]), str(loc[0]))}"


# -- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    strategy: str
    params: Mapping[str, Any]
    verifier: str | None
    notes: tuple[str, ...] = ()


def needs_of(policy: Policy, verifier: str | None) -> tuple[str, ...]:
    if verifier is None or verifier not in policy.verifiers:
        return ()
    from strategies import VERIFIERS

    factory = VERIFIERS.get(policy.verifiers[verifier].kind)
    return factory.needs if factory is not None else ()


def choose(policy: Policy, tp: TierPolicy, verification: Verification | None) -> Choice:
    """The tier's strategy, params and verifier given what the request carries: a verifier
    hint replaces the tier's verifier (sampling strategies only); a verifier whose inputs are
    missing gives way to the tier's fallback, with a note."""
    from strategies import REGISTRY

    strategy, params, verifier = tp.strategy, dict(tp.params), tp.verifier
    notes: list[str] = []
    hint = verification.verifier if verification else None
    if hint is not None:
        if hint != "none" and hint not in policy.verifiers:
            valid = ", ".join(["none", *sorted(policy.verifiers)])
            raise InvalidRequest(
                f"unknown verifier hint {hint!r}; valid: {valid}", param="ttc.verifier"
            )
        if REGISTRY[strategy].step_level:
            notes.append(f"verifier hint {hint!r} ignored: {strategy} needs its step verifier")
        else:
            verifier = None if hint == "none" else hint
    carries = verification.carries if verification else frozenset()
    missing = [n for n in needs_of(policy, verifier) if n not in carries]
    if missing:
        fb = tp.fallback
        what = " and ".join(missing)
        if fb is None:  # the loader refuses this for the tier's own verifier; a hint lands here
            notes.append(f"verifier {verifier!r} needs {what}; the request has none: unverified")
            return Choice(strategy, params, None, tuple(notes))
        ran = []
        wanted_verifier = verifier
        verifier = fb.verifier
        ran.append(f"verifier {fb.verifier!r}" if fb.verifier else "no verifier")
        if fb.strategy is not None:
            strategy, params = fb.strategy, dict(fb.params)
            ran.append(f"strategy {fb.strategy!r}")
        wanted = wanted_verifier
        notes.append(
            f"verifier {wanted!r} needs {what}, which the request does not carry: "
            f"ran the fallback ({', '.join(ran)})"
        )
    return Choice(strategy, params, verifier, tuple(notes))


__all__ = ["LIMITS", "Choice", "Verification", "choose", "needs_of", "parse", "problem_for"]


def problem_for(call: Call) -> Problem:
    """The strategies' problem: the conversation plus what the request carries to verify it
    (tests make it a code problem: answers are the last fenced code block)."""
    v = call.verification
    if v is None:
        return Problem(messages=call.messages)
    return Problem(
        messages=call.messages,
        reference=v.reference,
        tests=v.tests,
        io_tests=v.io_tests,
        entry_point=v.entry_point,
        check=v.check,
        answer_format="code" if (v.tests or v.io_tests) else "auto",
    )
