"""Draft/target on scripted models: which steps are accepted, which the target rewrites, and
who is billed for what."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from router.errors import PolicyError
from router.upstreams.base import Capabilities, Usage
from strategies import REGISTRY, Budget, check_strategy
from strategies.base import Batch, Problem, Sample
from tests.strategies.fakes import ScriptedPRM, problem

CAPS = Capabilities(chat=False, completions=True, n=True, logprobs=True)
Step = tuple[str, float]  # text and the log-probability of each of its tokens (one per char)


@dataclass
class StepModel:
    """`script[prefix]` is the next step this model writes after `prefix`."""

    name: str
    script: Mapping[str, Step]
    capabilities: Capabilities = CAPS
    logprobs: bool = False
    calls: list[str] = field(default_factory=list)
    others: dict[str, StepModel] = field(default_factory=dict)

    def with_model(self, name: str) -> StepModel:
        return self.others[name]

    def with_logprobs(self) -> StepModel:
        self.logprobs = True
        return self

    async def sample(self, problem: Problem, n: int, **kw: object) -> Batch:
        raise AssertionError("draft/target only continues prefixes")

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
        self.calls.append(prefix)
        text, lp = self.script.get(prefix, ("", 0.0))
        lps = tuple([lp] * len(text)) if self.logprobs and text else None
        sample = Sample(text, len(text), "stop", token_logprobs=lps)
        return Batch((sample,), Usage(len(prefix) + 1, len(text), calls=1))


# the draft is confident on steps 1 and 3, unsure on step 2 (exp(-2) = 0.14 < 0.5)
DRAFT = {
    "": ("12+5=17", -0.05),
    "12+5=17\n": ("17*2=35", -2.0),
    "12+5=17\n17*2=34\n": ("Answer: 34", -0.01),
}
TARGET = {"12+5=17\n": ("17*2=34", -0.1)}
PARAMS = {"step_delimiter": "\n", "threshold": 0.5, "trace": True}


def models() -> tuple[StepModel, StepModel]:
    small = StepModel("small", DRAFT)
    big = StepModel("big", TARGET, others={"small": small})
    return big, small


async def test_unsure_draft_steps_are_rewritten_by_the_target() -> None:
    big, small = models()
    result = await REGISTRY["draft_target"].run(
        problem("q"), big, None, {**PARAMS, "draft_model": "small"}, Budget()
    )
    assert result.text == "12+5=17\n17*2=34\nAnswer: 34" and result.answer == "34"
    assert small.calls == ["", "12+5=17\n", "12+5=17\n17*2=34\n"]  # drafts every step
    assert big.calls == ["12+5=17\n"]  # writes only the rejected one
    steps = [e for e in result.trace["events"] if e["kind"] == "step"]  # type: ignore[index]
    assert [s["writer"] for s in steps] == ["draft", "target", "draft"]
    assert [s["score"] for s in steps] == [
        round(math.exp(-0.05), 4),
        round(math.exp(-2.0), 4),
        round(math.exp(-0.01), 4),
    ]
    assert "2 of 3 steps accepted from the draft (small)" in result.notes[0]
    # the draft's three calls are billed to `small`; the target's call stays the tier's
    draft_usage = result.model_usage["small"]
    assert draft_usage.calls == 3 and result.usage.calls == 4
    assert draft_usage.completion_tokens == len("12+5=17") + len("17*2=35") + len("Answer: 34")


async def test_threshold_decides_and_equal_scores_are_accepted() -> None:
    big, _ = models()
    params = {**PARAMS, "draft_model": "small", "threshold": math.exp(-2.0)}
    result = await REGISTRY["draft_target"].run(problem("q"), big, None, params, Budget())
    assert big.calls == [] and "17*2=35" in result.text  # every draft step kept
    big, _ = models()
    params["threshold"] = 0.99
    result = await REGISTRY["draft_target"].run(problem("q"), big, None, params, Budget())
    assert big.calls == [""]  # rewrites step 1 (and the scripted target stops there)
    assert result.notes[0].startswith("draft/target: 0 of")


async def test_verifier_scorer_rates_the_chain_with_the_new_step() -> None:
    big, _ = models()
    prm = ScriptedPRM(scores={"17*2=35": 0.1}, default=0.9)
    params = {**PARAMS, "draft_model": "small", "scorer": "verifier", "threshold": 0.6}
    result = await REGISTRY["draft_target"].run(problem("q"), big, prm, params, Budget())
    assert big.calls == ["12+5=17\n"] and result.answer == "34"
    assert [len(c[0]) for c in prm.calls] == [1, 2, 3]  # the chain so far plus the draft step


async def test_without_a_draft_model_both_roles_share_the_tier_model() -> None:
    same = StepModel("local", {**DRAFT})
    result = await REGISTRY["draft_target"].run(problem("q"), same, None, PARAMS, Budget())
    assert result.model_usage == {}  # one model: all billed at the tier's price
    # the unsure step is redrawn by the same model with the target settings
    assert same.calls.count("12+5=17\n") == 2


async def test_logprob_scorer_needs_logprobs() -> None:
    big, small = models()
    small.capabilities = Capabilities(chat=False, completions=True, logprobs=False)
    with pytest.raises(PolicyError, match="log-probabilities"):
        await REGISTRY["draft_target"].run(
            problem("q"), big, None, {**PARAMS, "draft_model": "small"}, Budget()
        )


def test_policy_checks_the_draft_model_can_continue_steps() -> None:
    chat_only = Capabilities(chat=True, completions=False, prefill=False, logprobs=True)

    def caps(name: str | None) -> Capabilities | None:
        return {None: CAPS, "small": chat_only}.get(name)

    errors = check_strategy(REGISTRY, "draft_target", {"draft_model": "small"}, caps)
    assert len(errors) == 1 and "draft: strategy 'draft_target' searches over steps" in errors[0]
    assert check_strategy(REGISTRY, "draft_target", {}, caps) == []
    no_logprobs = Capabilities(chat=False, completions=True, logprobs=False)
    assert check_strategy(REGISTRY, "draft_target", {}, lambda name: no_logprobs) == [
        "scorer: logprob needs log-probabilities; the tier's model does not return them "
        "(capabilities.logprobs)"
    ]
    assert check_strategy(
        REGISTRY, "draft_target", {"scorer": "verifier"}, caps, has_verifier=False
    ) == ["scorer: verifier needs a verifier on the tier"]
    assert REGISTRY["draft_target"].check_params({"scorer": "prm"}) == [
        "scorer must be one of logprob, verifier, got 'prm'"
    ]
