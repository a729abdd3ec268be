"""The calibration workflow, without the command line: check the grid, run it, analyse, write.

    configs = check_grid(configs, policy, model)               # raises GridError with every problem
    run, cal = await calibrate_model(items, configs, policy, model, upstream_for, cache, opts)
    result = evaluate(items, configs, run.records, model, opts, predicted=None)
    paths = write_outputs(result, items, out_dir, policy=policy, model=model, opts=opts)

`evaluate` splits off `opts.holdout` of the items (stratified by given tier), calibrates on the
rest once per tier source (the configured one, and the classifier's predictions when given)
and evaluates each calibration's frontier on the held-out part with bootstrap intervals. The
policy comes from the predicted-tier calibration when there is one (those are the tiers the
router sees when serving), else from the configured tiers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier.base import Tier
from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS
from policies.schema import Policy
from router.calibrate.analysis import Calibration, TierFrom, assign_tiers, calibrate, solve_rates
from router.calibrate.cache import Record, ResultCache
from router.calibrate.data import EvalItem
from router.calibrate.grid import INLINE_VERIFIERS, GridConfig, GridError
from router.calibrate.holdout import Holdout, evaluate_holdout, split_items
from router.calibrate.outputs import complete_policy, policy_fragment, write_solve_rates
from router.calibrate.report import curve_names, markdown, plot
from router.calibrate.runner import GridRun, OnDone, StrategyRunner, run_grid
from router.upstreams.base import Upstream
from strategies.base import Budget, Verifier


@dataclass(frozen=True)
class Options:
    budget: float | None = None  # average cost per query (metric units); None: the knee
    target_accuracy: float | None = None
    shares: Mapping[str, float] | None = None  # tier -> traffic share; None: from the data
    allow_reference: bool = False  # math_reference configurations may enter the policy
    holdout: float = 0.0  # share of items held out (0: calibrate on all, no held-out report)
    seed: int = 0
    boots: int = 1000
    metric: str = "auto"
    thresholds: tuple[float, float, float] = DEFAULT_SOLVE_RATE_THRESHOLDS
    tier_from: TierFrom = "auto"
    repeats: int = 1
    concurrency: int = 4
    max_tokens: int = 512  # per sample
    deadline_s: float = 120.0  # per run


def check_grid(configs: Sequence[GridConfig], policy: Policy, model: str) -> list[GridConfig]:
    """The grid, or a `GridError` listing every configuration the model cannot run."""
    from strategies import REGISTRY, check_strategy

    if model not in policy.models:
        raise GridError(f"unknown model {model!r}; defined: {', '.join(sorted(policy.models))}")
    if not configs:
        raise GridError("empty grid")

    def caps_for(name: str | None) -> Any:
        spec = policy.models.get(model if name is None else name)
        return None if spec is None else spec.capabilities.to_capabilities()

    errors = []
    for c in configs:
        if c.verifier is not None and c.verifier not in policy.verifiers \
                and c.verifier not in INLINE_VERIFIERS:
            known = sorted({*policy.verifiers, *INLINE_VERIFIERS})
            errors.append(f"{c.label}: unknown verifier {c.verifier!r}; one of {', '.join(known)}")
        problems = check_strategy(REGISTRY, c.strategy, c.params, caps_for,
                                  has_verifier=c.verifier is not None)
        errors += [f"{c.label}: {p}" for p in problems]
    if errors:
        raise GridError("invalid grid:\n" + "\n".join(f"  - {e}" for e in errors))
    return list(configs)


def verifier_resolver(
    policy: Policy, upstream_for: Callable[[str], Upstream]
) -> Callable[[str | None], Verifier | None]:
    from strategies import build_verifier

    built: dict[str, Verifier | None] = {}

    def resolve(name: str | None) -> Verifier | None:
        if name is None:
            return None
        if name not in built:
            spec = policy.verifiers.get(name)
            if spec is None:
                built[name] = build_verifier(name, {}, upstream_for)
            else:
                options = dict(spec.options)
                if spec.model is not None:
                    options.setdefault("model", spec.model)
                built[name] = build_verifier(spec.kind, options, upstream_for)
        return built[name]

    return resolve


async def calibrate_model(
    items: Sequence[EvalItem],
    configs: Sequence[GridConfig],
    policy: Policy,
    model: str,
    upstream_for: Callable[[str], Upstream],
    cache: ResultCache,
    opts: Options = Options(),
    on_done: OnDone | None = None,
) -> tuple[GridRun, Calibration]:
    """Run the grid on `model` (a policy model name) and analyse it."""
    from strategies.generator import UpstreamGenerator

    generator = UpstreamGenerator(upstream_for(model), resolve=upstream_for)
    runner = StrategyRunner(
        generator,
        verifier_resolver(policy, upstream_for),
        price=policy.models[model].price.to_price(),
        budget=Budget(deadline_s=opts.deadline_s, max_tokens_per_sample=opts.max_tokens),
    )
    run = await run_grid(
        items, configs, runner, cache, model=model, max_tokens=opts.max_tokens,
        repeats=opts.repeats, concurrency=opts.concurrency, on_done=on_done,
    )
    return run, analyse(items, configs, run, model, opts)


def analyse(
    items: Sequence[EvalItem], configs: Sequence[GridConfig], run: GridRun, model: str,
    opts: Options, tier_of: Mapping[str, Tier] | None = None,
) -> Calibration:
    keys = {c: c.key(model, opts.max_tokens) for c in configs}
    return calibrate(
        items, configs, run.records, keys, budget=opts.budget,
        target_accuracy=opts.target_accuracy, shares=opts.shares,
        allow_reference=opts.allow_reference, metric=opts.metric, thresholds=opts.thresholds,
        tier_from=opts.tier_from, tier_of=tier_of,
    )


@dataclass
class Evaluation:
    cal: Calibration  # the policy's calibration
    source: str  # its tier source: "given", "oracle" (solve-rate bins) or "predicted"
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    holdout: Holdout | None = None
    calibration_items: int = 0
    held_out_items: int = 0
    rates: Calibration | None = None  # solve rates and configured tiers of every item


def tier_source(items: Sequence[EvalItem], opts: Options) -> str:
    given = opts.tier_from != "solve_rate" and any(it.tier is not None for it in items)
    return "given" if given else "oracle"


def evaluate(
    items: Sequence[EvalItem], configs: Sequence[GridConfig], records: Sequence[Record],
    model: str, opts: Options, predicted: Mapping[str, Tier] | None = None,
) -> Evaluation:
    """Calibrate (on all items, or on the part not held out) and evaluate on the held-out part.

    `predicted`: item key -> the classifier's tier, for every item (a second calibration)."""
    run = GridRun(list(records))
    cal_items, held = split_items(items, opts.holdout, opts.seed) if opts.holdout else (
        list(items), [])
    source = tier_source(items, opts)
    cals = {source: analyse(cal_items, configs, run, model, opts)}
    if predicted is not None:
        cals["predicted"] = analyse(cal_items, configs, run, model, opts,
                                    tier_of={it.key: predicted[it.key] for it in cal_items})
    main = "predicted" if predicted is not None else source
    out = Evaluation(cals[main], main, cals, None, len(cal_items), len(held))
    keys_all = {it.key for it in items}
    rates_all = solve_rates([r for r in records if r.item in keys_all])
    out.rates = Calibration(cals[main].metric, {}, rates_all,
                            assign_tiers(items, rates_all, opts.thresholds, opts.tier_from))
    if held:
        keys = {c: c.key(model, opts.max_tokens) for c in configs}
        held_keys = {it.key for it in held}
        rates = solve_rates([r for r in records if r.item in held_keys])
        tiers = {source: assign_tiers(held, rates, opts.thresholds, opts.tier_from)}
        if predicted is not None:
            tiers["predicted"] = {it.key: predicted[it.key] for it in held}
        out.holdout = evaluate_holdout(cals, held, configs, records, keys, tiers,
                                       boots=opts.boots, seed=opts.seed)
        if source == "oracle":
            out.holdout.notes.append(
                "oracle tiers of held-out items are their solve rates on the same runs that "
                "score them: an optimistic ceiling, not something the router can deploy")
    return out


