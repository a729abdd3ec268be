"""`ttc-router classifier train | calibrate-threshold` and `ttc-router classify "text"`.

`classifier_app` is a typer sub-app (mount with `app.add_typer(classifier_app,
name="classifier")`); `classify_cmd` is a plain function (mount with
`app.command("classify")(classify_cmd)`).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from classifier.data import DEFAULT_CAP_PER_STRATUM
from classifier.embedder import (
    PACKAGED_MODEL,
    Embedder,
    NullEmbedder,
    SentenceTransformerEmbedder,
)
from classifier.labels import DEFAULT_SOLVE_RATE_THRESHOLDS

# measured on an inner validation slice of the mix's train split (see the model cards)
DEFAULT_C = {"embedding": 1.0, "combined": 3.0, "lexical": 3.0}
DEFAULT_DENSE_WEIGHT = {"combined": 0.18, "lexical": 0.3}

# rich_markup_mode=None: click's plain help wraps long option names instead of cutting them
# off at the terminal width (Rich's tables truncate at 80 columns when not on a TTY).
classifier_app = typer.Typer(
    help="Train and calibrate the difficulty classifier.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _ngrams(value: str) -> tuple[int, int] | None:
    if value.strip().lower() in ("", "none", "off"):
        return None
    parts = [int(v) for v in value.split(",")]
    if len(parts) != 2:
        raise typer.BadParameter("an n-gram range 'lo,hi', or 'none'")
    return parts[0], parts[1]


def _thresholds(value: str) -> tuple[float, float, float]:
    parts = [float(v) for v in value.split(",")]
    if len(parts) != 3:
        raise typer.BadParameter("three comma-separated rates: easy_min,medium_min,hard_min")
    return parts[0], parts[1], parts[2]


@classifier_app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option(help="Artifact to write (.npz; the card goes beside)")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Required. Training data: a directory laid out like the project's public mix "
            "(the files named in classifier/labels.py, e.g. a source checkout's ../shared/data), "
            'or your own JSONL with one {"text", "tier"} or {"text", "solve_rate"} per line.',
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="sentence-transformers name/path")] = PACKAGED_MODEL,
    runtime: Annotated[
        str, typer.Option(help="Embedding runtime the head is trained on (and will serve with): "
                          "torch, onnx (fp32, same vectors as torch), onnx-int8 or static")
    ] = "static",
    backend: Annotated[
        str, typer.Option(help="combined (embedding + text features + hashed n-grams), lexical "
                          "(no embedding model), or embedding (embedding + text features)")
    ] = "combined",
    word_ngrams: Annotated[str, typer.Option(help="hashed word n-grams 'lo,hi' or none")] = "1,2",
    char_ngrams: Annotated[str, typer.Option(help="hashed char n-grams 'lo,hi' or none")] = "2,5",
    lex_bits: Annotated[int, typer.Option(help="2**bits hash buckets per n-gram block")] = 18,
    dense_weight: Annotated[
        float | None,
        typer.Option(help="scale of the standardised dense block beside the n-grams"),
    ] = None,
    cap_per_stratum: Annotated[int, typer.Option(min=10)] = DEFAULT_CAP_PER_STRATUM,
    c: Annotated[
        float | None, typer.Option(help="Inverse regularisation strength (default per backend)")
    ] = None,
    hidden: Annotated[int, typer.Option(help="MLP hidden units; 0 = logistic regression")] = 0,
    seed: int = 0,
    max_seq_length: Annotated[int, typer.Option(help="Tokens embedded per text")] = 128,
    cache: Annotated[
        Path | None, typer.Option(help="Embedding cache (.npz) reused across runs")
    ] = None,
    solve_rate_thresholds: Annotated[
        str, typer.Option(help="easy_min,medium_min,hard_min for {'text','solve_rate'} rows")
    ] = ",".join(str(t) for t in DEFAULT_SOLVE_RATE_THRESHOLDS),
) -> None:
    """Train the head on the mix (or operator data) and print/write the evaluation report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from classifier.evaluation import format_detail, format_metrics_table
    from classifier.lexical import LexicalSpec
    from classifier.train import TrainConfig, build_dataset, train

    console = Console(stderr=True)
    if data is None:
        raise typer.BadParameter(
            "is required: the installed package ships the trained heads, not their training "
            "data. Pass your own JSONL ({\"text\", \"tier\"} or {\"text\", \"solve_rate\"} per "
            "line) or the public mix's directory from a source checkout (../shared/data)",
            param_hint="--data",
        )
    if not data.exists():
        raise typer.BadParameter(
            f"{data} does not exist: pass the public mix's directory or your own JSONL",
            param_hint="--data",
        )
    try:
        cfg = TrainConfig(
            cap_per_stratum=cap_per_stratum, c=c or DEFAULT_C.get(backend, 1.0), hidden=hidden,
            seed=seed, model=model, solve_rate_thresholds=_thresholds(solve_rate_thresholds),
            backend=backend, dense_weight=dense_weight or DEFAULT_DENSE_WEIGHT.get(backend, 1.0),
            lexical=LexicalSpec(_ngrams(word_ngrams), _ngrams(char_ngrams), lex_bits),
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    ds = build_dataset(data, cfg)
    total = len(ds.train) + len(ds.test) + len(ds.eval)
    embedder: Embedder
    if backend == "lexical":
        embedder = NullEmbedder()
    else:
        console.print(f"loading {model} ({runtime})")
        embedder = _embedder(runtime, model, max_seq_length)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console,
    ) as bar:
        task = bar.add_task("embedding", total=total)
        metrics = train(
            data, out, embedder, cfg,
            progress=lambda n: bar.advance(task, n),
            status=lambda s: bar.console.print(s),
            cache=cache,
        )
    report = format_metrics_table(metrics) + "\n\n" + format_detail(metrics["model"]) + "\n"
    typer.echo(report)
    out.with_suffix(".report.txt").write_text(report, encoding="utf-8")
    typer.echo(f"wrote {out}, {out.with_suffix('.json')}, {out.with_suffix('.report.txt')}")


