"""Metrics of a tier classifier on labelled data (used by training, the CLI and the bench)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from classifier.base import TIERS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Probs = npt.NDArray[np.floating[Any]]
    Ints = npt.NDArray[np.integer[Any]]


def expected_calibration_error(y: Ints, probs: Probs, bins: int = 10) -> float:
    """Top-label ECE with equal-width confidence bins."""
    import numpy as np

    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += float(m.mean()) * abs(float(correct[m].mean()) - float(conf[m].mean()))
    return ece


def evaluate(y: Sequence[int] | Ints, probs: Probs) -> dict[str, Any]:
    """Accuracy, macro-F1, per-tier P/R/F1, confusion, within-one-tier, MAE, ECE."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    yt = np.asarray(y, dtype=int)
    pred = probs.argmax(axis=1)
    labels = list(range(len(TIERS)))
    p, r, f, s = precision_recall_fscore_support(yt, pred, labels=labels, zero_division=0)
    return {
        "n": len(yt),
        "accuracy": float((pred == yt).mean()),
        "macro_f1": float(f1_score(yt, pred, labels=labels, average="macro", zero_division=0)),
        "within_one": float((np.abs(pred - yt) <= 1).mean()),
        "mae_tier": float(np.abs(pred - yt).mean()),
        "ece": expected_calibration_error(yt, probs),
        "per_tier": {
            t.value: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, t in enumerate(TIERS)
        },
        "confusion": confusion_matrix(yt, pred, labels=labels).tolist(),
    }


def level_spearman(levels: Sequence[int], probs: Probs) -> float:
    """Spearman correlation of MATH level with the expected tier (probability-weighted)."""
    import numpy as np
    from scipy.stats import spearmanr

    expected = probs @ np.arange(len(TIERS), dtype=float)
    rho = spearmanr(np.asarray(levels, dtype=float), expected).statistic
    return float(rho)


def format_metrics_table(rows: dict[str, dict[str, Any]]) -> str:
    """Plain-text side-by-side table of the headline metrics of several models."""
    cols = ("accuracy", "macro_f1", "within_one", "mae_tier", "ece", "math500_spearman")
    width = max(len(k) for k in rows) + 2
    head = "model".ljust(width) + "".join(c.rjust(17) for c in cols)
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        cells = "".join(
            (f"{m[c]:.3f}" if isinstance(m.get(c), float) else "-").rjust(17) for c in cols
        )
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def format_detail(m: dict[str, Any]) -> str:
    """Per-tier precision/recall and the confusion matrix (rows = true tier)."""
    lines = [f"{'tier':<11}{'precision':>10}{'recall':>8}{'f1':>7}{'n':>7}"]
    for t, v in m["per_tier"].items():
        lines.append(
            f"{t:<11}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1']:>7.3f}{v['support']:>7}"
        )
    lines.append("confusion (rows true, cols predicted): " + " ".join(t.value for t in TIERS))
    for t, row in zip(TIERS, m["confusion"], strict=True):
        lines.append(f"  {t.value:<10}" + "".join(f"{c:>7}" for c in row))
    return "\n".join(lines)
