"""Calibrating a fitted head on a slice of its training data: the softmax temperature (log
loss) and, optionally, per-class logit offsets (macro-F1; the head's decision moves toward the
classes it under-predicts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]


def fit_temperature(logits: Array, y: Sequence[int]) -> float:
    """The temperature (a grid over 0.25-6) that minimises the log loss of `logits / t`."""
    import numpy as np

    yt = np.asarray(y)
    best, best_nll = 1.0, float("inf")
    for t in np.geomspace(0.25, 6.0, 80):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = float(-logp[np.arange(len(yt)), yt].mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def macro_f1(y: Any, pred: Any, n_classes: int) -> float:
    """Macro-F1 over the classes present in `y` (numpy; the offset search calls it often)."""
    import numpy as np

    scores = []
    for k in range(n_classes):
        t, p = y == k, pred == k
        if t.any():
            tp = float((t & p).sum())
            scores.append(2 * tp / (t.sum() + p.sum()))
    return float(np.mean(scores))


def fit_logit_offsets(z: Array, y: Any, step: float = 0.1, span: float = 0.5) -> Array:
    """Per-class additions to the scaled logits `z` (the first class fixed at 0) that maximise
    macro-F1 on (z, y): a grid of +-`span`; ties go to the smallest offsets."""
    import itertools

    import numpy as np

    n = z.shape[1]
    if n > 5:
        raise ValueError(f"an offset grid over {n} classes is too large to search")
    grid = np.round(np.arange(-span, span + step / 2, step), 6)
    best, best_key = np.zeros(n, np.float32), (macro_f1(y, z.argmax(axis=1), n), 0.0)
    for rest in itertools.product(grid, repeat=n - 1):
        o = np.array((0.0, *rest), np.float32)
        key = (macro_f1(y, (z + o).argmax(axis=1), n), -float(np.abs(o).sum()))
        if key > best_key:
            best, best_key = o, key
    return best
