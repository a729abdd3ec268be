"""The single-text pass (`classifier.fused`): for the packaged single-layer heads it gives what
the general batch pass gives, text by text; requests take it; anything it cannot fold runs the
general pass."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import load_classifier
from classifier.embedder import NullEmbedder
from classifier.embedding import EmbeddingClassifier
from classifier.fused import build
from classifier.static_embedder import StaticEmbedder
from tests.classifier.fakes import HashEmbedder, random_head, random_lexical_head

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "What is the capital of France? (bench-17)",
    "",
    "  ",
    "a",
    "Prove that there are infinitely many primes. Use $p_1 p_2 \\cdots p_n + 1$.",
    "def f(x):\n\treturn x**2  # squares; == {}",
    "Plan a three-day trip to Kyoto for a family of four?? Budget: $2,000.",
    "Rewrite this sentence formally: gonna be late, sorry!!",
    "Ünïcödé façade — naïve café 北京 😀",
    "the the the the cat cat",
    "word " * 600,  # past the embedder's 128 word pieces, past the n-gram block size
]


def _corpus() -> list[str]:
    lines = (REPO / "classifier" / "data" / "task_supplement.jsonl").read_text().splitlines()
    return TEXTS + [json.loads(line)["text"] for line in lines[::7]]


@pytest.fixture(scope="module", params=["static", "lexical"])
def clf(request: pytest.FixtureRequest) -> EmbeddingClassifier:
    return load_classifier(backend=request.param, warmup=False)


def _same(clf: EmbeddingClassifier, text: str) -> None:
    fast = clf._linear
    assert fast is not None
    got, want = fast(text), clf._score_general([text])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
    assert int(np.argmax(got[:4])) == int(np.argmax(want[:4]))  # the same tier
    assert sum(got[:4]) == pytest.approx(1.0, abs=1e-5)


def test_packaged_heads_fold_and_match_the_general_pass(clf: EmbeddingClassifier) -> None:
    assert clf.task_head is not None  # both heads, lexical terms and keyword rules included
    for text in _corpus():
        _same(clf, text)


@settings(max_examples=80, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=200)
       | st.text(st.sampled_from("abc XYZ 123 ?!.,$\\{}\t\n\x0b\x7f"), max_size=200))
def test_any_text_matches_the_general_pass(text: str) -> None:
    _same(_STATIC, text)


_STATIC = load_classifier(backend="static", warmup=False)


class CountingStatic(StaticEmbedder):
    """The packaged static embedder, counting batch encodes (the general pass's way in)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def encode(self, texts: Any) -> Any:
        self.batches += 1
        return super().encode(texts)


async def test_a_request_takes_the_single_text_pass_and_a_batch_the_general_one() -> None:
    emb = CountingStatic()
    base = _STATIC
    clf = EmbeddingClassifier(emb, base.head, task_head=base.task_head, max_wait_s=0.0)
    [one] = await clf.classify(["Is 97 a prime number?"])
    assert emb.batches == 0
    np.testing.assert_allclose(one.probabilities, base._score_general(["Is 97 a prime number?"])
                               [0][:4], rtol=1e-5, atol=2e-6)
    clf._batcher.max_wait_s = 0.05  # concurrent callers share one batch: the general pass
    await asyncio.gather(*(clf._compute(str(i), f"question {i}") for i in range(3)))
    assert emb.batches == 1
    await clf.aclose()


def test_what_does_not_fold_runs_the_general_pass() -> None:
    assert build(HashEmbedder(), random_head(), None, None) is None  # a neural embedder
    deep = random_head(dim=0, hidden=8)
    assert build(NullEmbedder(), deep, None, None) is None  # two layers
    lexical = random_lexical_head(dim=0)
    other = random_lexical_head(dim=0, seed=1)
    assert build(NullEmbedder(), lexical, None, None) is not None
    # two heads on hashed maps without a shared index (their specs differ)
    assert build(NullEmbedder(), lexical, other, None) is None


def test_a_random_lexical_head_folds_exactly() -> None:
    """Standardisation, temperature and lexical weights of another shape than the packaged
    heads' fold too."""
    head = random_lexical_head(dim=0, seed=3)
    clf = EmbeddingClassifier(NullEmbedder(), head, max_wait_s=0.0, rules=False)
    for text in TEXTS:
        _same(clf, text)
