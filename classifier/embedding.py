"""`EmbeddingClassifier`: embedder + head behind the `Classifier` protocol.

The backend is the artifact's (`Head.backend`): "embedding"/"combined" run a
sentence-transformers model; "lexical" runs `NullEmbedder` (hashed n-grams + text features,
no torch import) and by default does not wait to batch (`max_wait_s=0`: requests queued while
a batch runs still share the next one).

Each text is bounded to the classification window, looked up in an LRU cache keyed by the
sha256 of the window, and otherwise submitted to a `MicroBatcher`: texts from concurrent
callers that arrive within a couple of milliseconds share one forward pass, run in a worker
thread so the event loop never blocks. Identical texts in flight share one computation.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from classifier.base import TierScores
from classifier.batcher import MicroBatcher
from classifier.embedder import (
    DEFAULT_MAX_SEQ_LENGTH,
    PACKAGED_MODEL,
    Embedder,
    NullEmbedder,
    SentenceTransformerEmbedder,
)
from classifier.features import text_features, window
from classifier.head import ArtifactError, Head, load_head, packaged_artifact
from router.errors import RouterError

if TYPE_CHECKING:
    from router.metrics import Metrics

Probs = tuple[float, ...]


class ClassifierUnavailable(RouterError):
    """The embedding path failed (model error, closed classifier); use a fallback."""

    status = 503
    type = "classifier_unavailable"


class EmbeddingClassifier:
    """Scores texts with `head(embedder(text), features(text))`; safe to call concurrently."""

    def __init__(
        self,
        embedder: Embedder,
        head: Head,
        *,
        cache_size: int = 4096,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        metrics: Metrics | None = None,
    ) -> None:
        if embedder.dim != head.embedding_dim:
            raise ArtifactError(
                f"head expects {head.embedding_dim}-d embeddings, model {embedder.name!r} "
                f"gives {embedder.dim}-d: train a head for this model"
            )
        self.embedder = embedder
        self.head = head
        self.metrics = metrics
        self._cache: OrderedDict[str, Probs] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[str, asyncio.Task[Probs]] = {}
        self._batcher: MicroBatcher[str, Probs] = MicroBatcher(
            self._score_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )

    @property
    def batcher(self) -> MicroBatcher[str, Probs]:
        return self._batcher

    def _score_batch(self, texts: list[str]) -> list[Probs]:
        """Blocking: runs in the batcher's worker thread."""
        emb = self.embedder.encode(texts)
        probs = self.head.predict_proba(emb, text_features(texts), texts)
        return [tuple(float(p) for p in row) for row in probs]

    async def _compute(self, key: str, text: str) -> Probs:
        try:
            probs = await self._batcher.submit(text)
        finally:
            self._inflight.pop(key, None)
        self._cache[key] = probs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return probs

    def _lookup(self, text: str) -> asyncio.Task[Probs] | Probs:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._compute(key, text))
            self._inflight[key] = task
        return task

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        """Probabilities per text. Raises `ClassifierUnavailable` if the model fails."""
        start = time.perf_counter()
        pending = [self._lookup(window(t)) for t in texts]
        try:
            probs = await asyncio.gather(
                *(asyncio.shield(p) if isinstance(p, asyncio.Task) else _done(p) for p in pending)
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise ClassifierUnavailable(f"embedding classifier failed: {e}") from e
        if self.metrics is not None:
            self.metrics.classifier_latency.observe(time.perf_counter() - start)
        return [TierScores.from_probabilities(p, source="embedding") for p in probs]

    async def warmup(self) -> None:
        """One forward pass through the batcher (the first one is slow), cache bypassed."""
        await self._batcher.submit("warm-up: what is the capital of France?")

    async def aclose(self) -> None:
        await self._batcher.aclose()
        for task in list(self._inflight.values()):
            task.cancel()


async def _done(p: Probs) -> Probs:
    return p


def load_classifier(
    model: str | None = None,
    artifact: str | Path | None = None,
    *,
    warmup: bool = True,
    metrics: Metrics | None = None,
    max_wait_s: float | None = None,
    max_batch: int = 64,
    backend: str | None = None,
) -> EmbeddingClassifier:
    """Build the classifier once at start-up (blocking: loads the model, then one warm-up pass).

    `artifact` None = the packaged head for `backend` (`classifier.head.BACKENDS`; None:
    `DEFAULT_BACKEND`, "lexical"); a given `artifact` must be of `backend` when both are set.
    `model` None = the embedding model named in the artifact's card (the packaged
    all-MiniLM-L6-v2, loaded offline); ignored by a lexical head, which loads no model.
    `max_wait_s` None = 2 ms for heads with an embedding model, 0 for lexical heads.
    """
    head = load_head(artifact if artifact is not None else packaged_artifact(backend))
    if backend is not None and head.backend != backend:
        raise ArtifactError(f"artifact {artifact} is a {head.backend!r} head, not {backend!r}")
    embedder: Embedder
    if head.embedding_dim == 0:
        embedder = NullEmbedder()
    else:
        name = model or str(head.card.get("embedding_model") or PACKAGED_MODEL)
        embedder = SentenceTransformerEmbedder(
            None if name == PACKAGED_MODEL else name,
            max_seq_length=head.card.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH,
        )
    if max_wait_s is None:
        max_wait_s = 0.0 if head.embedding_dim == 0 else 0.002
    clf = EmbeddingClassifier(
        embedder, head, metrics=metrics, max_wait_s=max_wait_s, max_batch=max_batch
    )
    if warmup:
        clf._score_batch(["warm-up: what is the capital of France?"])
    return clf
