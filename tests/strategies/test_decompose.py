"""The decompose strategy on a scripted upstream: the split, the concurrency, the composition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from router.upstreams.base import Capabilities, Usage
from strategies import REGISTRY, Budget
from strategies.base import Batch, Problem, Sample
from strategies.decompose import parse_plan
from tests.strategies.fakes import problem

CHAT = Capabilities(chat=True, completions=False, n=True)
BASE = Capabilities(chat=False, completions=True, n=True)


@dataclass
class PromptGenerator:
    """Answers each call with `reply(prompt)`; records prompts and the peak concurrency."""

    reply: Callable[[str], str]
    capabilities: Capabilities = CHAT
    delay_s: float = 0.0
    prompts: list[str] = field(default_factory=list)
    max_tokens: list[int] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    models: list[str] = field(default_factory=list)
    model: str = "main"

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
        prompt = problem.question
        self.prompts.append(prompt)
        self.max_tokens.append(max_tokens)
        self.models.append(self.model)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        text = self.reply(prompt)
        samples = tuple(Sample(text, len(text)) for _ in range(n))
        return Batch(samples, Usage(len(prompt), n * len(text), calls=1))

    async def extend(self, problem: Problem, prefix: str, n: int, **kw: object) -> Batch:
        raise AssertionError("decompose never continues a prefix")


def arithmetic(prompt: str) -> str:
    if prompt.startswith("Split"):  # the chat planner
        return 'Sure: ["12+5", "3*4"]'
    if "Results of its sub-problems" in prompt:  # the chat composer
        return "17 + 12 = 29. The answer is 29."
    return {"12+5": "17", "3*4": "12"}.get(prompt, "?")


QUESTION = "What is 12+5, and 3*4? Then add the two results."


async def test_splits_solves_each_part_and_composes_from_the_sub_answers() -> None:
    gen = PromptGenerator(arithmetic)
    result = await REGISTRY["decompose"].run(
        problem(QUESTION), gen, None, {"trace": True}, Budget()
    )
    plan, first, second, compose = gen.prompts
    assert QUESTION in plan and "JSON list" in plan
    assert {first, second} == {"12+5", "3*4"}  # the chat `solve` template is the part itself
    assert "1. 12+5 -> 17" in compose and "2. 3*4 -> 12" in compose and QUESTION in compose
    assert result.text == "17 + 12 = 29. The answer is 29." and result.answer == "29"
    # every call is accounted: prompt chars + completion chars per call (fake tokens)
    assert result.usage.calls == 4
    assert result.usage.prompt_tokens == sum(len(p) for p in gen.prompts)
    events = result.trace["events"]  # type: ignore[index]
    assert [e["kind"] for e in events] == ["plan", "sub_problem", "sub_problem", "compose"]
    assert events[0]["parts"] == ["12+5", "3*4"]
    assert [(e["problem"], e["answer"]) for e in events[1:3]] == [("12+5", "17"), ("3*4", "12")]


async def test_sub_problems_run_concurrently() -> None:
    gen = PromptGenerator(arithmetic, delay_s=0.05)
    await REGISTRY["decompose"].run(problem(QUESTION), gen, None, {}, Budget())
    assert gen.peak == 2  # both sub-problems in flight at once (plan and compose are alone)


async def test_a_question_that_does_not_split_runs_as_one() -> None:
    for reply in ('["What is 2+2?"]', "I cannot split this."):
        gen = PromptGenerator(lambda p, r=reply: r if p.startswith("Split") else "4")  # type: ignore[misc]
        result = await REGISTRY["decompose"].run(
            problem("What is 2+2?"),
            gen,
            None,
            {"sub": {"strategy": "self_consistency", "params": {"n": 3, "round_size": 3}}},
            Budget(),
        )
        assert gen.prompts[1:] == ["What is 2+2?"]  # the question itself, no compose call
        assert result.answer == "4" and result.usage.calls == 2
        assert any("does not split" in n or "not a JSON list" in n for n in result.notes)


async def test_sub_strategy_and_its_params_come_from_the_policy() -> None:
    gen = PromptGenerator(arithmetic)
    params = {"sub": {"strategy": "self_consistency", "params": {"n": 4, "round_size": 4}}}
    result = await REGISTRY["decompose"].run(problem(QUESTION), gen, None, params, Budget())
    assert result.usage.calls == 4 and result.answer == "29"
    # self-consistency asked for n = 4 per sub-problem: 2 x 4 sub-answers' completion tokens
    assert result.usage.completion_tokens == len('Sure: ["12+5", "3*4"]') + 4 * 2 + 4 * 2 + len(
        "17 + 12 = 29. The answer is 29."
    )


async def test_completion_only_upstream_gets_the_few_shot_templates() -> None:
    def reply(prompt: str) -> str:
        if prompt.endswith("Sub-problems: ["):
            return '"23+45", "7*8"]'
        if "Known results" in prompt:
            return " 124"
        return " 68" if "23+45" in prompt else " 56"

    gen = PromptGenerator(reply, capabilities=BASE)
    result = await REGISTRY["decompose"].run(
        problem("a = 23+45, b = 7*8; what is a+b?"), gen, None, {}, Budget()
    )
    assert gen.prompts[1:3] == ["Question: 23+45\nAnswer:", "Question: 7*8\nAnswer:"]
    assert "23+45 = 68\n7*8 = 56\nAnswer:" in gen.prompts[3]
    assert result.answer == "124"


async def test_prompt_templates_are_overridable() -> None:
    seen: list[str] = []

    def reply(prompt: str) -> str:
        seen.append(prompt)
        return '["x", "y"]' if prompt.startswith("PLAN") else "ok"

    prompts = {
        "plan": "PLAN {question} into {max_parts}: {json}",
        "solve": "SOLVE {sub_problem}",
        "compose": "COMPOSE {question} {sub_answers}",
        "answer_line": "[{sub_problem}={sub_answer}]",
    }
    gen = PromptGenerator(reply)
    await REGISTRY["decompose"].run(
        problem("Q"), gen, None, {"prompts": prompts, "max_parts": 3}, Budget()
    )
    assert seen == ["PLAN Q into 3: {json}", "SOLVE x", "SOLVE y", "COMPOSE Q [x=ok]\n[y=ok]"]


async def test_sub_runs_share_the_budget_left_after_the_compose_reserve() -> None:
    gen = PromptGenerator(arithmetic)
    budget = Budget(max_tokens=1000, max_tokens_per_sample=512)
    await REGISTRY["decompose"].run(problem(QUESTION), gen, None, {"compose_reserve": 0.5}, budget)
    plan_tokens = len(gen.prompts[0]) + len('Sure: ["12+5", "3*4"]')
    share = int((1000 - plan_tokens) * 0.5) // 2
    assert gen.max_tokens[1:3] == [min(512, share)] * 2
    gen = PromptGenerator(arithmetic)
    await REGISTRY["decompose"].run(problem(QUESTION), gen, None, {"sub_token_budget": 40},
                                    Budget(max_tokens_per_sample=512))
    assert gen.max_tokens[1:3] == [40, 40]  # the policy's cap per sub-problem run


async def test_sub_model_usage_is_reported_for_its_own_price() -> None:
    class TwoModels(PromptGenerator):
        def with_model(self, name: str) -> PromptGenerator:
            twin = PromptGenerator(self.reply, model=name)
            self.twins.append(twin)
            return twin

    gen = TwoModels(arithmetic)
    gen.twins = []  # type: ignore[attr-defined]
    result = await REGISTRY["decompose"].run(
        problem(QUESTION), gen, None, {"sub": {"strategy": "greedy", "model": "small"}}, Budget()
    )
    small = gen.twins[0]  # type: ignore[attr-defined]
    assert small.prompts == ["12+5", "3*4"] and len(gen.prompts) == 2  # plan + compose
    assert result.model_usage["small"].calls == 2
    assert result.model_usage["small"].prompt_tokens == len("12+5") + len("3*4")
    assert result.usage.calls == 4


def test_parse_plan() -> None:
    assert parse_plan('["a", "b"]', 4) == (["a", "b"], None)
    assert parse_plan('"a", "b"]', 4) == (["a", "b"], None)  # the template opened the list
    assert parse_plan('["a", "b"', 4) == (["a", "b"], None)  # a stop sequence cut the close
    assert parse_plan('Parts: ["a", "a", " ", "b"] done', 4) == (["a", "b"], None)
    assert parse_plan('["a"]', 4)[0] == []
    assert parse_plan('["a", 3]', 4)[1] == "planner reply is not a JSON list of strings"
    assert parse_plan('["a", "b", "c"]', 2)[1] == "planner returned 3 sub-problems (max_parts 2)"


def test_params_are_checked() -> None:
    d = REGISTRY["decompose"]
    assert d.check_params({"sub": {"strategy": "beam_search", "params": {"width": 2}}}) == []
    sub = {"strategy": "best_of_n", "params": {"n": 4}}
    assert d.max_samples({"sub": sub, "max_parts": 3}) == 2 + 3 * 4
    errors = d.check_params(
        {
            "sub": {"strategy": "decompose", "extra": 1},
            "prompts": {"plan": "no placeholder", "nope": "x"},
        }
    )
    assert "sub: unknown key 'extra'" in errors
    assert any(e.startswith("sub.strategy must be one of") for e in errors)
    assert "prompts.plan must contain {question}" in errors
    assert any(e.startswith("prompts: unknown template 'nope'") for e in errors)
    assert d.check_params({"sub": {"strategy": "greedy", "params": {"n": 3}}})[0].startswith(
        "sub.params: unknown parameter 'n'"
    )
