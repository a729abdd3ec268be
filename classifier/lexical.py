"""Hashed lexical features: word and character n-grams with no stored vocabulary.

Every column is `murmurhash3(n-gram) mod 2**bits` (scikit-learn's `HashingVectorizer`,
`alternate_sign=False`), so the feature map is rebuilt from the hyper-parameters in the
model card alone; the artifact holds only the weights of the buckets seen in training.
Per block (words, characters): counts -> `log1p` (sublinear tf, stateless) -> L2 norm, then
the block is multiplied by `weight` (its scale beside the standardised dense features).
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import scipy.sparse as sp

Range = tuple[int, int]


@dataclass(frozen=True)
class LexicalSpec:
    """Hyper-parameters of the hashed feature map (recorded in the model card)."""

    word_ngrams: Range | None = (1, 2)
    char_ngrams: Range | None = (2, 5)  # `char_wb`: n-grams inside word boundaries
    bits: int = 18  # 2**bits buckets per block
    sublinear_tf: bool = True
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.word_ngrams is None and self.char_ngrams is None:
            raise ValueError("a lexical spec needs word or character n-grams")
        for r in (self.word_ngrams, self.char_ngrams):
            if r is not None and not (1 <= r[0] <= r[1] <= 8):
                raise ValueError(f"bad n-gram range {r}")
        if not 10 <= self.bits <= 22 or self.weight <= 0:
            raise ValueError("bits must be in [10, 22] and weight > 0")

    @property
    def blocks(self) -> list[tuple[str, Range]]:
        out: list[tuple[str, Range]] = []
        if self.word_ngrams is not None:
            out.append(("word", self.word_ngrams))
        if self.char_ngrams is not None:
            out.append(("char_wb", self.char_ngrams))
        return out

    @property
    def n_features(self) -> int:
        return int(len(self.blocks) * 2**self.bits)

    def as_card(self) -> dict[str, Any]:
        d = asdict(self)
        d["hashing"] = "sklearn HashingVectorizer murmurhash3_32, alternate_sign=False, lowercase"
        return d

    def as_array(self) -> list[float]:
        """The spec as numbers, stored in the (hashed) `.npz` so the card cannot drift."""
        w, c = self.word_ngrams or (0, 0), self.char_ngrams or (0, 0)
        return [*w, *c, self.bits, float(self.sublinear_tf), self.weight]

    @classmethod
    def from_card(cls, d: Any) -> LexicalSpec:
        if not isinstance(d, dict):
            raise ValueError(f"lexical spec must be an object, got {type(d).__name__}")

        def rng(v: Any) -> Range | None:
            return None if v is None else (int(v[0]), int(v[1]))

        return cls(
            word_ngrams=rng(d.get("word_ngrams")),
            char_ngrams=rng(d.get("char_ngrams")),
            bits=int(d["bits"]),
            sublinear_tf=bool(d["sublinear_tf"]),
            weight=float(d["weight"]),
        )


@dataclass(frozen=True)
class LexRows:
    """Hashed feature rows in compressed-row form (numpy only): row i's columns are
    `indices[indptr[i]:indptr[i + 1]]`, with values `data[...]` in the same places."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    data: npt.NDArray[np.float32]
    n_features: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def logits(self, row_of: npt.NDArray[np.int32], weights: npt.NDArray[np.float32]
               ) -> npt.NDArray[np.float32]:
        """Rows times a weight matrix given by its non-zero rows: column c weighs
        `weights[row_of[c]]`, and `row_of[c] = -1` (the last row of `weights`, all zeros)
        for a column that weighs nothing."""
        import numpy as np

        out = np.zeros((len(self), weights.shape[1]), np.float32)
        if not len(self.indices):
            return out
        contrib = weights[row_of[self.indices]] * self.data[:, None]
        if len(self) == 1:
            out[0] = contrib.sum(axis=0)
        else:
            np.add.at(out, np.repeat(np.arange(len(self)), np.diff(self.indptr)), contrib)
        return out

    def to_csr(self) -> sp.csr_matrix:
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr),
                             shape=(len(self), self.n_features))


