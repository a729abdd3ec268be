"""The hashed n-gram map: serving cuts, hashes, places and scales every n-gram exactly as
scikit-learn's HashingVectorizer does (the shipped heads' weights are indexed by its buckets),
without importing scikit-learn or scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import lexical
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
    assert row.nnz < len(set(vec._grams("word", (1, 3), text)))
    _same(vec, [text])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_any_text_matches(texts: list[str]) -> None:
    _same(LexicalVectorizer(SPECS[1]), texts)


def test_logits_match_the_sparse_product() -> None:
    vec = LexicalVectorizer(SPECS[0])
    rng = np.random.default_rng(0)
    cols = np.sort(rng.choice(vec.spec.n_features, 5000, replace=False)).astype(np.int64)
    weights = rng.normal(size=(len(cols), 4)).astype(np.float32)
    full = np.zeros((vec.spec.n_features, 4), np.float32)
    full[cols] = weights
    row_of = np.full(vec.spec.n_features, -1, np.int32)
    row_of[cols] = np.arange(len(cols), dtype=np.int32)
    padded = np.concatenate([weights, np.zeros((1, 4), np.float32)])
    for texts in (TEXTS, TEXTS[:1], ["", ""]):
        rows = vec.rows(texts)
        np.testing.assert_allclose(rows.logits(row_of, padded), rows.to_csr() @ full,
                                   rtol=1e-5, atol=1e-6)


def test_serving_a_lexical_head_imports_neither_scikit_learn_nor_scipy() -> None:
    code = (
        "import sys\n"
        "from classifier import load_classifier\n"
        "clf = load_classifier()\n"
        "clf._score_batch(['What is 12 + 84?'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'torch'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_memos_stay_bounded_and_a_full_memo_changes_no_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "_MEMO", 300)
    monkeypatch.setattr(lexical, "_MEMO_WORDS", 20)
    vec = LexicalVectorizer(SPECS[0])
    texts = [" ".join(f"w{i}x{j}" for j in range(15)) + " " + "y" * 40 for i in range(20)]
    for text in texts:
        vec.rows([text])
    assert len(vec._bucket) == 300 and len(vec._word) == 20
    assert all(len(w) <= lexical._MEMO_WORD_CHARS for w in vec._word)  # the long word is not kept
    _same(vec, texts)  # words and n-grams past the bounds are hashed afresh, to the same columns
