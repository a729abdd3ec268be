"""Diverse verifier tree search (DVTS): `n` beams split into n/`width` independent subtrees.

One call draws one first step per subtree; each subtree then runs its own beam search of width
`width` (M `expansions` per beam) from that step, concurrently, sharing nothing but the budget.
The answer is the best finished chain across subtrees. More diverse than one beam of width n,
whose top-K selection tends to collapse onto one line of reasoning. `resample` works as in beam
search, per subtree (fresh chains join the subtree whose chain was rejected).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.base import Budget, Generator, Problem, Result, Verifier
from strategies.beam_search import SearchState, beam_steps
from strategies.params import COMMON, STEP, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext, gather_all
from strategies.steps import RESAMPLE, Chain, expand, need_verifier, rejected, score_chains

SPECS: dict[str, Spec] = {
    **COMMON,
    **STEP,
    **RESAMPLE,
    "n": Spec("int", 16, 1, 1024),
    "width": Spec("int", 4, 1, 64),
    "expansions": Spec("int", 4, 1, 64),
}


class DVTS:
    name = "dvts"
    step_level = True
    requires_verifier = True

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        errors = check(params, SPECS)
        n, width = params.get("n", 16), params.get("width", 4)
        if not errors and n < width:
            errors.append(f"n ({n}) must be at least width ({width})")
        return errors

    def max_samples(self, params: Mapping[str, Any]) -> int:
        g = {**{k: s.default for k, s in SPECS.items()}, **params}
        subtrees = max(1, int(g["n"]) // int(g["width"]))
        fresh = subtrees * int(g["max_resamples"]) if g["resample"] else 0
        per_tree = int(g["width"]) * int(g["expansions"]) * int(g["max_depth"])
        return subtrees + subtrees * per_tree + fresh

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        p = resolve(params, SPECS)
        v = need_verifier(self.name, verifier)
        ctx = RunContext(self.name, budget, p, problem)
        subtrees = max(1, p["n"] // p["width"])
        states: list[SearchState] = []
        try:
            roots = await expand(ctx, generator, p, Chain(), subtrees)
            roots = await score_chains(ctx, v, roots, p["aggregation"])
            for i, root in enumerate(roots):
                tagged = Chain(root.steps, root.step_scores, root.value, root.done, root.tokens, i)
                state = SearchState([])
                if rejected(tagged, p):
                    state.rejected.append(tagged)
                elif tagged.done:
                    state.finished.append(tagged)
                else:
                    state.live.append(tagged)
                states.append(state)
            await gather_all([beam_steps(ctx, generator, v, p, s, p["width"], 1) for s in states])
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
        bests = [b for b in (s.best() for s in states) if b is not None]
        best = max(bests, key=lambda c: c.value) if bests else None
        chains = sorted((c for s in states for c in s.all()), key=lambda c: -c.value)
        return ctx.result(
            best.candidate(ctx.fmt) if best else None,
            [c.candidate(ctx.fmt) for c in chains],
            notes=(f"{subtrees} subtrees of width {p['width']}",),
        )
