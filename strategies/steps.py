"""Step-level search pieces shared by beam search, DVTS and MCTS: chains of steps, expansion
with a step delimiter, terminal detection, PRM scoring and speculative rejection.

Steps keep their delimiter, so `"".join(steps)` is always the solution text; a PRM client strips
it when it formats steps for the reward model.

A step is terminal when it carries a final-answer marker (`has_final_answer`), when the model
produced nothing more (end of sequence), when the chain reaches `max_depth`, or, with
`terminal: stop`, whenever the model stopped by itself (the delimiter is then the end of the
solution and steps are `step_max_tokens`-sized chunks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.vocab.errors import PolicyError
from strategies.aggregate import aggregate
from strategies.answers import extract_answer, has_final_answer
from strategies.base import Candidate, Generator, Sample, Verifier
from strategies.params import Spec
from strategies.runtime import RunContext


def split_steps(text: str, delimiter: str) -> list[str]:
    """Split keeping the delimiter on each piece but the last; `"".join` gives `text` back."""
    if not delimiter or delimiter not in text:
        return [text]
    parts = text.split(delimiter)
    out = [part + delimiter for part in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


@dataclass(frozen=True)
class Chain:
    steps: tuple[str, ...] = ()
    step_scores: tuple[float, ...] = ()
    value: float = 0.0
    done: bool = False
    tokens: int = 0
    origin: int = 0  # subtree id (DVTS) / beam lineage

    @property
    def text(self) -> str:
        return "".join(self.steps)

    def candidate(self, fmt: str) -> Candidate:
        text = self.text
        return Candidate(
            text=text,
            answer=extract_answer(text, fmt),
            score=self.value,
            tokens=self.tokens,
            steps=self.steps,
            step_scores=self.step_scores,
        )


async def expand(
    ctx: RunContext, generator: Generator, p: dict[str, Any], chain: Chain, m: int
) -> list[Chain]:
    """`m` one-step continuations of `chain` (unscored)."""
    delim: str = p["step_delimiter"]
    step_tokens: int = p["step_max_tokens"]
    left = ctx.answer_tokens_left(chain.tokens)  # the client's max_tokens bounds the chain
    if left is not None and left <= 0:
        return [Chain(chain.steps, chain.step_scores, chain.value, True, chain.tokens,
                      chain.origin)]
    batch = await ctx.extend(
        generator,
        chain.text,
        m,
        temperature=p["temperature"],
        max_tokens=step_tokens if left is None else min(step_tokens, left),
        stop=(delim, *p["stop"]) if delim else tuple(p["stop"]),
    )
    return [grow(chain, s, p, ctx.fmt, left) for s in batch.samples]


def grow(
    chain: Chain, s: Sample, p: dict[str, Any], fmt: str, left: int | None = None
) -> Chain:
    """`chain` plus the step `s` (unscored): the delimiter the stop sequence cut is put back,
    and the chain is marked done when the step is terminal (or, with `left`, the tokens the
    client's max_tokens left for the chain, when the step used them up)."""
    delim: str = p["step_delimiter"]
    text = s.text
    ended = not text.strip()
    steps = chain.steps if ended else (*chain.steps, text)
    if p.get("terminal") == "stop":  # the model stopping by itself ends the solution
        marker = s.finish_reason == "stop"
    else:
        marker = has_final_answer(text, fmt)
    full = left is not None and s.tokens >= left
    terminal = ended or marker or full or len(steps) >= p["max_depth"]
    if not terminal and s.finish_reason == "stop" and delim:
        steps = (*steps[:-1], text + delim)
    return Chain(steps=steps, done=terminal, tokens=chain.tokens + s.tokens, origin=chain.origin)


async def score_chains(
    ctx: RunContext, verifier: Verifier, chains: Sequence[Chain], how: str
) -> list[Chain]:
    if not chains:
        return []
    raw = await ctx.score(verifier, [c.steps or ("",) for c in chains])
    return [
        Chain(c.steps, tuple(s), aggregate(s, how), c.done, c.tokens, c.origin)
        for c, s in zip(chains, raw, strict=True)
    ]


def rejected(chain: Chain, p: dict[str, Any]) -> bool:
    """Speculative rejection: drop a chain scoring under `reject_below` after `reject_after`
    steps."""
    threshold = p["reject_below"]
    return (
        threshold is not None and len(chain.steps) >= p["reject_after"] and chain.value < threshold
    )


RESAMPLE: dict[str, Spec] = {
    "resample": Spec("bool", False),  # draw a fresh chain in place of each rejected one ...
    "max_resamples": Spec("int", 8, 1, 1024),  # ... at most this many per search (subtree)
}


async def resample(
    ctx: RunContext, generator: Generator, verifier: Verifier, p: dict[str, Any], want: int,
    origin: int,
) -> list[Chain]:
    """Up to `want` fresh first steps (scored), in place of chains that speculative rejection
    dropped, in one call. Budget-bounded: only as many as the tokens left cover at
    `2 x step_max_tokens` each, so resampling does not starve the surviving chains."""
    left = ctx.remaining_tokens()
    if left is not None:
        want = min(want, left // (2 * p["step_max_tokens"]))
    if want <= 0:
        return []
    fresh = await expand(ctx, generator, p, Chain(origin=origin), want)
    scored = await score_chains(ctx, verifier, fresh, p["aggregation"])
    ctx.note(kind="resample", n=len(scored), scores=[round(c.value, 4) for c in scored])
    return scored


def need_verifier(name: str, verifier: Verifier | None) -> Verifier:
    if verifier is None:
        raise PolicyError(f"strategy {name!r} needs a verifier (a PRM, judge or rollout value)")
    return verifier
