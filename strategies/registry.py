"""The strategy registry and the one check the policy loader runs per (strategy, params)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from router.vocab.upstream import Capabilities
from strategies.base import Stage, Strategy
from strategies.beam_search import BeamSearch
from strategies.best_of_n import BestOfN
from strategies.cascade import Cascade
from strategies.decompose import Decompose
from strategies.draft_target import DraftTarget
from strategies.dvts import DVTS
from strategies.greedy import Greedy
from strategies.mcts import MCTS
from strategies.self_consistency import SelfConsistency
from strategies.thinking import Thinking


def build_registry() -> dict[str, Strategy]:
    registry: dict[str, Strategy] = {}
    for strategy in (
        Greedy(),
        SelfConsistency(),
        BestOfN(),
        BeamSearch(),
        DVTS(),
        MCTS(),
        Thinking(),
        DraftTarget(),
    ):
        registry[strategy.name] = strategy
    registry["cascade"] = Cascade(registry)
    registry["decompose"] = Decompose(registry)
    return registry


def stages_of(strategy: Strategy, params: Mapping[str, Any]) -> list[Stage]:
    """The parts a composite strategy may run (none for a plain one)."""
    stages = getattr(strategy, "stages", None)  # optional on the protocol: composites only
    return list(stages(params)) if stages is not None else []


def check_strategy(
    registry: Mapping[str, Strategy],
    name: str,
    params: Mapping[str, Any],
    capabilities_for: Callable[[str | None], Capabilities | None],
    *,
    has_verifier: bool = True,
) -> list[str]:
    """Everything wrong with running strategy `name` with `params`, for the policy loader.

    `capabilities_for(None)` gives the capabilities of the tier's own model,
    `capabilities_for(model_name)` those of another policy model (None: no such model).
    """
    strategy = registry.get(name)
    if strategy is None:
        return [f"unknown strategy {name!r} (valid: {', '.join(sorted(registry))})"]
    errors = strategy.check_params(params)
    if errors:
        return errors
    stages: list[tuple[str, Strategy, str | None]] = [("", strategy, None)]
    stages += [(f"{s.label}: ", s.strategy, s.model) for s in stages_of(strategy, params)]
    own_check = getattr(strategy, "check_capabilities", None)  # what only it knows to check
    if own_check is not None:
        errors += own_check(params, capabilities_for, has_verifier)
    for prefix, sub, model in stages:
        caps = capabilities_for(model)
        if caps is None:
            errors.append(f"{prefix}unknown model {model!r}")
            continue
        if sub.step_level and not caps.continues_partial:
            where = f"model {model!r}" if model else "the tier's model"
            errors.append(
                f"{prefix}strategy {sub.name!r} searches over steps and needs an upstream that "
                f"continues a partial solution (raw completions or assistant prefill); {where} "
                "has neither"
            )
        if sub.requires_verifier and not has_verifier:
            errors.append(f"{prefix}strategy {sub.name!r} needs a verifier (PRM, judge or rollout)")
    return errors