def _embedder(runtime: str, model: str, max_seq_length: int) -> Embedder:
    if runtime == "lexical":
        return NullEmbedder()
    if runtime == "torch":
        return SentenceTransformerEmbedder(model, max_seq_length=max_seq_length)
    if runtime == "static":
        from classifier.static_embedder import StaticEmbedder

        return StaticEmbedder(max_seq_length=max_seq_length)
    if runtime not in ("onnx", "onnx-int8"):
        raise typer.BadParameter("lexical, torch, onnx, onnx-int8 or static",
                                 param_hint="--runtime")
    from classifier.onnx_embedder import OnnxEmbedder, Variant

    variant: Variant = "fp32" if runtime == "onnx" else "int8"
    return OnnxEmbedder(model, variant=variant, max_seq_length=max_seq_length)


@classifier_app.command("train-task")
def train_task_cmd(
    out: Annotated[Path, typer.Option(help="Artifact to write (.npz; the card goes beside)")],
    data: Annotated[
        Path, typer.Option(help="Required. The public mix's directory (task labels come from "
                           "classifier/labels.py; operator JSONL has no task field)")
    ],
    runtime: Annotated[
        str, typer.Option(help="lexical (no embedding; the shipped head), torch, onnx, "
                          "onnx-int8 or static")
    ] = "lexical",
    model: Annotated[str, typer.Option(help="sentence-transformers name/path")] = PACKAGED_MODEL,
    cap: Annotated[int, typer.Option(min=10, help="rows kept per (source, task)")] = 150,
    c: Annotated[float, typer.Option(help="Inverse regularisation strength")] = 3.0,
    lexical: Annotated[bool, typer.Option(help="add hashed n-grams beside the embedding")] = False,
    dense_weight: Annotated[
        float | None, typer.Option(help="scale of the dense block beside the n-grams")
    ] = None,
    cache: Annotated[Path | None, typer.Option(help="Embedding cache (.npz)")] = None,
    rules: Annotated[
        str, typer.Option(help="keyword-rule verdicts the head reads as features, "
                          "comma-separated task names ('' for none; the default is the "
                          "shipped head's set)")
    ] = "logic,planning,chat,creative,rewrite",
    rule_weight: Annotated[float, typer.Option(help="scale of the rule features")] = 1.0,
    supplement: Annotated[
        bool, typer.Option(help="add the project-written rows for sparse classes "
                           "(classifier/data/task_supplement.jsonl) to the train side only; "
                           "off for the shipped head (docs/benchmarks.md, 'Task type')")
    ] = False,
) -> None:
    """Train the task-type head (maths, code, logic, planning, factual, creative, rewrite, chat,
    other) on the public mix; print its held-out report."""
    from classifier.task_train import SUPPLEMENT, format_task_report, train_task_head
    from classifier.train import TrainConfig

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not the mix's directory", param_hint="--data")
    from classifier.labels import TASKS

    rule_classes = tuple(r.strip() for r in rules.split(",") if r.strip())
    if not set(rule_classes) <= set(TASKS):
        raise typer.BadParameter(f"task names are {', '.join(TASKS)}", param_hint="--rules")
    backend = "lexical" if runtime == "lexical" else ("combined" if lexical else "embedding")
    if rule_classes and backend == "embedding":
        raise typer.BadParameter("the rule features sit beside the n-grams: add --lexical, or "
                                 "pass --rules ''", param_hint="--rules")
    embedder = _embedder(runtime, model, 128)
    try:
        cfg = TrainConfig(backend=backend, c=c, model=model,
                          dense_weight=dense_weight or DEFAULT_DENSE_WEIGHT.get(backend, 1.0),
                          rule_classes=rule_classes, rule_weight=rule_weight)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    metrics = train_task_head(data, out, embedder, cfg, cap=cap, cache=cache,
                              supplement=SUPPLEMENT if supplement else None)
    report = format_task_report(metrics) + "\n"
    typer.echo(report)
    out.with_suffix(".report.txt").write_text(report, encoding="utf-8")


