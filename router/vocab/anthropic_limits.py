"""The Anthropic Messages API's own request limits, checked when a policy loads.

A tier that would break them fails at `policy validate` naming the field, instead of failing
every request with the API's 400:

- extended thinking: `budget_tokens` >= 1024 and below `max_tokens` (which counts thinking and
  answer together);
- stop sequences must contain non-whitespace, so a step-level strategy needs a visible
  `step_delimiter` (the default blank line is refused) and `stop` entries that are not blank;
- an assistant prefill must not end in whitespace: the upstream strips it and re-adds it to the
  continuation (`router.upstreams.anthropic_api.rejoin`), so nothing to configure.

No SDK import here: the loader runs this for every policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MIN_THINKING_BUDGET = 1024
DEFAULT_THINKING_BUDGET = 1024  # strategies.thinking's default
DEFAULT_STEP_DELIMITER = "\n\n"  # strategies.params.STEP's default


def tier_problems(
    strategy: str,
    step_level: bool,
    params: Mapping[str, Any],
    max_tokens: int,
) -> list[tuple[str, str]]:
    """(field, reason) for every Anthropic limit that `strategy` with `params` would break on a
    tier whose per-sample token limit is `max_tokens`. Fields are relative to the tier."""
    problems: list[tuple[str, str]] = []
    if strategy == "thinking" and params.get("mode", "auto") != "force":
        budget = int(params.get("budget_tokens", DEFAULT_THINKING_BUDGET))
        if budget < MIN_THINKING_BUDGET:
            problems.append(
                (
                    "params.budget_tokens",
                    f"{budget} is below Anthropic's minimum thinking budget "
                    f"({MIN_THINKING_BUDGET})",
                )
            )
        if budget >= max_tokens:
            problems.append(
                (
                    "max_tokens",
                    f"{max_tokens} must exceed params.budget_tokens ({budget}): Anthropic's "
                    "max_tokens counts thinking and answer together",
                )
            )
    if step_level:
        delimiter = str(params.get("step_delimiter", DEFAULT_STEP_DELIMITER))
        if delimiter and not delimiter.strip():
            problems.append(
                (
                    "params.step_delimiter",
                    f"{delimiter!r} is only whitespace; Anthropic refuses such stop sequences "
                    "(use a visible delimiter, e.g. '.\\n' or '\\nStep')",
                )
            )
    for i, stop in enumerate(params.get("stop") or ()):
        if not str(stop).strip():
            problems.append(
                (f"params.stop[{i}]", "Anthropic refuses stop sequences made only of whitespace")
            )
    return problems


__all__ = ["MIN_THINKING_BUDGET", "tier_problems"]
