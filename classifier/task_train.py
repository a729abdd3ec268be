"""Training the task-type head: same embedding, features and artifact format as the tier head.

    mix (classifier/labels.py: `task_of` per row) -> at most `cap` rows per (source, task)
    -> the tier head's deterministic split (sha256 of the text) -> + the supplement (train side
    only) -> embed -> logistic regression (class-balanced) -> temperature on a calibration
    slice -> refit -> held-out report

The supplement (`classifier/data/task_supplement.jsonl`, `SUPPLEMENT`) is training rows written
by this project for the task classes the public mix barely has: conversation/chit-chat (the mix
holds 4 rows in all) and planning (35), plus near-miss rows for
their neighbours (short factual questions, short maths, code, writing and rewriting requests) so
that the head does not learn "short means chat". They were written for this purpose, not taken
from any dataset or from the held-out rows. The shipped head does not use them (trained with
them it was not better on the held-out split: docs/benchmarks.md, "Task type"); `train-task
--supplement` does. They are TRAINING ONLY: `task_examples` (what
`bench/classifier.py` and the held-out report evaluate on) never reads them, `train_task_head`
adds them to the train side after the split, and a supplement row whose text also occurs in
the mix is dropped.

The artifact's card says `target: task` and lists `classes` (`classifier.labels.TASKS`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.base import Tier
from classifier.data import Example, cap_strata, load_eval, load_mix, split, text_hash
from classifier.embedder import Embedder
from classifier.features import text_features, window
from classifier.head import save_head
from classifier.labels import TASKS, task_of
from classifier.train import TrainConfig, embed, fit_head

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_TASK_CAP = 150
SUPPLEMENT = Path(__file__).resolve().parent / "data" / "task_supplement.jsonl"
SUPPLEMENT_SOURCE = "supplement"


@dataclass(frozen=True)
class TaskExample:
    example: Example
    task: str

    @property
    def text(self) -> str:
        return self.example.text

    @property
    def source(self) -> str:
        return self.example.source


def task_examples(data: Path, cap: int = DEFAULT_TASK_CAP, seed: int = 0) -> list[TaskExample]:
    """The mix with task labels, capped per (source, task) so big maths sources do not drown
    the small instruction sources."""
    rows = []
    for ex in load_mix(data):
        detail = ex.stratum.split("/", 1)[1] if "/" in ex.stratum else ""
        task = task_of(ex.source, detail, ex.text)
        rows.append(replace(ex, stratum=f"{ex.source}/{task}"))
    kept = cap_strata(rows, cap, seed)
    return [TaskExample(e, e.stratum.split("/", 1)[1]) for e in kept]


def load_supplement(path: Path = SUPPLEMENT) -> list[TaskExample]:
    """The project-written training rows (`{"text", "task"}` per line); training only.

    The tier field of the wrapped `Example` is a placeholder: the task head never reads it.
    """
    out = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            text, task = str(row.get("text") or "").strip(), row.get("task")
            if not text or task not in TASKS:
                raise ValueError(f"{path}:{i}: needs a text and a task in {', '.join(TASKS)}")
            ex = Example(text, Tier.EASY, SUPPLEMENT_SOURCE, f"{SUPPLEMENT_SOURCE}/{task}")
            out.append(TaskExample(ex, str(task)))
    return out


def task_split(
    examples: Sequence[TaskExample],
) -> tuple[list[TaskExample], list[TaskExample]]:
    by_text = {id(t.example): t for t in examples}
    train, test = split([t.example for t in examples])
    return [by_text[id(e)] for e in train], [by_text[id(e)] for e in test]


def task_metrics(
    y: Sequence[int], probs: npt.NDArray[np.float32], sources: Sequence[str]
) -> dict[str, Any]:
    """Macro-F1, per-task F1, confusion (rows true) and per-source accuracy."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, f1_score

    yt, pred = np.asarray(y), probs.argmax(axis=1)
    labels = list(range(len(TASKS)))
    f1 = f1_score(yt, pred, labels=labels, average=None, zero_division=0)
    present = [i for i in labels if (yt == i).any()]
    per_source = {}
    for s in sorted(set(sources)):
        m = np.asarray([x == s for x in sources])
        per_source[s] = {"n": int(m.sum()), "accuracy": float((pred[m] == yt[m]).mean())}
    return {
        "n": len(yt),
        "accuracy": float((pred == yt).mean()),
        "macro_f1": float(np.mean(f1[present])) if present else 0.0,
        "per_task": {
            TASKS[i]: {"f1": float(f1[i]), "support": int((yt == i).sum())} for i in labels
        },
        "confusion": confusion_matrix(yt, pred, labels=labels).tolist(),
        "per_source": per_source,
    }