class LexicalVectorizer:
    """Texts -> hashed feature rows of `spec.n_features` columns. Thread-safe: its only state
    is a memo of n-gram columns that only grows.

    Serving needs neither scikit-learn nor scipy (about 90 MiB of a worker's memory): the
    n-grams are cut here by the rules of scikit-learn's `HashingVectorizer` (lowercase; words
    are runs of two or more word characters, n-grams of them joined by one space; `char_wb`
    n-grams inside each whitespace-separated word padded with one space on each side, a word
    shorter than n counted once whole), hashed with MurmurHash3 (x86, 32 bit, seed 0, the
    `mmh3` package), bucket `abs(h) mod 2**bits`. `reference_transform` is scikit-learn's own
    path, and the tests hold the two equal.
    """

    def __init__(self, spec: LexicalSpec) -> None:
        import mmh3

        self.spec = spec
        self._murmur = mmh3.hash  # bound once: an import statement per n-gram showed up
        self._bucket: dict[str, int] = {}  # n-gram -> column within its block, memoised
        self._word: dict[str, array[int]] = {}  # word -> its character n-grams' columns

    def _word_ngrams(self, text: str, lo: int, hi: int) -> list[str]:
        words = _WORD.findall(text)
        out: list[str] = []
        for n in range(lo, hi + 1):
            out.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        return out

    @staticmethod
    def _char_ngrams(word: str, lo: int, hi: int) -> list[str]:
        padded = f" {word} "
        out: list[str] = []
        for n in range(lo, hi + 1):
            if n >= len(padded):
                out.append(padded)
                break
            out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
        return out

    def _grams(self, kind: str, ngrams: Range, text: str) -> list[str]:
        """`text`'s n-grams of one block, as scikit-learn's analyzer cuts them."""
        text = text.lower()
        if kind == "word":
            return self._word_ngrams(text, *ngrams)
        return [g for word in text.split() for g in self._char_ngrams(word, *ngrams)]

    def _column(self, gram: str) -> int:
        col = self._bucket.get(gram)
        if col is not None:
            return col
        n = 1 << self.spec.bits
        h = self._murmur(gram, 0, True)
        # the bucket of abs(-2**31), as HashingVectorizer defines it
        col = (2147483647 - (n - 1)) % n if h == -2147483648 else abs(h) % n
        if len(self._bucket) < _MEMO:
            self._bucket[gram] = col
        return col

    def _columns(self, kind: str, ngrams: Range, text: str) -> array[int]:
        """The columns of `text`'s n-grams of one block, one entry per occurrence. Character
        n-grams are memoised per word: traffic repeats words far more than whole texts."""
        text = text.lower()
        column = self._column
        if kind == "word":
            return array("i", [column(g) for g in self._word_ngrams(text, *ngrams)])
        out = array("i")
        memo = self._word
        for word in text.split():
            cols = memo.get(word)
            if cols is None:
                cols = array("i", [column(g) for g in self._char_ngrams(word, *ngrams)])
                if len(word) <= _MEMO_WORD_CHARS and len(memo) < _MEMO_WORDS:
                    memo[word] = cols
            out.extend(cols)
        return out

    def rows(self, texts: Sequence[str]) -> LexRows:
        import numpy as np

        indices: list[int] = []
        data: list[float] = []
        indptr = [0]
        for text in texts:
            self.row(text, indices, data)
            indptr.append(len(indices))
        return LexRows(np.array(indptr, np.int64), np.array(indices, np.int64),
                       np.array(data, np.float32), self.spec.n_features)

    def block_columns(self, text: str) -> list[array[int]]:
        """Per block (`spec.blocks`), the columns of `text`'s n-grams within the block, one
        entry per occurrence."""
        return [self._columns(kind, ngrams, text) for kind, ngrams in self.spec.blocks]

    def row(self, text: str, indices: list[int], data: list[float]) -> None:
        """Append `text`'s row: its columns (sorted within each block) and their values."""
        n = 1 << self.spec.bits
        for b, found in enumerate(self.block_columns(text)):
            if found:
                self._scaled(found, b * n, indices, data)

    def _scaled(self, found: array[int], offset: int, indices: list[int],
                data: list[float]) -> None:
        """Append one block's sorted distinct columns (plus `offset`) and their values: how
        often each occurs (collisions add up), `log1p` when sublinear, L2-normalised, times
        the block's weight. A request's block holds tens of n-grams: plain Python costs less
        there than the dozen small numpy calls; a long text's block goes through numpy."""
        if len(found) > _SMALL_BLOCK:
            import numpy as np

            distinct, often = np.unique(np.frombuffer(found, np.int32), return_counts=True)
            scaled = often.astype(np.float64)
            if self.spec.sublinear_tf:
                np.log1p(scaled, out=scaled)
            scaled *= self.spec.weight / np.sqrt(scaled @ scaled)
            indices.extend((distinct.astype(np.int64) + offset).tolist())
            data.extend(scaled.tolist())
            return
        counts = Counter(found)
        cols = sorted(counts)
        if self.spec.sublinear_tf:
            values = [math.log1p(counts[c]) for c in cols]
        else:
            values = [float(counts[c]) for c in cols]
        scale = self.spec.weight / math.sqrt(math.fsum([v * v for v in values]))
        indices.extend([c + offset for c in cols])
        data.extend([v * scale for v in values])

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The rows as a scipy matrix (training)."""
        return self.rows(texts).to_csr()

    def reference_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The same rows through scikit-learn's `HashingVectorizer` and scipy (the tests'
        yardstick)."""
        import numpy as np
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import HashingVectorizer

        mats = []
        for kind, ngrams in self.spec.blocks:
            hv = HashingVectorizer(analyzer=kind, ngram_range=ngrams, n_features=2**self.spec.bits,
                                   alternate_sign=False, norm=None, lowercase=True,
                                   dtype=np.float32)
            x = sp.csr_matrix(hv.transform(list(texts)), dtype=np.float32)
            if self.spec.sublinear_tf:
                np.log1p(x.data, out=x.data)
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
            norms[norms == 0] = 1.0
            scale = np.repeat((self.spec.weight / norms).astype(np.float32), np.diff(x.indptr))
            x.data *= scale
            mats.append(x)
        out: sp.csr_matrix = mats[0] if len(mats) == 1 else sp.hstack(mats, format="csr")
        return out


