"""`ttc-router calibrate EVAL.jsonl --model NAME`.

Mount with `app.command("calibrate")(calibrate_cmd)`.

Runs the grid on one model of the policy (progress bars; results appended to a JSONL cache so
an interrupted run continues where it stopped) and writes, under `--out`: `policy-target.yaml`
and `policy-cap.yaml` (tier fragments for both selection modes), `report.md` and
`calibration.png`, and `solve_rates.jsonl` for `ttc-router classifier train --data`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS

_DEFAULT_THRESHOLDS = ",".join(map(str, DEFAULT_SOLVE_RATE_THRESHOLDS))


def _thresholds(value: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            "three comma-separated rates: easy_min,medium_min,hard_min"
        ) from None
    return a, b, c


def calibrate_cmd(
    eval_file: Annotated[Path, typer.Argument(help="Labelled evaluation JSONL")],
    model: Annotated[str, typer.Option(help="Model name in the policy's `models`")] = "local",
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (packaged default)")] = None,
    grid: Annotated[Path | None, typer.Option(help="Grid YAML (see router/calibrate/grid.py)")]
    = None,
    config: Annotated[
        list[str] | None,
        typer.Option(help='Grid entry, repeatable: "best_of_n n=4,16 verifier=NAME"'),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory")] = Path("calibration"),
    cache: Annotated[Path | None, typer.Option(help="Result cache (default OUT/results.jsonl)")]
    = None,
    target: Annotated[float, typer.Option(min=0, max=1, help="Target mode: accuracy slack")]
    = 0.02,
    cost_cap: Annotated[
        float | None, typer.Option(help="Cap mode: cost per query (default: target's spend)")
    ] = None,
    cost_metric: Annotated[str, typer.Option(help="auto | usd | tokens | generated")] = "auto",
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per sample")] = 512,
    deadline_s: Annotated[float, typer.Option(min=0.1, help="Per run")] = 120.0,
    repeats: Annotated[int, typer.Option(min=1, help="Runs per (config, item)")] = 1,
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N items")] = None,
    tier_from: Annotated[str, typer.Option(help="auto | given | solve_rate")] = "auto",
    solve_rate_thresholds: Annotated[str, typer.Option(help="easy_min,medium_min,hard_min")]
    = _DEFAULT_THRESHOLDS,
) -> None:
    """Measure strategies x budgets on your model and data; write a compute-optimal policy."""
    from policies.loader import load_policy
    from router.calibrate.data import EvalFileError, load_items
    from router.calibrate.grid import GridError, dedupe, default_grid, load_grid, parse_spec
    from router.calibrate.workflow import Options, check_grid

    if tier_from not in ("auto", "given", "solve_rate"):
        raise typer.BadParameter("auto, given or solve_rate", param_hint="--tier-from")
    try:
        items = load_items(eval_file)[:limit]
        loaded = load_policy(policy)
        configs = load_grid(grid) if grid else []
        configs += [c for spec in config or [] for c in parse_spec(spec)]
        if not configs:
            used = {t.verifier for t in loaded.policy.tiers.values() if t.verifier}
            configs = default_grid(sorted(used))
        configs = check_grid(dedupe(configs), loaded.policy, model)
    except (EvalFileError, GridError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    opts = Options(
        target=target, cap=cost_cap, metric=cost_metric,
        thresholds=_thresholds(solve_rate_thresholds), tier_from=tier_from,  # type: ignore[arg-type]
        repeats=repeats, concurrency=concurrency, max_tokens=max_tokens, deadline_s=deadline_s,
    )
    asyncio.run(_main(items, configs, loaded, model, out, cache or out / "results.jsonl", opts))


async def _main(
    items: Any, configs: Any, loaded: Any, model: str, out: Path, cache_path: Path, opts: Any
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from router.calibrate.cache import ResultCache
    from router.calibrate.workflow import calibrate_model, write_outputs
    from router.metrics import Metrics
    from router.settings import Settings
    from router.upstreams.pool import UpstreamPool

    console = Console(stderr=True)
    cache = ResultCache(cache_path)
    if len(cache):
        console.print(f"resuming: {len(cache)} finished runs in {cache_path}")
    policy = loaded.policy
    pool = UpstreamPool(Settings(), Metrics())
    await pool.rebuild({n: s for n, s in policy.models.items() if n in _needed(policy, model,
                                                                                configs)})
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            per = len(items) * opts.repeats
            tasks = {c: bar.add_task(c.label, total=per) for c in configs}
            for c in configs:
                done = sum((c.key(model, opts.max_tokens), it.key, r) in cache
                           for it in items for r in range(opts.repeats))
                bar.advance(tasks[c], done)

            def on_done(c: Any, record: Any, exc: BaseException | None) -> None:
                bar.advance(tasks[c], 1)
                if exc is not None:
                    bar.console.print(f"[red]{c.label}: {type(exc).__name__}: {exc}")

            run, cal = await calibrate_model(items, configs, policy, model, pool.get, cache,
                                             opts, on_done)
    finally:
        await pool.aclose()
    settings = [("policy", loaded.source), ("items", str(len(items))),
                ("configurations", str(len(configs))), ("repeats", str(opts.repeats)),
                ("runs", f"{run.ran} new, {run.reused} from the cache, {len(run.errors)} failed")]
    paths = write_outputs(cal, items, out, model=model, opts=opts, policy=policy,
                          settings=settings)
    for tier, r in cal.tiers.items():
        t, c = r.target, r.cap
        console.print(f"{tier:10} target: {t.point.label if t else '-':40} "
                      f"cap: {c.point.label if c else '-'}")
    for e in run.errors[:10]:
        console.print(f"[red]failed: {e}")
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def _needed(policy: Any, model: str, configs: Any) -> set[str]:
    """Policy models the grid calls: the model, verifier models, cascade stages."""
    from strategies import REGISTRY, VERIFIERS

    names = {model}
    for c in configs:
        other_models = getattr(REGISTRY[c.strategy], "models", None)
        if other_models is not None:
            names.update(other_models(c.params))
        spec = policy.verifiers.get(c.verifier) if c.verifier else None
        if spec is not None:
            options = dict(spec.options)
            if spec.model:
                options.setdefault("model", spec.model)
            names.update(VERIFIERS[spec.kind].models(options))
    return names
