"""The calibration workflow, without the command line: check the grid, run it, write outputs.

    configs = check_grid(configs, policy, model)               # raises GridError with every problem
    run, cal = await calibrate_model(items, configs, policy, model, upstream_for, cache, opts)
    paths = write_outputs(cal, items, out_dir, policy=policy, model=model, opts=opts)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS
from policies.schema import Policy
from router.calibrate.analysis import Calibration, TierFrom, calibrate
from router.calibrate.cache import ResultCache
from router.calibrate.data import EvalItem
from router.calibrate.grid import INLINE_VERIFIERS, GridConfig, GridError
from router.calibrate.outputs import policy_fragment, write_solve_rates
from router.calibrate.report import markdown, plot
from router.calibrate.runner import GridRun, OnDone, StrategyRunner, run_grid
from router.upstreams.base import Upstream
from strategies.base import Budget, Verifier


@dataclass(frozen=True)
class Options:
    target: float = 0.02
    cap: float | None = None
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
    opts: Options,
) -> Calibration:
    keys = {c: c.key(model, opts.max_tokens) for c in configs}
    return calibrate(
        items, configs, run.records, keys, target=opts.target, cap=opts.cap,
        metric=opts.metric, thresholds=opts.thresholds, tier_from=opts.tier_from,
    )


def write_outputs(
    cal: Calibration,
    items: Sequence[EvalItem],
    out_dir: Path,
    *,
    model: str,
    opts: Options,
    policy: Policy | None = None,
    settings: Sequence[tuple[str, str]] = (),
    title: str = "ttc-router calibration",
) -> dict[str, Path]:
    """policy-target.yaml, policy-cap.yaml, solve_rates.jsonl, report.md, calibration.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    header = [f"{title}: model {model}, {len(items)} items"]
    for mode in ("target", "cap"):
        if mode == "cap" and cal.cap is None:
            continue
        path = out_dir / f"policy-{mode}.yaml"
        path.write_text(
            policy_fragment(cal, mode, model=model, max_tokens=opts.max_tokens, policy=policy,
                            header=header),
            encoding="utf-8",
        )
        paths[f"policy_{mode}"] = path
    paths["solve_rates"] = out_dir / "solve_rates.jsonl"
    write_solve_rates(cal, items, paths["solve_rates"])
    png: str | None = "calibration.png"
    note = None
    try:
        plot(cal, out_dir / "calibration.png", title)
        paths["plot"] = out_dir / "calibration.png"
    except ImportError:
        png, note = None, "plots skipped: matplotlib is not installed (pip install matplotlib)"
    paths["report"] = out_dir / "report.md"
    paths["report"].write_text(
        markdown(cal, title=title, settings=[("model", model), *settings], plot=png,
                 plot_note=note),
        encoding="utf-8",
    )
    return paths
