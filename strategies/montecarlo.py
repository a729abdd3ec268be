"""The Monte Carlo value of a partial solution: sample `k` completions of the prefix and count
how many reach the target answer.

One estimator, two uses: online, the `rollout` verifier scores partial chains during search
with it; offline, `ttc-router prm-labels` labels the steps of sampled chains with it to train a
process reward model (the completion-based step labels of Math-Shepherd, Wang et al., 2024).

The target is the problem's reference answer when there is one and `use_reference` is on;
otherwise the answer most completions agree on (so the value is the majority's share).
`soft` = hits / k, the estimated probability that the prefix still leads to the target;
`hard` = hits > 0, "some continuation of this prefix is correct".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from router.vocab.upstream import Usage
from strategies.answers import AnswerMatcher, extract_answer, group_answers
from strategies.base import Generator, Problem


@dataclass(frozen=True)
class StepValue:
    hits: int  # completions reaching the target
    total: int  # completions sampled (k, fewer if the upstream lost some)
    answers: tuple[str | None, ...] = ()
    usage: Usage = field(default_factory=Usage)

    @property
    def soft(self) -> float:
        return self.hits / self.total if self.total else 0.0

    @property
    def hard(self) -> bool:
        return self.hits > 0


def count_hits(
    problem: Problem,
    answers: Sequence[str | None],
    *,
    use_reference: bool = True,
    matcher: AnswerMatcher | None = None,
) -> int:
    """Answers equivalent to the reference (when used), else the size of the largest group of
    equivalent answers (None answers never count)."""
    m = matcher or AnswerMatcher()
    if use_reference and problem.reference is not None:
        return sum(m.equivalent(a, problem.reference) for a in answers)
    return max((len(g) for g in group_answers(answers, m)), default=0)


async def estimate(
    generator: Generator,
    problem: Problem,
    prefix: str,
    k: int,
    *,
    temperature: float,
    max_tokens: int,
    stop: Sequence[str] = (),
    answer_format: str | None = None,
    use_reference: bool = True,
) -> StepValue:
    """The value of `prefix` from `k` completions sampled in one call."""
    fmt = answer_format or problem.answer_format
    batch = await generator.extend(
        problem, prefix, k, temperature=temperature, max_tokens=max_tokens, stop=stop
    )
    answers = tuple(extract_answer(prefix + s.text, fmt) for s in batch.samples)
    hits = count_hits(problem, answers, use_reference=use_reference)
    return StepValue(hits, len(answers), answers, batch.usage)
