"""The client's `max_tokens` bounds the answer of step-level strategies too: a chain of steps
ends there (issue 11: a very_hard beam search answered ~150 characters to `max_tokens: 8`)."""

from __future__ import annotations

import pytest

from strategies import REGISTRY, Budget
from tests.strategies.fakes import ScriptedGenerator, ScriptedPRM, problem

# every step is 6 tokens (one per character) and never final: only a limit ends a chain
STEPS = {"": ["step1 "], "step1 \n\n": ["step2 "], "step1 \n\nstep2 \n\n": ["step3 "]}
PARAMS = {
    "beam_search": {"width": 1, "expansions": 1, "max_depth": 3, "step_max_tokens": 6},
    "dvts": {"n": 1, "width": 1, "max_depth": 3, "step_max_tokens": 6},
    "mcts": {"simulations": 6, "branching": 1, "max_depth": 3, "step_max_tokens": 6},
    "draft_target": {"scorer": "verifier", "threshold": 0.5, "max_depth": 3,
                     "step_max_tokens": 6},
}


@pytest.mark.parametrize("name", list(PARAMS))
async def test_the_answer_never_exceeds_the_clients_max_tokens(name: str) -> None:
    gen = ScriptedGenerator(STEPS)
    budget = Budget(max_tokens_per_sample=6, max_answer_tokens=8)
    result = await REGISTRY[name].run(
        problem(), gen, ScriptedPRM(default=0.9), PARAMS[name], budget
    )
    assert result.text  # an answer, cut at the limit
    assert all(c.tokens <= 8 for c in result.candidates), [c.text for c in result.candidates]
    assert len(result.text.replace("\n\n", "")) <= 8, result.text
    assert result.finish_reason == "length"
    assert all(call.max_tokens <= 8 for call in gen.calls)


@pytest.mark.parametrize("name", list(PARAMS))
async def test_without_a_client_limit_chains_run_to_max_depth(name: str) -> None:
    gen = ScriptedGenerator(STEPS)
    result = await REGISTRY[name].run(
        problem(), gen, ScriptedPRM(default=0.9), PARAMS[name], Budget(max_tokens_per_sample=6)
    )
    assert "step3" in result.text  # the control: the limit above is what cut the chain
