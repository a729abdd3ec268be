"""`ttc-router calibrate EVAL.jsonl --model NAME` or `ttc-router calibrate --samples FILE`.

Mount with `app.command("calibrate")(calibrate_cmd)`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS

_DEFAULT_THRESHOLDS = ",".join(map(str, DEFAULT_SOLVE_RATE_THRESHOLDS))

HELP = """Measure strategies x budgets on your model and data (or replay recorded samples), solve
the budget-constrained allocation over difficulty tiers exactly, and write a policy.

\b
EVAL.jsonl, one labelled question a line (example: docs/examples/eval.jsonl):
  {"id": "q1", "question": "What is 17*3?", "reference": "51", "tier": "easy"}
  {"question": "23*4", "prompt": "12*3=36\\n23*4=", "reference": "92", "answer_format": "number"}
  {"question": "Write f(x) = 2x", "tests": "assert f(2) == 4"}
Fields: question (the text the classifier sees); reference and/or tests; optional id, tier
(easy, medium, hard, very_hard), prompt (raw text the model continues) or messages (chat),
answer_format (auto, boxed, answer_line, number, code, text), answer_from (first_line, all;
default first_line for a prompt).

\b
--samples FILE replays recorded samples instead of calling a model (no EVAL, no --model call):
  {"id": "q1", "problem": "...", "reference": "51", "tier": "medium", "prompt_tokens": 42,
   "samples": [{"answer": "51", "correct": true, "completion_tokens": 120, "score": 0.9}]}
(example: docs/examples/samples.jsonl).