def shared_index(
    n_features: int, parts: Sequence[tuple[npt.NDArray[Any], npt.NDArray[np.float32]]]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """One column -> row map and one weight matrix for several heads on the same hashed map
    (`parts`: each head's weighted columns and their weight rows), for `LexRows.logits`: the
    heads' weights side by side, in `parts` order, over the union of their columns. One lookup
    per n-gram then gives every head's lexical term, where each head's own index costs one
    lookup per n-gram per head, in 2 MB maps that a request finds out of the CPU's caches."""
    import numpy as np

    rows = [np.asarray(cols, np.int64) for cols, _ in parts]
    union = np.unique(np.concatenate(rows))
    widths = [w.shape[1] for _, w in parts]
    weights = np.zeros((len(union) + 1, sum(widths)), np.float32)  # last row: -1, zeros
    start = 0
    for r, (_, w), width in zip(rows, parts, widths, strict=True):
        weights[np.searchsorted(union, r), start:start + width] = w
        start += width
    row_of = np.full(n_features, -1, np.int32)
    row_of[union] = np.arange(len(union), dtype=np.int32)
    return row_of, weights


_WORD = re.compile(r"(?u)\b\w\w+\b")
# Memo bounds, whatever the traffic: ~15 MB for the n-grams (key, int, dict slot) and ~15 MB
# for the words (4 bytes a column); 180,000 random words grew a process by 38 MiB in all.
_MEMO = 100_000  # n-grams
_MEMO_WORDS = 30_000
_MEMO_WORD_CHARS = 24
_SMALL_BLOCK = 256  # n-grams in a block up to which `_scaled` counts in plain Python
