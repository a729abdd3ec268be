"""Limits checked around a run: the prompt against the model's context window before any call,
the deadline contract after it, and the `x-ttc-*` headers an error carries once the request is
routed.

The deadline contract (README, "Deadlines"): a run cut by its tier's `deadline_s` that has an
answer returns it with `finish_reason: "deadline"` (Anthropic `stop_reason: "deadline"`),
`x-ttc-truncated: deadline` and `ttc.anytime: true`; a run cut before any output is a 504
`deadline_exceeded`, never an empty 200.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from router.errors import InvalidRequest, RouterError, UpstreamTimeout
from router.headers import routed_headers

if TYPE_CHECKING:
    from policies.schema import Policy
    from router.planning import Call, Plan
    from router.settings import Settings

# A token never covers more than this many UTF-8 bytes: the packaged Gemma 3 vocabulary's
# longest piece is 48 bytes (read from the GGUF's tokenizer.ggml.tokens). `bytes / this` is a
# lower bound on the prompt's tokens, so the check never refuses a prompt that fits.
MAX_BYTES_PER_TOKEN = 64


class DeadlineExceeded(UpstreamTimeout):
    """504: the tier's deadline passed before the strategy had any answer."""

    code = "deadline_exceeded"


def context_window(policy: Policy, model: str, settings: Settings) -> tuple[int, str] | None:
    """The model's context window in tokens and the setting that raises it (None: unknown)."""
    spec = policy.models.get(model)
    if spec is None:
        return None
    if spec.context_tokens is not None:
        return spec.context_tokens, f"models.{model}.context_tokens in the policy"
    if spec.provider == "local":
        window = settings.local_ctx_per_slot * settings.local_parallel
        return window, "TTC_LOCAL_CTX_PER_SLOT (times TTC_LOCAL_PARALLEL)"
    return None


def check_context(settings: Settings, policy: Policy, call: Call, decision: Plan) -> None:
    """400 when the prompt cannot fit the model's context window, before any upstream call."""
    window = context_window(policy, decision.model, settings)
    if window is None:
        return
    limit, setting = window
    size = sum(len(m.content.encode("utf-8", "surrogatepass")) for m in call.messages)
    at_least = math.ceil(size / MAX_BYTES_PER_TOKEN)
    if at_least > limit:
        raise InvalidRequest(
            f"the prompt ({size} bytes, at least {at_least} tokens) cannot fit model "
            f"{decision.model!r}'s context window of {limit} tokens; shorten it or raise "
            f"{setting}",
            param="messages",
            code="context_length_exceeded",
        )


def no_answer(texts: list[str], stopped: str | None, decision: Plan) -> RouterError | None:
    """The 504 for a run the deadline cut before any output (None: there is an answer)."""
    if stopped != "deadline" or any(t.strip() for t in texts):
        return None
    tier = decision.tier_label
    raise_it = f"tiers.{tier}.deadline_s" if decision.tier is not None else "the deadline"
    return DeadlineExceeded(
        f"the {decision.deadline_s:g}s deadline of tier {tier!r} ({decision.strategy}) passed "
        f"before any answer; raise {raise_it} in the policy or ask for a lower tier"
    )


def annotate(
    exc: RouterError,
    decision: Plan,
    request_id: str,
    *,
    revision: str,
    overhead_ms: float,
    cache: str,
    cost_usd: float = 0.0,
) -> None:
    """Give an error raised after routing the same `x-ttc-*` headers as an answer (its own
    headers, such as `x-ttc-budget-remaining`, win)."""
    exc.headers = {
        **routed_headers(decision, request_id, cost_usd=cost_usd, overhead_ms=overhead_ms,
                         cache=cache, revision=revision),
        **exc.headers,
    }


__all__ = [
    "MAX_BYTES_PER_TOKEN",
    "DeadlineExceeded",
    "annotate",
    "check_context",
    "check_limits",
    "context_window",
    "no_answer",
]


def check_limits(s: Settings, call: Call) -> None:
    """Request sizes within the service's limits (messages, n, max_tokens), else a 400."""
    if len(call.messages) > s.max_messages:
        raise InvalidRequest(
            f"too many messages: {len(call.messages)} > {s.max_messages}", param="messages"
        )
    if call.n > s.max_n:
        raise InvalidRequest(f"n must be at most {s.max_n}", param="n")
    if call.max_tokens is not None and call.max_tokens > s.max_tokens_limit:
        raise InvalidRequest(
            f"max_tokens must be at most {s.max_tokens_limit}", param=call.max_tokens_param
        )
