"""Monte Carlo step labels for training a process reward model (PRM).

For a question with a reference answer: sample `chains` solutions, split each into steps at
`step_delimiter`, and label every step by the `k` completions of the chain up to and including
it (`strategies.montecarlo.estimate`, the estimator the `rollout` verifier scores with):

    soft label = share of the k completions whose final answer matches the reference
    hard label = at least one of them does

The last step of a chain is labelled by the chain itself (its own final answer, checked against
the reference): nothing is left to complete. This is the completion-based labelling of
Math-Shepherd (Wang et al., 2024).

One output row per chain, in the stepwise-supervision format of TRL's `PRMTrainer`
(`prompt`, `completions`, `labels`; see `ROW_FIELDS`), plus fields TRL does not read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.vocab.upstream import Usage
from strategies.answers import AnswerMatcher, extract_answer
from strategies.base import Generator, Problem
from strategies.generator import render_transcript
from strategies.montecarlo import StepValue, estimate
from strategies.steps import split_steps

ROW_FIELDS = {
    "prompt": "the problem as the model saw it (str)",
    "completions": "the chain's steps in order, delimiter stripped (list[str])",
    "labels": "hard labels, one per step: some completion from this step is correct (list[bool])",
    "soft_labels": "share of the k completions from this step that are correct (list[float])",
    "id": "the data item's id (str)",
    "chain": "index of the chain among the item's samples (int)",
    "reference": "the reference answer (str)",
    "answer": "the chain's own final answer (str | null)",
    "correct": "the chain's final answer matches the reference (bool)",
    "k": "completions per step (int)",
    "usage": "tokens spent on this chain and its rollouts: [prompt, completion, calls]",
}


@dataclass(frozen=True)
class LabelSettings:
    chains: int = 4
    k: int = 8
    temperature: float = 0.7
    max_tokens: int = 512  # per chain and per completion
    step_delimiter: str = "\n"
    stop: tuple[str, ...] = ()
    answer_format: str | None = None  # default: the item's


@dataclass(frozen=True)
class LabelledChain:
    steps: tuple[str, ...]
    values: tuple[StepValue, ...]  # one per step but the last
    answer: str | None
    correct: bool
    usage: Usage

    @property
    def soft(self) -> list[float]:
        return [v.soft for v in self.values] + [1.0 if self.correct else 0.0]

    @property
    def hard(self) -> list[bool]:
        return [v.hard for v in self.values] + [self.correct]

    def row(self, problem: Problem, item_id: str, index: int, k: int) -> dict[str, Any]:
        u = self.usage
        return {
            "prompt": render_transcript(problem.messages),
            "completions": [s.strip() for s in self.steps],
            "labels": self.hard,
            "soft_labels": [round(x, 6) for x in self.soft],
            "id": item_id,
            "chain": index,
            "reference": problem.reference,
            "answer": self.answer,
            "correct": self.correct,
            "k": k,
            "usage": [u.prompt_tokens, u.completion_tokens, u.calls],
        }


async def label_chain(
    generator: Generator, problem: Problem, text: str, s: LabelSettings, usage: Usage
) -> LabelledChain | None:
    """Label the steps of one sampled solution `text` (None when it has no step at all)."""
    fmt = s.answer_format or problem.answer_format
    steps = [st for st in split_steps(text, s.step_delimiter) if st.strip()]
    if not steps:
        return None
    # re-join without blank steps so each prefix is what the model would continue from
    prefixes = ["".join(steps[: i + 1]) for i in range(len(steps) - 1)]
    values = await asyncio.gather(
        *(
            estimate(
                generator,
                problem,
                prefix,
                s.k,
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                stop=s.stop,
                answer_format=fmt,
                use_reference=True,
            )
            for prefix in prefixes
        )
    )
    answer = extract_answer(text, fmt)
    correct = AnswerMatcher().equivalent(answer, problem.reference)
    for v in values:
        usage = usage + v.usage
    return LabelledChain(tuple(steps), tuple(values), answer, correct, usage)


async def label_problem(
    generator: Generator, problem: Problem, s: LabelSettings
) -> list[tuple[int, LabelledChain]]:
    """Sample `s.chains` solutions in one call and label each (chains without any step are
    dropped). The sampling call's usage is split evenly over the chains."""
    if problem.reference is None:
        raise ValueError("Monte Carlo step labels need a reference answer")
    batch = await generator.sample(
        problem, s.chains, temperature=s.temperature, max_tokens=s.max_tokens, stop=s.stop
    )
    n = max(len(batch.samples), 1)
    u = batch.usage
    share = Usage(u.prompt_tokens // n, u.completion_tokens // n, u.reasoning_tokens // n)
    chains = await asyncio.gather(
        *(label_chain(generator, problem, smp.text, s, share) for smp in batch.samples)
    )
    return [(i, c) for i, c in enumerate(chains) if c is not None]


def summarise(rows: Sequence[dict[str, Any]], bins: int = 5) -> dict[str, Any]:
    """Label distribution over output rows: steps, hard-positive share, soft-label histogram,
    chain accuracy, tokens."""
    soft = [x for r in rows for x in r["soft_labels"]]
    hard = [b for r in rows for b in r["labels"]]
    edges = [i / bins for i in range(bins + 1)]
    counts = [0] * bins
    for x in soft:
        counts[min(int(x * bins), bins - 1)] += 1
    prompt = sum(r["usage"][0] for r in rows)
    completion = sum(r["usage"][1] for r in rows)
    return {
        "items": len({r["id"] for r in rows}),
        "chains": len(rows),
        "steps": len(hard),
        "chains_correct": sum(bool(r["correct"]) for r in rows) / len(rows) if rows else 0.0,
        "hard_positive": sum(hard) / len(hard) if hard else 0.0,
        "soft_mean": sum(soft) / len(soft) if soft else 0.0,
        "soft_histogram": {
            f"[{edges[i]:.1f},{edges[i + 1]:.1f}{']' if i == bins - 1 else ')'}": counts[i]
            for i in range(bins)
        },
        "prompt_tokens": prompt,
        "completion_tokens": completion,
    }
