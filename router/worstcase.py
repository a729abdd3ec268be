"""The worst-case cost of a plan: what the budget reservation holds before a run starts.

One function, `worst_case`, bounds every call a plan may make:

- generation: each of the strategy's `max_samples(params)` sequences pays the prompt (plus the
  partial solution a step-level search re-sends, or the thinking that budget forcing re-sends)
  at the input price, and its token limit at the output price (the tier's per-sample
  `max_tokens`, a search step's `step_max_tokens`, a thinking budget plus its answer), at the
  dearest model the strategy may call (a cascade may escalate to another one);
- verification: each generated sequence is scored at most once; the verifier kind says what
  scoring one candidate may cost (`VerifierFactory.worst_tokens`: a judge call per step, `k`
  rollouts, one PRM request), priced at the dearest of the verifier's model, its own `price`
  (a PRM service) and the generation models. The outcome checkers cost nothing;
- the `n` choices a client asks for multiply everything;
- the LLM classifier fallback's call, when one was made: it runs before the plan exists, so
  its actual cost (`fallback_cost`, from the usage it reported) is added to the plan's worst
  case and the reservation covers it exactly.

The prompt is the router's estimate (about 3 characters a token, `planning.Call`), so a real
tokenizer counts no more. The tier's `token_budget` does not lower the bound (in-flight calls
can overrun it). USD is rounded up to the next micro-dollar, the unit budgets are kept in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from classifier.base import TierScores
from policies.schema import Policy
from strategies import REGISTRY, VERIFIERS, SampleBound, Stage, Strategy, implements
from strategies.params import STEP
from strategies.registry import stages_of


@dataclass(frozen=True)
class WorstCase:
    usd: float
    tokens: int


def _parts(strategy: Strategy, params: Mapping[str, Any]) -> list[Stage]:
    """The strategy and, for a composite one, every stage it may run (recursively)."""
    out = [Stage("", strategy, params, None)]
    for stage in stages_of(strategy, params):
        if stage.strategy is strategy:  # another model for the same strategy (draft/target)
            out.append(stage)
        else:
            out += [s._replace(model=s.model or stage.model)
                    for s in _parts(stage.strategy, stage.params)]
    return out


def worst_case(
    policy: Policy,
    *,
    strategy: str,
    params: Mapping[str, Any],
    model: str,
    max_tokens: int,
    prompt_tokens: int,
    verifier: str | None = None,
    n: int = 1,
) -> WorstCase:
    """Upper bound of the cost of running `strategy` with `params` on `model` (see the module
    docstring), `n` times."""
    impl = REGISTRY[strategy]
    parts = _parts(impl, params)
    samples = max(1, int(impl.max_samples(params)))
    prompt = max(0, int(prompt_tokens))
    resend, out, steps = 0, max_tokens, 1
    for _, part, p, _ in parts:
        if implements(part, SampleBound):
            extra, generated = cast(SampleBound, part).sample_bound(p, max_tokens)
            resend, out = max(resend, extra), max(out, generated)
        if part.step_level:  # every call re-sends the partial solution so far
            depth = int(p.get("max_depth") or STEP["max_depth"].default)
            step = int(p.get("step_max_tokens") or STEP["step_max_tokens"].default)
            out = max(out, step)
            resend = max(resend, depth * out)
            steps = max(steps, depth)
    names = [model] + [s.model for s in parts if s.model]
    prices = [policy.models[name].price for name in names if name in policy.models]
    in_price = max(p.input_per_mtok for p in prices)
    out_price = max(p.output_per_mtok for p in prices)
    tokens_in = samples * (prompt + resend)
    tokens_out = samples * out
    usd = tokens_in * in_price + tokens_out * out_price
    if verifier is not None:
        v_in, v_out, v_price = _verifier(policy, verifier, prompt, resend + out, steps, out)
        v_in, v_out = samples * v_in, samples * v_out
        tokens_in, tokens_out = tokens_in + v_in, tokens_out + v_out
        usd += v_in * max(in_price, v_price[0]) + v_out * max(out_price, v_price[1])
    usd_total = n * usd / 1e6
    return WorstCase(math.ceil(round(usd_total * 1e6, 6)) / 1e6, n * (tokens_in + tokens_out))


def fallback_cost(policy: Policy, scores: TierScores | None) -> float:
    """What the LLM classifier fallback's call for this request cost, at the fallback model's
    price (0 when no call was made or it reported no usage). The planner adds it to the worst
    case, `pipeline.settle` bills it: one number for both."""
    if scores is None or scores.fallback_usage is None:
        return 0.0
    name = policy.classifier.fallback_model
    price = policy.price_of(name) if name else None
    return 0.0 if price is None else price.cost(scores.fallback_usage)


def _verifier(
    policy: Policy, name: str, prompt: int, candidate: int, depth: int, out: int
) -> tuple[int, int, tuple[float, float]]:
    """(input, output) tokens of scoring one candidate, and the dearest (input, output) price
    of the models the verifier calls."""
    spec = policy.verifiers[name]
    factory = VERIFIERS[spec.kind]
    options: dict[str, Any] = dict(spec.options)
    if spec.model is not None:
        options.setdefault("model", spec.model)
    # a step-level chain has at most `depth` steps; a whole sample at most one per token
    steps = depth if depth > 1 else max(1, out)
    tokens_in, tokens_out = factory.worst_tokens(options, prompt, candidate, steps)
    prices = [policy.models[m].price for m in factory.models(options) if m in policy.models]
    prices.append(spec.price)  # a verifier service's own (zero unless the policy sets it)
    price = (max((p.input_per_mtok for p in prices), default=0.0),
             max((p.output_per_mtok for p in prices), default=0.0))
    return tokens_in, tokens_out, price


__all__ = ["WorstCase", "fallback_cost", "worst_case"]
