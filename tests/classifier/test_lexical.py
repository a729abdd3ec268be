"""The hashed n-gram map: the fast path places and scales every n-gram exactly as
scikit-learn's HashingVectorizer does (the shipped heads' weights are indexed by its buckets)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.lexical import LexicalSpec, LexicalVectorizer

TEXTS = [
    "What is the sum of 12 and 84? Explain briefly please.",
    "",
    "   ",
    "a",
    "Ünïcödé façade — naïve café 北京 😀 x",
    "def f(x):\n\treturn x**2  # squares",
    "the the the the cat cat",  # repeated n-grams: counts above one
    "x" * 3000,
]
SPECS = [
    LexicalSpec(),
    LexicalSpec(word_ngrams=None, char_ngrams=(1, 3), bits=10, sublinear_tf=False, weight=0.5),
    LexicalSpec(word_ngrams=(1, 3), char_ngrams=None, bits=10),  # 1,024 buckets: collisions
]


def _same(vec: LexicalVectorizer, texts: list[str]) -> None:
    fast, ref = vec.transform(texts), vec.reference_transform(texts)
    assert fast.shape == ref.shape == (len(texts), vec.spec.n_features)
    ref.sort_indices()
    np.testing.assert_array_equal(fast.indptr, ref.indptr)
    np.testing.assert_array_equal(fast.indices, ref.indices)
    np.testing.assert_allclose(fast.data, ref.data, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", SPECS)
def test_fast_path_matches_hashing_vectorizer(spec: LexicalSpec) -> None:
    vec = LexicalVectorizer(spec)
    _same(vec, TEXTS)
    _same(vec, TEXTS)  # again, with every column memoised
    for text in TEXTS:  # one text at a time, as a request is scored
        _same(vec, [text])


def test_colliding_n_grams_add_their_counts() -> None:
    vec = LexicalVectorizer(SPECS[2])
    text = " ".join(f"w{i}" for i in range(3000))  # far more n-grams than 1,024 buckets
    row = vec.transform([text])
    assert row.nnz < len(vec._analyzers[0](text))
    _same(vec, [text])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_any_text_matches(texts: list[str]) -> None:
    _same(LexicalVectorizer(SPECS[1]), texts)
