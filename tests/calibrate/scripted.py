"""A scripted result set: outcomes fixed per (configuration, item), no model."""

from __future__ import annotations

from router.calibrate import EvalItem, GridConfig, Outcome
from router.upstreams.base import Message, Usage

GREEDY = GridConfig.make("greedy", {"temperature": 0.0})
SC4 = GridConfig.make("self_consistency", {"n": 4})
BON4 = GridConfig.make("best_of_n", {"n": 4, "mode": "plain"}, "math_reference")
BON16 = GridConfig.make("best_of_n", {"n": 16, "mode": "plain"}, "math_reference")
SC16 = GridConfig.make("self_consistency", {"n": 16})
CONFIGS = [GREEDY, SC4, BON4, BON16, SC16]

# (tokens per run, correct easy items out of 4, correct hard items out of 4)
SCRIPT = {
    GREEDY: (10, 3, 0),
    SC4: (40, 4, 1),
    BON4: (40, 3, 2),
    BON16: (160, 4, 3),
    SC16: (200, 4, 2),
}


def items(with_tiers: bool = True) -> list[EvalItem]:
    out = []
    for tier, prefix in (("easy", "e"), ("hard", "h")):
        for i in range(4):
            q = f"{prefix}{i}: what is {i}+{i}?"
            out.append(
                EvalItem(
                    id=f"{prefix}{i}",
                    question=q,
                    messages=(Message("user", q),),
                    reference=str(2 * i),
                    tier=None if not with_tiers else __import__("classifier").Tier(tier),
                )
            )
    return out


class ScriptedRun:
    """`RunFn`: item i of a tier is correct when i < the scripted count; counts its calls.
    Every run reports 4 candidates, `candidates_correct` from `solve` (item id -> 0..4)."""

    def __init__(self, solve: dict[str, int] | None = None, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.solve = solve or {}
        self.fail = fail or set()

    async def __call__(self, config: GridConfig, item: EvalItem, repeat: int) -> Outcome:
        self.calls.append((config.label, item.id, repeat))
        if item.id in self.fail:
            raise RuntimeError("scripted failure")
        tokens, easy, hard = SCRIPT[config]
        index = int(item.id[1:])
        correct = index < (easy if item.id.startswith("e") else hard)
        return Outcome(
            correct=correct,
            answer=item.reference if correct else "wrong",
            usage=Usage(prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2,
                        calls=1),
            usd=tokens * 1e-6,
            latency_s=0.01,
            candidates=4,
            candidates_correct=self.solve.get(item.id, 4 if correct else 0),
        )
