"""Inline classification: short texts on the event loop when cheap, the batch thread otherwise."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from classifier import load_classifier
from classifier.embedding import ClassifierUnavailable, EmbeddingClassifier
from classifier.features import MAX_TEXT_CHARS
from classifier.inline import inline_chars
from tests.classifier.fakes import HashEmbedder, random_head


class ThreadEmbedder(HashEmbedder):
    """A HashEmbedder that records the thread of each batch and can be slowed down."""

    def __init__(self, delay: float = 0.0, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.threads: list[int] = []
        self.delay = delay

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        return super().encode(texts)


async def test_short_texts_are_scored_on_the_loop_long_ones_in_the_batch_thread() -> None:
    emb = ThreadEmbedder()
    clf = EmbeddingClassifier(emb, random_head(), max_wait_s=0.0, inline_max_chars=20)
    [short] = await clf.classify(["short question?"])
    assert emb.threads == [threading.get_ident()] and clf.batcher.on_loop == 1
    [long] = await clf.classify(["a question longer than twenty characters?"])
    assert emb.threads[1] != threading.get_ident() and clf.batcher.batches == 1
    # same scores either way, and the inline result is cached like any other
    ref = EmbeddingClassifier(HashEmbedder(), random_head(), max_wait_s=0.0)
    assert [short, long] == await ref.classify(
        ["short question?", "a question longer than twenty characters?"])
    await clf.classify(["short question?"])
    assert len(emb.threads) == 2
    await asyncio.gather(clf.aclose(), ref.aclose())


async def test_a_burst_of_short_texts_shares_one_pass_on_the_loop() -> None:
    emb = ThreadEmbedder()
    clf = EmbeddingClassifier(emb, random_head(), max_wait_s=0.0, inline_max_chars=100)
    texts = [f"question {i}?" for i in range(5)]
    got = await asyncio.gather(*(clf.classify([t]) for t in texts), clf.classify(texts[:2]))
    assert emb.encoded == [texts] and emb.threads == [threading.get_ident()]
    assert [g[0] for g in got[:2]] == got[5]  # the same text in flight is scored once
    await clf.aclose()


async def test_a_busy_batcher_sends_short_texts_to_the_next_batch() -> None:
    emb = ThreadEmbedder(delay=0.05)
    clf = EmbeddingClassifier(emb, random_head(), max_wait_s=0.0, inline_max_chars=5)
    first = asyncio.ensure_future(clf.classify(["a long text first"]))  # to the thread
    await asyncio.sleep(0.01)
    rest = await asyncio.gather(*(clf.classify([f"q{i}"]) for i in range(3)))
    await first
    assert len(rest) == 3 and clf.batcher.on_loop == 0
    assert emb.encoded == [["a long text first"], ["q0", "q1", "q2"]]
    assert threading.get_ident() not in emb.threads
    await clf.aclose()


async def test_an_inline_failure_is_the_same_clear_error() -> None:
    clf = EmbeddingClassifier(
        HashEmbedder(fail_on="boom"), random_head(), max_wait_s=0.0, inline_max_chars=100
    )
    with pytest.raises(ClassifierUnavailable, match="embedder exploded"):
        await clf.classify(["boom"])
    [ok] = await clf.classify(["fine"])
    assert ok.probabilities and clf.batcher.on_loop == 2
    await clf.aclose()


def test_inline_bound_comes_from_the_measured_cost() -> None:
    def linear(texts: list[str]) -> None:  # 0.2 ms + 2 us a character
        time.sleep(0.0002 + 2e-6 * len(texts[0]))

    wall = time.perf_counter  # sleeping costs no CPU time, the serving clock
    n = inline_chars(linear, 0.002, clock=wall)
    assert 650 < n < 1000  # (2 - 0.33) ms / 2 us + 64 = ~900
    assert inline_chars(linear, 0.0, clock=wall) == 0
    assert inline_chars(linear, 0.0001, clock=wall) == 0  # even a short text is over budget
    assert inline_chars(linear, 1.0, clock=wall) == MAX_TEXT_CHARS
    assert inline_chars(linear, 0.0001) == MAX_TEXT_CHARS  # on the CPU clock: nearly free


def test_cheap_backends_get_a_measured_bound_and_budget_zero_turns_it_off() -> None:
    # a 50 ms budget, not the 1 ms default: the bound is measured, and a loaded machine can
    # take over 1 ms for even a short text (the default then rightly inlines nothing)
    clf = load_classifier(backend="lexical", inline_budget_s=0.05)
    assert 0 < clf.inline_max_chars <= MAX_TEXT_CHARS
    assert load_classifier(backend="lexical", inline_budget_s=0.0).inline_max_chars == 0