def train_task_head(
    data: Path,
    out: Path,
    embedder: Embedder,
    cfg: TrainConfig,
    *,
    cap: int = DEFAULT_TASK_CAP,
    cache: Path | None = None,
    progress: Callable[[int], None] | None = None,
    supplement: Path | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the held-out split, save the artifact; return the metrics.

    `supplement` (e.g. `SUPPLEMENT`; None for none, the shipped head's setting) adds its rows to
    the train side only, never to the test side.
    """

    mix = task_examples(data, cap, cfg.seed)
    train, test = task_split(mix)
    extra: list[TaskExample] = []
    if supplement is not None:
        # the whole mix (uncapped) and the evaluation sets: no supplement row repeats any
        in_mix = {text_hash(e.text) for e in load_mix(data) + load_eval(data)}
        extra = [t for t in load_supplement(supplement) if text_hash(t.text) not in in_mix]
        train = train + extra
    rows = train + test
    emb = embed(embedder, [t.text for t in rows], progress, cache=cache)
    wins = [window(t.text) for t in rows]
    feats = text_features(wins)
    y = [TASKS.index(t.task) for t in rows]
    n = len(train)
    keys = [text_hash(t.text) for t in train]
    head = fit_head(emb[:n], feats[:n], y[:n], keys, cfg, wins[:n], n_classes=len(TASKS))
    probs = head.predict_proba(emb[n:], feats[n:], wins[n:])
    metrics = task_metrics(y[n:], probs, [t.source for t in test])
    card = {
        "name": "ttc-router task-type head",
        "target": "task",
        "classes": list(TASKS),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "embedding_model": embedder.name if embedder.dim else None,
        "embedding_runtime": getattr(embedder, "runtime", "torch") if embedder.dim else None,
        "max_seq_length": getattr(embedder, "max_seq_length", None),
        "static_table_sha256": getattr(embedder, "card", {}).get("sha256"),
        "head": "logistic_regression",
        "config": {"backend": cfg.backend, "c": cfg.c, "cap_per_source_task": cap,
                   "dense_weight": cfg.dense_weight, "seed": cfg.seed,
                   "rule_classes": list(cfg.rule_classes), "rule_weight": cfg.rule_weight},
        "label_mapping": "classifier/labels.py (SOURCE_TASKS, CATEGORY_TASKS, TASK_RULES)",
        "training_data": {
            "train": n, "test": len(test), "split": "sha256(text) % 5 == 0 -> test",
            "per_task_train": dict(Counter(t.task for t in train)),
            "supplement": None if supplement is None else {
                "file": ("classifier/data/task_supplement.jsonl" if supplement == SUPPLEMENT
                         else str(supplement)), "rows": len(extra),
                "sha256": hashlib.sha256(supplement.read_bytes()).hexdigest(),
                "per_task": dict(Counter(t.task for t in extra)),
                "use": "train side only",
            },
        },
        "metrics": metrics,
    }
    save_head(replace(head, card=card), out)
    return metrics


def format_task_report(m: dict[str, Any]) -> str:
    lines = [f"task-type head: n={m['n']} accuracy {m['accuracy']:.3f} "
             f"macro-F1 {m['macro_f1']:.3f}", f"{'task':<10}{'f1':>7}{'n':>6}"]
    for t, v in m["per_task"].items():
        lines.append(f"{t:<10}{v['f1']:>7.3f}{v['support']:>6}")
    lines.append("confusion (rows true, cols predicted): " + " ".join(TASKS))
    for t, row in zip(TASKS, m["confusion"], strict=True):
        lines.append(f"  {t:<9}" + "".join(f"{c:>6}" for c in row))
    return "\n".join(lines)
