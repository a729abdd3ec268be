"""EmbeddingClassifier over fake embedders: batching, caching, failures, the window."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from classifier.base import TIERS
from classifier.embedding import ClassifierUnavailable, EmbeddingClassifier
from classifier.features import USER_CHARS, classification_text, text_features, window
from classifier.head import ArtifactError
from router.metrics import Metrics
from router.upstreams.base import Message
from tests.classifier.fakes import HashEmbedder, random_head


async def test_scores_match_the_head_and_concurrent_callers_share_a_batch() -> None:
    emb, head = HashEmbedder(), random_head()
    m = Metrics()
    clf = EmbeddingClassifier(emb, head, max_wait_s=0.05, metrics=m)
    texts = [f"question {i}?" for i in range(10)]
    got = await asyncio.gather(*(clf.classify([t]) for t in texts))
    want = head.predict_proba(HashEmbedder().encode(texts), text_features(texts))
    for [scores], row in zip(got, want, strict=True):
        np.testing.assert_allclose(scores.probabilities, row, rtol=1e-5)
        assert scores.source == "torch/hash-embedder" and scores.tier is TIERS[int(row.argmax())]
    assert len(emb.encoded) == 1 and sorted(emb.encoded[0]) == sorted(texts)
    assert m.registry.get_sample_value("ttc_classifier_seconds_count") == 10
    await clf.aclose()


async def test_cache_and_in_flight_deduplication() -> None:
    emb = HashEmbedder()
    clf = EmbeddingClassifier(emb, random_head(), max_wait_s=0.01, cache_size=2)
    a, b = await asyncio.gather(clf.classify(["same"]), clf.classify(["same", "same"]))
    assert a[0] == b[0] == b[1]
    assert sum(len(x) for x in emb.encoded) == 1
    await clf.classify(["same"])
    assert sum(len(x) for x in emb.encoded) == 1  # cache hit
    await clf.classify(["x"])
    await clf.classify(["y"])  # evicts "same" (LRU of 2)
    await clf.classify(["same"])
    assert sum(len(x) for x in emb.encoded) == 4
    await clf.aclose()


async def test_embedder_failure_is_one_clear_error_and_later_calls_work() -> None:
    clf = EmbeddingClassifier(HashEmbedder(fail_on="boom"), random_head(), max_wait_s=0.0)
    with pytest.raises(ClassifierUnavailable, match="embedder exploded"):
        await clf.classify(["boom"])
    [ok] = await clf.classify(["fine"])
    assert ok.tier in TIERS
    await clf.aclose()
    with pytest.raises(ClassifierUnavailable):
        await clf.classify(["after close"])


def test_head_and_model_dimensions_must_agree() -> None:
    with pytest.raises(ArtifactError, match="train a head for this model"):
        EmbeddingClassifier(HashEmbedder(dim=8), random_head(dim=16))


def test_classification_window_is_system_plus_last_user_message() -> None:
    msgs = [
        Message("system", "You are terse. " * 50),
        Message("user", "first question"),
        Message("assistant", "an answer"),
        Message("user", "What is the derivative of x^2?"),
    ]
    text = classification_text(msgs)
    assert text.startswith("You are terse.") and text.endswith("derivative of x^2?")
    assert "first question" not in text and "an answer" not in text
    assert len(text) < 300

    long = "context " * 2000 + "So what is the answer?"
    text = classification_text([Message("user", long)])
    assert len(text) <= USER_CHARS + 5 and text.endswith("So what is the answer?")
    assert classification_text([]) == ""
    assert classification_text([Message("assistant", "only me")]) == "only me"
    assert classification_text([object()]) == ""  # type: ignore[list-item]
    assert len(window("x" * 1_000_000)) < 3000
