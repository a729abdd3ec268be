"""The end of `ttc-router calibrate`, shared by live runs and `--samples` replays: predicted
tiers, calibration and held-out evaluation, outputs, and the console summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classifier.base import Tier
from policies.loader import LoadedPolicy
from router.calibrate.cache import Record
from router.calibrate.data import EvalItem
from router.calibrate.grid import GridConfig, GridError
from router.calibrate.workflow import Evaluation, Options, evaluate, write_outputs


async def predicted_tiers(items: Sequence[EvalItem]) -> tuple[dict[str, Tier] | None, str]:
    """The router's own classifier (TTC_CLASSIFIER_* settings) on every item's question."""
    from classifier import classification_text, load_classifier
    from router.settings import Settings
    from router.upstreams.base import Message

    s = Settings()
    try:
        clf = await asyncio.to_thread(
            lambda: load_classifier(s.classifier_model, s.classifier_artifact,
                                    backend=s.classifier_backend
                                    if s.classifier_artifact is None else None))
        try:
            scores = await clf.classify(
                [classification_text((Message("user", it.question),)) for it in items])
        finally:
            await clf.aclose()
    except Exception as exc:  # no classifier here: report the other tier source only
        return None, f"classifier unavailable ({type(exc).__name__}: {exc})"
    return {it.key: sc.tier for it, sc in zip(items, scores, strict=True)}, "router classifier"


async def finish(
    items: Sequence[EvalItem], configs: Sequence[GridConfig], records: Sequence[Record],
    loaded: LoadedPolicy, model: str, out: Path, opts: Options, predict: bool,
    settings: list[tuple[str, str]], console: Any,
) -> Evaluation:
    predicted, how = (await predicted_tiers(items)) if predict else (None, "off")
    settings = [*settings, ("predicted tiers", how)]
    result = evaluate(items, configs, records, model, opts, predicted)
    paths = write_outputs(result, items, out, model=model, opts=opts, policy=loaded.policy,
                          settings=settings)
    summary(result, paths, console)
    return result


def summary(result: Evaluation, paths: dict[str, Path], console: Any) -> None:
    from router.calibrate.outputs import rule_text
    from router.calibrate.workflow import PLOT_MISSING

    cal = result.cal
    console.print(f"policy tiers from: {result.source}; {rule_text(cal)}")
    for tier, config in cal.policy.items():
        console.print(f"  {tier:10} share {cal.shares[tier]:.2f}  {config.label}")
    if result.holdout is not None:
        for r in result.holdout.ratios:
            value = "not reached" if r.value is None else f"{r.value:.2f}x"
            lo, hi = r.ci
            console.print(f"held-out {r.name}: accuracy {r.accuracy:.3f}, compute ratio "
                          f"{value} [{'-' if lo is None else f'{lo:.2f}'}, "
                          f"{'not reached' if hi is None else f'{hi:.2f}'}]")
    for note in cal.notes:
        console.print(f"note: {note}")
    if "plot" not in paths:
        console.print(f"[yellow]{PLOT_MISSING}")
    for name, path in paths.items():
        console.print(f"{name}: {path}")


def replay_main(
    path: Path, configs: list[GridConfig], loaded: LoadedPolicy, model: str, out: Path,
    opts: Options, limit: int | None, predict: bool, score_verifier: str = "recorded_score",
) -> Evaluation:
    """`calibrate --samples FILE`: replay, then the same analysis and outputs as a live run."""
    from rich.console import Console

    from router.calibrate.replay import replay, replay_grid, replayable
    from router.calibrate.samples import load_samples

    console = Console(stderr=True)
    start = time.perf_counter()
    recorded = load_samples(path)[:limit]
    if not configs:
        smallest = min(len(it.samples) - any(s.greedy for s in it.samples) for it in recorded)
        configs = replay_grid(smallest, all(it.has_scores for it in recorded), score_verifier)
    bad = [c.label for c in configs if not replayable(c)]
    if bad:
        raise GridError("cannot be replayed from independent samples: " + ", ".join(bad))
    spec = loaded.policy.models.get(model)
    price = spec.price.to_price() if spec is not None else None
    records, notes = replay(recorded, configs, model=model, max_tokens=opts.max_tokens,
                            price=price, seed=opts.seed)
    items = [it.eval_item() for it in recorded]
    took = time.perf_counter() - start
    settings = [("source", f"replay of {path} ({len(recorded)} questions, "
                           f"{sum(len(it.samples) for it in recorded)} samples)"),
                ("configurations", str(len(configs))), ("replay time", f"{took:.1f} s"),
                *(("note", n) for n in notes)]
    return asyncio.run(finish(items, configs, records, loaded, model, out, opts, predict,
                              settings, console))
