"""The pass for one text through single-layer heads, in a handful of array operations.

A request classifies one text. The general pass (`EmbeddingClassifier._score_general`) is built
for batches: it stacks the embedding and the features, standardises them, multiplies per head,
adds each head's lexical and rule terms and takes a softmax per head: about fifty numpy calls,
whose fixed costs are nearly all of the work at batch size one, and cost two to three times
more on a CPU that has just woken from idle, as a serving process's does between requests
(`bench/hotpath_cpu.py`: the pass in the server against the same pass back to back).

When every head is one linear layer (the packaged ones are), the standardisation folds into
the weights at load time (`x @ (W / scale) + (b - mean / scale @ W)`), and one text's logits
for both heads are: the pooled static embedding times both heads' embedding weights, over its
norm; the features times theirs (plain Python); the n-gram counts per block (`Counter`) and
their weights in one gather (`classifier.lexical.shared_index`) and one product; the keyword
rule's row. Then a softmax per head over a
handful of numbers, in plain Python. The word pieces come from `StaticEmbedder.token_ids`
(memoised per word), the n-grams from the vectorizer's memos, as in the general pass.

`build()` returns None for anything else (deeper heads, neural embedders, heads whose lexical
maps differ), and the general pass runs. The two agree within float32 rounding; the tests hold
them together on many texts.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from classifier.features import feature_row
from classifier.labels import rule_task

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from classifier.embedder import Embedder
    from classifier.head import Head
    from classifier.lexical import LexicalVectorizer

    Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Rules:
    """A head's keyword-rule term: the row of `weights` for the class `rule_task` names."""

    column: dict[str, int]
    weights: list[list[float]]
    start: int  # the head's first column in the joint logits


@dataclass(frozen=True)
class LinearPass:
    """One text -> the probabilities of every head, side by side (tier head first)."""

    embedder: Any  # a StaticEmbedder, or None without an embedding
    emb_weights: Any  # (dim, k) float32: every head's folded embedding weights
    feat_weights: list[list[float]]  # per feature, its weight in each joint column
    bias: list[float]
    lexical: LexicalVectorizer | None
    lex_index: Any  # (column -> weight row, weight rows) when `lexical` is set
    lex_start: int  # the first joint column the lexical weights cover
    rules: tuple[_Rules, ...]
    heads: tuple[tuple[int, int, float], ...]  # (start, stop, temperature) per head

    def __call__(self, text: str) -> tuple[float, ...]:
        z = list(self.bias)
        for f, row in zip(feature_row(text), self.feat_weights, strict=True):
            if f:
                for i, w in enumerate(row):
                    z[i] += f * w
        if self.embedder is not None:
            ids = self.embedder.token_ids(text)
            if ids:
                pooled = self.embedder.pooled(ids)
                norm = max(math.sqrt(float(pooled @ pooled)), 1e-12)
                for i, v in enumerate((pooled @ self.emb_weights).tolist()):
                    z[i] += v / norm
        if self.lexical is not None:
            for i, v in enumerate(self._lexical(self.lexical, text), self.lex_start):
                z[i] += v
        if self.rules:
            task = rule_task(text)
            for r in self.rules:
                j = r.column.get(task)
                if j is not None:
                    for i, w in enumerate(r.weights[j], r.start):
                        z[i] += w
        out = array("f")  # float32 values, as the general pass gives them
        for start, stop, temperature in self.heads:
            part = z[start:stop]
            top = max(part)
            e = [math.exp((v - top) / temperature) for v in part]
            total = sum(e)
            out.extend([v / total for v in e])
        return tuple(out.tolist())

    def _lexical(self, vec: LexicalVectorizer, text: str) -> list[float]:
        """The heads' lexical term for `text` (empty without an n-gram): its n-gram columns
        from the vectorizer's memos, counted and scaled per block by
        `LexicalVectorizer._scaled`'s rules in plain Python, then weighed in one gather and
        one product."""
        import numpy as np

        n = 1 << vec.spec.bits
        cols: list[int] = []
        values: list[float] = []
        for b, found in enumerate(vec.block_columns(text)):
            counts = Counter(found)
            if not counts:
                continue
            if vec.spec.sublinear_tf:
                block = [_LOG1P[c] if c < len(_LOG1P) else math.log1p(c)
                         for c in counts.values()]
            else:
                block = [float(c) for c in counts.values()]
            scale = vec.spec.weight / math.sqrt(math.fsum([v * v for v in block]))
            values.extend([v * scale for v in block])
            cols.extend(counts if b == 0 else [c + b * n for c in counts])
        if not cols:
            return []
        row_of, weights = self.lex_index
        lex: list[float] = (np.array(values, np.float32)
                            @ weights[row_of[np.array(cols)]]).tolist()
        return lex


_LOG1P = [math.log1p(c) for c in range(64)]


def build(embedder: Embedder, head: Head, task_head: Head | None,
          shared_lex: tuple[Any, Any] | None) -> LinearPass | None:
    """The single-text pass for these heads, or None where it does not apply (see the module
    docstring). `shared_lex`: both heads' lexical index (`EmbeddingClassifier._shared_lex`)."""
    import numpy as np

    heads = [h for h in (head, task_head) if h is not None]
    if any(len(h.weights) != 1 for h in heads):
        return None
    if embedder.dim and not hasattr(embedder, "token_ids"):
        return None  # a neural embedder: the pass is its forward pass, not this
    lexical = [h for h in heads if h.lexical is not None]
    if len(lexical) == 2:
        if shared_lex is None:
            return None  # two hashed maps
        lex_index, lex_head = shared_lex, head
    elif lexical:
        lex_index, lex_head = lexical[0].lex_index, lexical[0]
    else:
        lex_index, lex_head = None, head
    widths = [len(h.classes) for h in heads]
    k = sum(widths)
    n_feat = head.input_dim - head.embedding_dim
    emb = np.zeros((embedder.dim, k), np.float32)
    feat = np.zeros((n_feat, k), np.float64)
    bias = np.zeros(k, np.float64)
    spans: list[tuple[int, int, float]] = []
    rules: list[_Rules] = []
    start = 0
    for h, width in zip(heads, widths, strict=True):
        w = h.weights[0].astype(np.float64)
        folded = w / h.scale.astype(np.float64)[:, None]
        bias[start:start + width] = h.biases[0] - (h.mean / h.scale).astype(np.float64) @ w
        d = h.embedding_dim
        if d:
            emb[:, start:start + width] = folded[:d]
        feat[:, start:start + width] = folded[d:]
        if h.rule_weights is not None:
            rules.append(_Rules({c: i for i, c in enumerate(h.rule_classes)},
                                h.rule_weights.astype(np.float64).tolist(), start))
        spans.append((start, start + width, float(h.temperature)))
        start += width
    lex_start = 0 if lex_head is head else widths[0]
    return LinearPass(
        embedder=embedder if embedder.dim else None,
        emb_weights=emb,
        feat_weights=feat.tolist(),
        bias=bias.tolist(),
        lexical=None if lex_index is None else lex_head.vectorizer,
        lex_index=lex_index,
        lex_start=lex_start,
        rules=tuple(rules),
        heads=tuple(spans),
    )


__all__ = ["LinearPass", "build"]