\b
Writes under --out: policy.yaml (the base policy with the calibrated tiers: validates on its
own), policy-fragment.yaml (the tiers only; `ttc-router policy merge`), report.md and
calibration.png (every curve: uniform per strategy family, the allocation frontier, held-out
with intervals), solve_rates.jsonl (for `ttc-router classifier train --data`) and, for live
runs, results.jsonl (resumable cache). Without --budget or --target-accuracy the policy is the
knee of the frontier.
"""


def _thresholds(value: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(
            "three comma-separated rates: easy_min,medium_min,hard_min"
        ) from None
    return a, b, c


def parse_shares(value: str | None) -> dict[str, float] | None:
    """`easy=0.5,medium=0.3,hard=0.15,very_hard=0.05` -> mapping (any positive weights)."""
    if not value:
        return None
    out: dict[str, float] = {}
    for part in value.split(","):
        name, sep, weight = part.partition("=")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            sep = ""
        if not sep or out.get(name.strip(), -1) < 0:
            raise typer.BadParameter("tier=weight,... e.g. easy=0.5,medium=0.3,hard=0.2",
                                     param_hint="--shares")
    return out


def _ints(value: str | None, hint: str) -> list[int]:
    if not value:
        return []
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise typer.BadParameter("comma-separated integers", param_hint=hint) from None


def data_dir(explicit: Path | None) -> Path:
    """Where the model file and other state go: --data-dir, else TTC_DATA_DIR, else the user
    cache (`$XDG_CACHE_HOME/ttc-router`, `~/.cache/ttc-router`), never the current directory."""
    if explicit is not None:
        return explicit
    if os.environ.get("TTC_DATA_DIR"):
        return Path(os.environ["TTC_DATA_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttc-router"


def calibrate_cmd(
    eval_file: Annotated[Path | None, typer.Argument(help="Labelled evaluation JSONL")] = None,
    samples: Annotated[Path | None, typer.Option(help="Replay recorded samples (JSONL)")]
    = None,
    model: Annotated[str, typer.Option(help="Model name in the policy's `models`")] = "local",
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (packaged default)")] = None,
    grid: Annotated[Path | None, typer.Option(help="Grid YAML (router/calibrate/grid.py)")]
    = None,
    config: Annotated[
        list[str] | None,
        typer.Option(help='Grid entry, repeatable: "best_of_n n=4,16 verifier=NAME"'),
    ] = None,
    thinking_budgets: Annotated[
        str | None, typer.Option(help="Add the thinking family: budget_tokens list, 512,2048")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory")] = Path("calibration"),
    cache: Annotated[Path | None, typer.Option(help="Result cache (OUT/results.jsonl)")]
    = None,
    budget: Annotated[
        float | None, typer.Option(help="Average cost per query (cost metric units)")] = None,
    target_accuracy: Annotated[
        float | None, typer.Option(min=0, max=1, help="Cheapest point reaching it")] = None,
    shares: Annotated[
        str | None, typer.Option(help="Traffic mix, e.g. easy=0.6,medium=0.3,hard=0.1")] = None,
    holdout: Annotated[float, typer.Option(min=0, max=0.9, help="Share held out (0: none)")]
    = 0.3,
    seed: Annotated[int, typer.Option(help="Held-out split and bootstrap seed")] = 0,
    predict_tiers: Annotated[
        bool, typer.Option(help="Also calibrate on the router classifier's tiers")] = True,
    allow_reference_verifier: Annotated[
        bool, typer.Option(help="Requests bring references: math_reference may be chosen")
    ] = False,
    score_verifier: Annotated[
        str, typer.Option(help="--samples: the policy verifier that gave the scores")
    ] = "recorded_score",
    cost_metric: Annotated[str, typer.Option(help="auto | usd | tokens | generated")] = "auto",
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per sample")] = 512,
    deadline_s: Annotated[float, typer.Option(min=0.1, help="Per run")] = 120.0,
    repeats: Annotated[int, typer.Option(min=1, help="Runs per (config, item)")] = 1,
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N items")] = None,
    tier_from: Annotated[str, typer.Option(help="auto | given | solve_rate")] = "auto",
    answer_from: Annotated[str, typer.Option(help="auto | first_line | all")] = "auto",
    solve_rate_thresholds: Annotated[str, typer.Option(help="easy_min,medium_min,hard_min")]
    = _DEFAULT_THRESHOLDS,
    data: Annotated[Path | None, typer.Option("--data-dir", help="Model files (TTC_DATA_DIR)")]
    = None,
) -> None:
    from policies.loader import load_policy
    from router.calibrate.data import EvalFileError, load_items
    from router.calibrate.grid import GridError, dedupe, default_grid, load_grid, parse_spec
    from router.calibrate.workflow import Options, check_grid

    if tier_from not in ("auto", "given", "solve_rate"):
        raise typer.BadParameter("auto, given or solve_rate", param_hint="--tier-from")
    if answer_from not in ("auto", "first_line", "all"):
        raise typer.BadParameter("auto, first_line or all", param_hint="--answer-from")
    if budget is not None and target_accuracy is not None:
        raise typer.BadParameter("give --budget or --target-accuracy, not both")
    if (eval_file is None) == (samples is None):
        typer.echo("error: give an evaluation file or --samples FILE (one of them)", err=True)
        raise typer.Exit(2)
    opts = Options(
        budget=budget, target_accuracy=target_accuracy, shares=parse_shares(shares),
        allow_reference=allow_reference_verifier, holdout=holdout, seed=seed,
        metric=cost_metric, thresholds=_thresholds(solve_rate_thresholds),
        tier_from=tier_from,  # type: ignore[arg-type]
        repeats=repeats, concurrency=concurrency, max_tokens=max_tokens, deadline_s=deadline_s,
    )
    try:
        loaded = load_policy(policy)
        configs = load_grid(grid) if grid else []
        configs += [c for spec in config or [] for c in parse_spec(spec)]
        if samples is not None:
            from router.calibrate.replay_cli import replay_main

            replay_main(samples, configs, loaded, model, out, opts, limit, predict_tiers,
                        score_verifier)
            return
        assert eval_file is not None
        items = load_items(eval_file, answer_from)[:limit]
        thinking = _ints(thinking_budgets, "--thinking-budgets")
        if not configs:
            used = {t.verifier for t in loaded.policy.tiers.values() if t.verifier}
            configs = default_grid(sorted(used), thinking)
        else:
            from router.calibrate.grid import thinking_grid

            configs += thinking_grid(thinking)
        configs = check_grid(dedupe(configs), loaded.policy, model)
    except (EvalFileError, GridError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    where = data_dir(data)
    typer.echo(f"data dir (model files): {where}", err=True)
    asyncio.run(_main(items, configs, loaded, model, out, cache or out / "results.jsonl", opts,
                      where, predict_tiers))


calibrate_cmd.__doc__ = HELP


async def _main(
    items: Any, configs: Any, loaded: Any, model: str, out: Path, cache_path: Path, opts: Any,
    where: Path, predict_tiers: bool,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from router.calibrate.cache import ResultCache
    from router.calibrate.workflow import calibrate_model
    from router.metrics import Metrics
    from router.settings import Settings
    from router.upstreams.pool import UpstreamPool

    console = Console(stderr=True)
    cache = ResultCache(cache_path)
    if len(cache):
        console.print(f"resuming: {len(cache)} finished runs in {cache_path}")
    policy = loaded.policy
    pool = UpstreamPool(Settings(data_dir=where), Metrics())
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

            run, _ = await calibrate_model(items, configs, policy, model, pool.get, cache,
                                           opts, on_done)
    finally:
        await pool.aclose()
    settings = [("policy", loaded.source), ("configurations", str(len(configs))),
                ("repeats", str(opts.repeats)),
                ("runs", f"{run.ran} new, {run.reused} from the cache, {len(run.errors)} failed")]
    from router.calibrate.replay_cli import finish

    await finish(items, configs, run.records, loaded, model, out, opts, predict_tiers,
                 settings, console)
    for e in run.errors[:10]:
        console.print(f"[red]failed: {e}")


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
