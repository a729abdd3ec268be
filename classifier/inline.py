"""How long a text the event loop may score inline: `inline_chars`, measured at start-up
(`classifier.embedding.load_classifier`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from classifier.features import MAX_TEXT_CHARS

_SENTENCE = "How would you explain the trade-offs of approach {i} to a new colleague? "


def inline_chars(
    score: Callable[[list[str]], object], budget_s: float, *, reps: int = 5,
    clock: Callable[[], float] = time.thread_time,
) -> int:
    """The longest text (characters, at most the window) that `score([text])` handles within
    `budget_s`, from timing a short text and a full window (fastest of `reps` runs each) and a
    straight line between them. The clock is the thread's CPU time, so a machine loaded by
    other processes at start-up does not make the bound 0 for the process's whole life."""
    if budget_s <= 0:
        return 0

    def cost(n: int) -> float:
        best = float("inf")
        for i in range(reps):
            text = "".join(_SENTENCE.format(i=f"{n}-{i}-{j}") for j in range(n // 40 + 1))[:n]
            t0 = clock()
            score([text])
            best = min(best, clock() - t0)
        return best

    short, long = 64, MAX_TEXT_CHARS
    c_short, c_long = cost(short), cost(long)
    if c_short > budget_s:
        return 0
    if c_long <= budget_s:
        return long
    per_char = (c_long - c_short) / (long - short)
    return min(long, short + int((budget_s - c_short) / per_char))


__all__ = ["inline_chars"]