def write_outputs(
    result: Evaluation | Calibration,
    items: Sequence[EvalItem],
    out_dir: Path,
    *,
    model: str,
    opts: Options,
    policy: Policy | None = None,
    settings: Sequence[tuple[str, str]] = (),
    title: str = "ttc-router calibration",
) -> dict[str, Path]:
    """policy.yaml (complete, when `policy` is given), policy-fragment.yaml,
    solve_rates.jsonl, report.md and calibration.png (unless matplotlib is missing: then
    `paths` has no "plot" and the report says why)."""
    ev = result if isinstance(result, Evaluation) else Evaluation(result, "given")
    cal = ev.cal
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    header = [f"{title}: model {model}, {len(items)} items, tiers: {ev.source}"]
    fragment = policy_fragment(cal, model=model, max_tokens=opts.max_tokens, policy=policy,
                               header=header)
    paths["policy_fragment"] = out_dir / "policy-fragment.yaml"
    paths["policy_fragment"].write_text(fragment, encoding="utf-8")
    if policy is not None and cal.pick is not None:
        from policies.loader import PolicyValidationError

        try:
            body = complete_policy(fragment, policy)
        except PolicyValidationError as exc:
            cal.notes.append("policy.yaml not written, the merged policy does not validate: "
                             + "; ".join(exc.errors) + " (define what it names, then "
                             "`ttc-router policy merge BASE policy-fragment.yaml`)")
        else:
            paths["policy"] = out_dir / "policy.yaml"
            paths["policy"].write_text("\n".join(f"# {h}" for h in header) + "\n" + body,
                                       encoding="utf-8")
    paths["solve_rates"] = out_dir / "solve_rates.jsonl"
    write_solve_rates(ev.rates or cal, items, paths["solve_rates"])
    png: str | None = "calibration.png"
    note = None
    try:
        plot(cal, out_dir / "calibration.png", title, ev.holdout)
        paths["plot"] = out_dir / "calibration.png"
    except ImportError:
        png, note = None, PLOT_MISSING
    split = (f"{ev.calibration_items} calibration, {ev.held_out_items} held out"
             if ev.holdout is not None else "all items calibrate (no held-out part)")
    paths["report"] = out_dir / "report.md"
    paths["report"].write_text(
        markdown(cal, title=title, settings=[("model", model), ("items", split),
                                             ("policy tiers from", ev.source), *settings],
                 plot=png, plot_note=note, holdout=ev.holdout,
                 curves=curve_names(cal, ev.holdout)),
        encoding="utf-8",
    )
    return paths


PLOT_MISSING = "plots skipped: matplotlib is not installed (pip install 'ttc-router[report]')"