@classifier_app.command("distill-static")
def distill_static_cmd(
    out: Annotated[Path | None, typer.Option(help="Table to write (the packaged one)")] = None,
    dim: Annotated[int, typer.Option(min=8, max=384, help="PCA components kept")] = 128,
) -> None:
    """Distil the static token table from the packaged MiniLM (torch, offline; ~1-2 min). The
    heads trained on the old table are refused with the new one: retrain them after."""
    from classifier.static_embedder import STATIC_TABLE, distill

    card = distill(None, out or STATIC_TABLE, dim=dim)
    typer.echo(json.dumps(card, indent=2))


@classifier_app.command("export-onnx")
def export_onnx_cmd(
    model: Annotated[
        str | None, typer.Option(help="Local sentence-transformers folder (packaged MiniLM)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Cache folder ($TTC_ONNX_DIR, else ~/.cache/ttc-router/onnx)"),
    ] = None,
) -> None:
    """Export the embedding model to ONNX (fp32 + int8) now, e.g. at image build; offline."""
    from classifier.onnx_embedder import ensure_onnx

    for variant in ("fp32", "int8"):
        path = ensure_onnx(variant, model, out)
        typer.echo(f"{variant:5} {path} ({path.stat().st_size / 2**20:.1f} MiB)")


def _read_texts(path: Path) -> list[str]:
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
        except ValueError:
            row = line
        texts.append(str(row.get("text", "")) if isinstance(row, dict) else str(row))
    return texts


@classifier_app.command("calibrate-threshold")
def calibrate_threshold_cmd(
    fallback_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.1,
    artifact: Annotated[Path | None, typer.Option(help="Head artifact (packaged)")] = None,
    current: Annotated[
        float | None, typer.Option(help="The policy's current confidence threshold")
    ] = None,
    texts: Annotated[
        Path | None,
        typer.Option(help="Operator traffic (JSONL with 'text', or lines) instead of held-out"),
    ] = None,
) -> None:
    """Pick the confidence threshold that sends `fallback_rate` of traffic to the fallback."""
    import numpy as np

    from classifier.head import load_head

    head = load_head(artifact)
    correct: Any = None
    conf: Any
    if texts is not None:
        from classifier.embedding import load_classifier

        rows = _read_texts(texts)
        clf = load_classifier(None, artifact, warmup=False)

        async def run() -> list[float]:
            scores = await clf.classify(rows)
            await clf.aclose()
            return [s.confidence for s in scores]

        conf = np.asarray(asyncio.run(run()))
        where = f"{len(conf)} texts from {texts}"
    else:
        conf = head.extra.get("heldout_confidence")
        if conf is None:
            raise typer.BadParameter("artifact has no held-out confidences; pass --texts")
        correct = head.extra["heldout_pred"] == head.extra["heldout_true"]
        where = f"{len(conf)} held-out examples"
    threshold = float(np.quantile(conf, fallback_rate)) if len(conf) else 0.0
    sent = conf < threshold
    typer.echo(f"calibrated on {where}")
    typer.echo(
        f"confidence_threshold = {threshold:.4f}: sends {sent.mean():.1%} to the LLM fallback"
    )
    if correct is not None and sent.any() and (~sent).any():
        typer.echo(
            f"  embedding accuracy on kept traffic {correct[~sent].mean():.3f}, "
            f"on traffic sent to the fallback {correct[sent].mean():.3f}"
        )
    if current is not None:
        now = float((conf < current).mean())
        typer.echo(
            f"would change: confidence_threshold {current:.4f} -> {threshold:.4f} "
            f"(fallback share {now:.1%} -> {sent.mean():.1%})"
        )


def classify_cmd(
    text: Annotated[str, typer.Argument(help="Query text to classify")],
    model: Annotated[str | None, typer.Option(help="sentence-transformers name/path")] = None,
    artifact: Annotated[Path | None, typer.Option(help="Head artifact (packaged)")] = None,
    backend: Annotated[
        str | None, typer.Option(help="Packaged artifact to use: combined or lexical")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Print the tier, probabilities, source and latency for one text."""
    from classifier.embedding import load_classifier

    clf = load_classifier(model, artifact, backend=backend)

    async def run() -> tuple[Any, float]:
        start = time.perf_counter()
        [scores] = await clf.classify([text])
        took = time.perf_counter() - start
        await clf.aclose()
        return scores, took

    scores, took = asyncio.run(run())
    result = {
        "tier": scores.tier.value,
        "confidence": round(scores.confidence, 4),
        "probabilities": {k: round(v, 4) for k, v in scores.as_dict().items()},
        "source": scores.source,
        "latency_ms": round(took * 1000, 2),
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"tier        {result['tier']} (confidence {result['confidence']:.3f})")
    typer.echo("probability " + "  ".join(f"{k} {v:.3f}" for k, v in scores.as_dict().items()))
    typer.echo(f"source      {result['source']}")
    typer.echo(f"latency     {result['latency_ms']} ms")
