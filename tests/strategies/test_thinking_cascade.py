"""Thinking budgets, the cascade, registry and parameter checks."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

import strategies
from router.errors import PolicyError
from router.upstreams.base import Capabilities, Usage
from strategies import REGISTRY, Batch, Budget, Problem, Sample, check_strategy
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

B = Budget(max_tokens_per_sample=256)
NAMES = {
    "greedy",
    "self_consistency",
    "best_of_n",
    "beam_search",
    "dvts",
    "mcts",
    "thinking",
    "cascade",
    "decompose",
    "draft_target",
}


def test_registry_names_and_step_level_flags() -> None:
    assert set(REGISTRY) == NAMES
    assert {n for n, s in REGISTRY.items() if s.step_level} == {
        "beam_search",
        "dvts",
        "mcts",
        "draft_target",
    }
    for name in strategies.__all__:
        assert getattr(strategies, name) is not None


async def test_budget_forcing_cuts_thinking_and_asks_for_the_answer() -> None:
    thinking = "<think>" + "hmm " * 10
    cut = thinking[:20].rstrip()  # what a 20-token budget leaves (one token per character)
    gen = ScriptedGenerator({"": [(thinking, "length")], cut + "\n</think>\n\n": ["Answer: 3"]})
    result = await REGISTRY["thinking"].run(problem(), gen, None, {"budget_tokens": 20}, B)
    assert gen.calls[0].max_tokens == 20 and gen.calls[0].stop == ("</think>",)
    assert gen.calls[1].prefix.endswith("\n</think>\n\n")
    assert result.answer == "3" and result.text == "Answer: 3"
    assert result.usage.reasoning_tokens == 20 and result.usage.completion_tokens == 9
    assert "thinking cut at the budget" in result.notes


async def test_an_answer_without_thinking_is_billed_as_the_answer() -> None:
    gen = ScriptedGenerator({"": [("Answer: 4", "stop")]})
    result = await REGISTRY["thinking"].run(problem(), gen, None, {"budget_tokens": 20}, B)
    assert len(gen.calls) == 1 and result.answer == "4"
    assert result.notes == ("answered without thinking",)
    assert result.usage.reasoning_tokens == 0 and result.usage.completion_tokens == 9


@dataclass
class NativeThinker:
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat=True, thinking=True)
    )
    seen: list[tuple[int | None, str | None]] = field(default_factory=list)

    async def sample(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> Batch:
        raise AssertionError("native thinking must go through think()")

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
        raise AssertionError("unused")

    async def think(
        self,
        problem: Problem,
        n: int,
        *,
        temperature: float,
        max_tokens: int,
        budget_tokens: int | None = None,
        reasoning_effort: str | None = None,
    ) -> Batch:
        self.seen.append((budget_tokens, reasoning_effort))
        return Batch((Sample("Answer: 8", 9),), Usage(5, 9, 100, calls=1))


async def test_native_thinking_passes_the_budget_through() -> None:
    gen = NativeThinker()
    params = {"budget_tokens": 2048, "reasoning_effort": "high"}
    result = await REGISTRY["thinking"].run(problem(), gen, None, params, B)
    assert gen.seen == [(2048, "high")] and result.answer == "8"
    assert result.usage.reasoning_tokens == 100


@dataclass
class TwoModels(ScriptedGenerator):
    others: dict[str, ScriptedGenerator] = field(default_factory=dict)

    def with_model(self, name: str) -> ScriptedGenerator:
        return self.others[name]


async def test_cascade_keeps_a_confident_draft() -> None:
    big = ScriptedGenerator({"": ["Answer: 99"]})
    gen = TwoModels({"": ["good Answer: 1"]}, others={"big": big})
    prm = ScriptedPRM({"good Answer: 1": 0.9})
    params = {"escalate": {"strategy": "best_of_n", "params": {"n": 2}, "model": "big"}}
    result = await REGISTRY["cascade"].run(problem(), gen, prm, params, B)
    assert result.answer == "1" and big.calls == [] and result.usage.calls == 1


async def test_cascade_escalates_to_the_second_model_under_threshold() -> None:
    big = ScriptedGenerator({"": ["Answer: 2"]})
    gen = TwoModels({"": ["weak Answer: 1"]}, others={"big": big})
    prm = ScriptedPRM({"weak Answer: 1": 0.1, "Answer: 2": 0.8})
    params = {
        "threshold": 0.5,
        "escalate": {"strategy": "best_of_n", "params": {"n": 2}, "model": "big"},
    }
    result = await REGISTRY["cascade"].run(problem(), gen, prm, params, B)
    assert result.answer == "2" and [c.n for c in big.calls] == [2]
    assert result.usage.calls == 2 and len(result.candidates) == 3
    assert result.notes[0].startswith("escalated to best_of_n on big")


async def test_cascade_needs_a_model_switching_generator_to_escalate_to_a_model() -> None:
    gen = ScriptedGenerator({"": ["weak Answer: 1"]})
    params = {"escalate": {"strategy": "greedy", "model": "big"}}
    with pytest.raises(PolicyError, match="cannot switch models"):
        await REGISTRY["cascade"].run(problem(), gen, ScriptedPRM(default=0.0), params, B)


def test_check_params_reports_unknown_keys_and_ranges() -> None:
    errors = REGISTRY["best_of_n"].check_params({"n": 0, "mdoe": "x", "temperature": "hot"})
    assert any("unknown parameter 'mdoe'" in e for e in errors)
    assert any("n must be >= 1" in e for e in errors)
    assert any("temperature must be a number" in e for e in errors)
    assert REGISTRY["mcts"].check_params({"simulations": 4, "exploration": 1.0}) == []
    cascade = REGISTRY["cascade"].check_params(
        {"draft": {"strategy": "gredy"}, "escalate": {"strategy": "best_of_n", "params": {"n": -1}}}
    )
    assert any("draft.strategy must be one of" in e for e in cascade)
    assert any(e.startswith("escalate.params: n must be >= 1") for e in cascade)
    assert (
        REGISTRY["cascade"].max_samples(
            {
                "draft": {"strategy": "greedy"},
                "escalate": {"strategy": "best_of_n", "params": {"n": 4}},
            }
        )
        == 5
    )


def test_check_strategy_refuses_step_level_search_on_a_chat_only_upstream() -> None:
    chat_only = Capabilities(chat=True)
    caps = {None: chat_only, "raw": Capabilities(completions=True)}
    errors = check_strategy(REGISTRY, "beam_search", {}, caps.get)
    assert len(errors) == 1 and "continues a partial solution" in errors[0]
    assert check_strategy(REGISTRY, "beam_search", {}, lambda m: caps["raw"]) == []
    assert "unknown strategy" in check_strategy(REGISTRY, "beem", {}, caps.get)[0]
    nested = {"escalate": {"strategy": "mcts", "model": "nope"}}
    assert check_strategy(REGISTRY, "cascade", nested, caps.get) == [
        "escalate: unknown model 'nope'"
    ]
    assert (
        "needs a verifier"
        in check_strategy(REGISTRY, "mcts", {}, lambda m: caps["raw"], has_verifier=False)[0]
    )
