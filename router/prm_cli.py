"""`ttc-router prm-labels DATA --model NAME --out labels.jsonl`: Monte Carlo step labels.

Mount with `app.command("prm-labels")(prm_labels_cmd)`.

DATA is the evaluation file `calibrate` reads (`router.calibrate.data`: `question` or `prompt`
/ `messages`, and a `reference` answer). Each item gets `--chains` sampled solutions, split
into steps at `--step-delimiter`; each step is labelled by `--k` completions of the chain up
to it (`strategies.prm_labels`). Rows are appended to OUT as each item finishes, so an
interrupted run continues where it stopped (items whose id is already in OUT are skipped).
The summary (label distribution, tokens, cost at the model's policy price) is printed and
written to OUT with the suffix `.summary.json`.

Output rows are TRL `PRMTrainer` stepwise-supervision rows (`prompt`, `completions`,
`labels`) with extra fields; `strategies.prm_labels.ROW_FIELDS` documents each.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from pathlib import Path
from typing import Annotated, Any

import typer


def prm_labels_cmd(
    data: Annotated[Path, typer.Argument(help="JSONL with question/prompt and reference")],
    model: Annotated[str, typer.Option(help="Model name in the policy's `models`")] = "local",
    out: Annotated[Path, typer.Option(help="Output JSONL (appended; resumable)")] = Path(
        "prm_labels.jsonl"
    ),
    policy: Annotated[Path | None, typer.Option(help="Policy YAML (packaged default)")] = None,
    chains: Annotated[int, typer.Option(min=1, max=256, help="Solutions per item")] = 4,
    k: Annotated[int, typer.Option(min=1, max=256, help="Completions per step")] = 8,
    step_delimiter: Annotated[
        str, typer.Option(help="Step separator; backslash escapes allowed")
    ] = "\\n",
    stop: Annotated[
        list[str] | None, typer.Option(help="Stop sequence, repeatable; escapes allowed")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Per chain and completion")] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0)] = 0.7,
    concurrency: Annotated[int, typer.Option(min=1, help="Items in flight")] = 2,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items")] = None,
) -> None:
    """Label reasoning steps by Monte Carlo completions, for training a PRM."""
    from policies.loader import load_policy
    from router.calibrate.data import EvalFileError, load_items
    from strategies.prm_labels import LabelSettings

    try:
        items = load_items(data)[:limit]
    except EvalFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    missing = [it.id for it in items if it.reference is None]
    if missing:
        typer.echo(f"error: items without a reference answer: {', '.join(missing[:5])}", err=True)
        raise typer.Exit(2)
    loaded = load_policy(policy)
    if model not in loaded.policy.models:
        valid = ", ".join(sorted(loaded.policy.models))
        typer.echo(f"error: unknown model {model!r} (policy models: {valid})", err=True)
        raise typer.Exit(2)
    settings = LabelSettings(
        chains=chains,
        k=k,
        temperature=temperature,
        max_tokens=max_tokens,
        step_delimiter=_unescape(step_delimiter),
        stop=tuple(_unescape(s) for s in stop or ()),
    )
    failed = asyncio.run(_main(items, loaded.policy, model, out, settings, concurrency))
    typer.echo(json.dumps(_summary(out, loaded.policy, model, failed), indent=1))


def _unescape(text: str) -> str:
    return codecs.decode(text, "unicode_escape")


def _done_ids(out: Path) -> set[str]:
    if not out.exists():
        return set()
    done = set()
    for line in out.read_text("utf-8").splitlines():
        if line.strip():
            done.add(str(json.loads(line)["id"]))
    return done


async def _main(
    items: Any, policy: Any, model: str, out: Path, s: Any, concurrency: int
) -> list[str]:
    """Label the items not yet in `out`; the ids of items that failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from router.metrics import Metrics
    from router.settings import Settings
    from router.upstreams.pool import UpstreamPool
    from strategies.generator import UpstreamGenerator
    from strategies.prm_labels import label_problem

    console = Console(stderr=True)
    done = _done_ids(out)
    todo = [it for it in items if it.id not in done]
    if done:
        console.print(f"resuming: {len(items) - len(todo)} of {len(items)} items in {out}")
    if not todo:
        return []
    pool = UpstreamPool(Settings(), Metrics())
    await pool.rebuild({model: policy.models[model]})
    generator = UpstreamGenerator(pool.get(model))
    gate = asyncio.Semaphore(concurrency)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    try:
        with (
            Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar,
            out.open("a", encoding="utf-8") as f,
        ):
            task = bar.add_task("prm-labels", total=len(items), completed=len(items) - len(todo))

            async def one(item: Any) -> None:
                async with gate:
                    try:
                        labelled = await label_problem(generator, item.problem(), s)
                    except Exception as exc:  # one bad item must not lose the others
                        failed.append(item.id)
                        bar.console.print(f"[red]{item.id}: {type(exc).__name__}: {exc}")
                        return
                    finally:
                        bar.advance(task, 1)
                rows = [c.row(item.problem(), item.id, i, s.k) for i, c in labelled]
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                f.flush()

            await asyncio.gather(*(one(it) for it in todo))
    finally:
        await pool.aclose()
    return failed


def _summary(out: Path, policy: Any, model: str, failed: list[str]) -> dict[str, Any]:
    """Label distribution and cost over the whole output file (this run and earlier ones)."""
    from strategies.prm_labels import summarise

    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines() if line.strip()]
    summary = summarise(rows)
    price = policy.models[model].price.to_price()
    summary["cost_usd"] = round(
        (summary["prompt_tokens"] * price.input_per_mtok
         + summary["completion_tokens"] * price.output_per_mtok) / 1e6, 8
    )
    summary["model"] = model
    summary["failed_items"] = failed
    summary["output"] = str(out)
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
