"""Beam search over reasoning steps, scored by a PRM.

Keep `width` (K) beams. The first expansion draws K*M first steps in one call; afterwards each
live beam is expanded with M (`expansions`) next steps, stopping at `step_delimiter`. Every
candidate is scored by the verifier and its step scores aggregated (`aggregation`); chains under
`reject_below` after `reject_after` steps are dropped (speculative rejection); terminal chains
are set aside as finished; the top K live chains by aggregated score (ties: generation order)
survive. The search stops when K chains have finished, none is alive, or `max_depth` is reached;
the answer is the best finished chain.

With `resample: true`, each chain rejected at a depth is replaced by a fresh first step (one
call for all of them, scored, then searched like the others), at most `max_resamples` per
search and only while the token budget covers them (`steps.resample`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strategies.base import Budget, Generator, Problem, Result, Verifier
from strategies.params import COMMON, STEP, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext, gather_all
from strategies.steps import (
    RESAMPLE,
    Chain,
    expand,
    need_verifier,
    rejected,
    resample,
    score_chains,
)

SPECS: dict[str, Spec] = {
    **COMMON,
    **STEP,
    **RESAMPLE,
    "width": Spec("int", 4, 1, 64),
    "expansions": Spec("int", 4, 1, 64),
}


class SearchState:
    """Finished, live and rejected chains of one search (one per DVTS subtree)."""

    def __init__(self, live: list[Chain]) -> None:
        self.live = live
        self.finished: list[Chain] = []
        self.rejected: list[Chain] = []
        self.resampled = 0  # fresh chains drawn in place of rejected ones

    def sort_into(self, chains: list[Chain], p: dict[str, Any]) -> list[Chain]:
        """File rejected and finished chains; return the ones still alive."""
        alive: list[Chain] = []
        for c in chains:
            if rejected(c, p):
                self.rejected.append(c)
            elif c.done:
                self.finished.append(c)
            else:
                alive.append(c)
        return alive

    def best(self) -> Chain | None:
        for pool in (self.finished, self.live, self.rejected):
            if pool:
                return max(pool, key=lambda c: c.value)
        return None

    def all(self) -> list[Chain]:
        return [*self.finished, *self.live, *self.rejected]


async def beam_steps(
    ctx: RunContext,
    generator: Generator,
    verifier: Verifier,
    p: dict[str, Any],
    state: SearchState,
    width: int,
    start_depth: int,
) -> None:
    """Run beam iterations on `state` in place until done (or `OutOfBudget` propagates)."""
    m: int = p["expansions"]
    for depth in range(start_depth, p["max_depth"]):
        if not state.live or len(state.finished) >= width:
            return
        if depth == 0 and len(state.live) == 1 and not state.live[0].steps:
            expansions = [await expand(ctx, generator, p, state.live[0], width * m)]
        else:
            expansions = await gather_all([expand(ctx, generator, p, c, m) for c in state.live])
        grown = [c for group in expansions for c in group]
        try:
            children = await score_chains(ctx, verifier, grown, p["aggregation"])
        except OutOfBudget:  # cut while scoring: the unscored steps are the answer so far
            state.finished += [c for c in grown if c.done]
            state.live = [c for c in grown if not c.done][:width] or state.live
            raise
        kept = state.sort_into(children, p)
        if p["resample"]:  # fresh chains in place of the ones just rejected
            lost = [c for c in children if rejected(c, p)]
            want = min(len(lost), p["max_resamples"] - state.resampled)
            fresh = await resample(ctx, generator, verifier, p, want, lost[0].origin if lost else 0)
            state.resampled += len(fresh)
            kept += state.sort_into(fresh, p)
        state.live = sorted(kept, key=lambda c: -c.value)[:width]
        ctx.note(
            kind="depth",
            depth=depth + 1,
            origin=state.live[0].origin if state.live else None,
            scores=[round(c.value, 4) for c in children],
            kept=[round(c.value, 4) for c in state.live],
            finished=len(state.finished),
            rejected=len(state.rejected),
            resampled=state.resampled,
        )


class BeamSearch:
    name = "beam_search"
    step_level = True
    requires_verifier = True

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def max_samples(self, params: Mapping[str, Any]) -> int:
        g = {**{k: s.default for k, s in SPECS.items()}, **params}
        fresh = int(g["max_resamples"]) if g["resample"] else 0
        return int(g["width"]) * int(g["expansions"]) * int(g["max_depth"]) + fresh

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
        state = SearchState([Chain()])
        try:
            await beam_steps(ctx, generator, v, p, state, p["width"], 0)
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
        best = state.best()
        chains = sorted(state.all(), key=lambda c: -c.value)
        return ctx.result(
            best.candidate(ctx.fmt) if best else None, [c.candidate(ctx.fmt) for c in chains]
        )
