"""The trained head: plain numpy arrays in an `.npz` plus a model card JSON beside it.

No pickle anywhere: the arrays load with `allow_pickle=False`, and the card records the
sha256 of the `.npz`, so a tampered or truncated file is refused with `ArtifactError` before
any number in it is used. Inference is numpy alone (no scikit-learn or scipy at serving time):

    x = ([embedding, features] - mean) / scale        (embedding is 0-d for "lexical")
    h = relu(x @ W0 + b0) ... (hidden layers, if any)
    z = h @ Wn + bn + lex(text) @ L                    (L: rows `lex_rows` of the hashed map)
          + rules(text) @ R                             (task heads with `rule_classes` only)
    p = softmax(z / temperature)

`lex(text)` is the hashed n-gram map of `classifier.lexical`, rebuilt from the card's
`lexical` hyper-parameters (no vocabulary stored). `rules(text)` is the one-hot verdict of the
task keyword rules (`classifier.labels.rule_features`) over the card's `rule_classes`.
Backends, by what the head reads: "embedding" (embedding + text features), "combined"
(+ lexical), "lexical" (text features + lexical: no embedding model, no torch).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from classifier.base import TIERS
from classifier.features import FEATURE_NAMES
from classifier.labels import TASKS, rule_features
from classifier.lexical import LexicalSpec, LexicalVectorizer, LexRows
from router.vocab.errors import RouterError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

FORMAT = "ttc-router/classifier-head"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: no lexical term

Backend = Literal["embedding", "combined", "lexical"]
# serving backend (`TTC_CLASSIFIER_BACKEND`) -> packaged artifact in classifier/model/
BACKENDS: dict[str, str] = {
    "lexical": "lexical.npz",  # hashed n-grams + text features; no embedding model
    "combined": "combined.npz",  # MiniLM through torch (sentence-transformers) + n-grams
    "onnx": "combined.npz",  # the same head and fp32 graph through onnxruntime, no torch
    "onnx-int8": "minilm-int8.npz",  # int8-quantised graph; head trained on its vectors
    "static": "static.npz",  # token table distilled from MiniLM (numpy only) + n-grams
}
# serving backend -> embedding runtime (None: no embedding model)
RUNTIMES: dict[str, str | None] = {
    "lexical": None, "combined": "torch", "onnx": "onnx", "onnx-int8": "onnx-int8",
    "static": "static",
}
# runtimes that give the same vectors (a head trained on one serves on the other):
# the fp32 ONNX graph matches torch to cosine 1.0; int8 moves vectors (cosine ~0.97)
SPACES: dict[str, str] = {
    "torch": "fp32", "onnx": "fp32", "onnx-int8": "int8", "static": "static"
}
# chosen from bench/classifier.py (docs/benchmarks.md "Classifier"): the MiniLM-derived
# backend that meets the latency, throughput and memory targets with the best held-out tier
# macro-F1 of the five; see README "Difficulty classifier"
DEFAULT_BACKEND = "static"


def head_runtime(head: Head) -> str | None:
    """The embedding runtime the head was trained on (None: no embedding)."""
    if head.embedding_dim == 0:
        return None
    return str(head.card.get("embedding_runtime") or "torch")


def check_runtime(head: Head, runtime: str | None, where: object) -> None:
    """Refuse serving a head with vectors from another embedding space."""
    trained = head_runtime(head)
    if (trained is None) != (runtime is None) or (
        trained is not None and runtime is not None
        and SPACES.get(trained, trained) != SPACES.get(runtime, runtime)
    ):
        raise ArtifactError(
            f"classifier artifact {where} was trained on {trained or 'no'} embeddings and "
            f"cannot be served with {runtime or 'no'} embeddings: train a head for this runtime"
        )


class ArtifactError(RouterError):
    """The classifier artifact is missing, corrupt, tampered with or incompatible."""


# embedding runtime -> packaged task-type head. The n-gram head serves every runtime: on the
# held-out task split it beat every head that adds an embedding (MiniLM int8, the static table;
# docs/benchmarks.md "Task type"), so one file ships; an operator's own embedding task head
# (`classifier train-task --runtime ...`) is passed as a path.
TASK_HEADS: dict[str | None, str] = dict.fromkeys(
    (None, "torch", "onnx", "onnx-int8", "static"), "task-lexical.npz"
)


def packaged_task_artifact(runtime: str | None) -> Path | None:
    name = TASK_HEADS.get(runtime)
    return None if name is None else Path(__file__).resolve().parent / "model" / name


def packaged_artifact(backend: str | None = None) -> Path:
    """The shipped artifact for `backend` (None: `DEFAULT_BACKEND`)."""
    name = BACKENDS.get(backend or DEFAULT_BACKEND)
    if name is None:
        raise ArtifactError(f"no packaged classifier for backend {backend!r}; "
                            f"packaged: {sorted(BACKENDS)}")
    return Path(__file__).resolve().parent / "model" / name


def card_path(npz: Path) -> Path:
    return npz.with_suffix(".json")


@dataclass(frozen=True)
class Head:
    """Standardisation + dense layers (ReLU between) [+ hashed lexical logits] + softmax/T."""

    mean: Array
    scale: Array
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    temperature: float = 1.0
    card: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Array] = field(default_factory=dict)  # held-out arrays (calibration)
    lexical: LexicalSpec | None = None
    lex_rows: npt.NDArray[np.int32] | None = None  # hashed columns with a weight
    lex_weights: Array | None = None  # (len(lex_rows), tiers) logit weights
    rule_classes: tuple[str, ...] = ()  # keyword-rule verdicts the head reads (task heads)
    rule_weights: Array | None = None  # (len(rule_classes), classes) logit weights

    @property
    def backend(self) -> Backend:
        if self.lexical is None:
            return "embedding"
        return "lexical" if self.embedding_dim == 0 else "combined"

    @cached_property
    def vectorizer(self) -> LexicalVectorizer | None:
        return None if self.lexical is None else LexicalVectorizer(self.lexical)

    @cached_property
    def lex_index(self) -> tuple[npt.NDArray[np.int32], Array]:
        """Column -> weight row (-1: none) over the whole hashed map (4 bytes a column, one
        memory access a feature), and the weight rows with a zero row last for -1."""
        import numpy as np

        assert self.lexical is not None
        assert self.lex_rows is not None and self.lex_weights is not None
        row_of = np.full(self.lexical.n_features, -1, np.int32)
        row_of[self.lex_rows] = np.arange(len(self.lex_rows), dtype=np.int32)
        zero = np.zeros((1, self.lex_weights.shape[1]), np.float32)
        return row_of, np.concatenate([self.lex_weights.astype(np.float32), zero])

    def lexical_features(self, texts: Sequence[str]) -> LexRows | None:
        vec = self.vectorizer
        return None if vec is None else vec.rows(texts)

    @property
    def target(self) -> str:
        """What the head predicts: "tier" (difficulty) or "task" (task type)."""
        return str(self.card.get("target") or "tier")

    @cached_property
    def classes(self) -> tuple[str, ...]:
        """Output classes, in column order (the tiers for a tier head); read per request."""
        if self.target == "tier":
            return tuple(t.value for t in TIERS)
        return tuple(str(c) for c in self.card.get("classes") or ())

    @property
    def input_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def embedding_dim(self) -> int:
        return self.input_dim - len(FEATURE_NAMES)

    def logits(
        self, embeddings: Array, features: Array, texts: Sequence[str] | None = None,
        lex: LexRows | None = None, lex_logits: Array | None = None,
    ) -> Array:
        """`texts` (the windows the features came from) are needed iff the head is lexical;
        `lex`: their `lexical_features`, when already computed (for another head, same spec);
        `lex_logits`: this head's lexical term itself, when already computed
        (`classifier.lexical.shared_index`)."""
        import numpy as np

        x = np.concatenate([embeddings, features], axis=1).astype(np.float32)
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        if self.lexical is not None and lex_logits is not None:
            if lex_logits.shape != h.shape:
                raise ValueError("precomputed lexical logits of another shape")
            h = h + lex_logits
        elif self.lexical is not None:
            if lex is None:
                vec = self.vectorizer
                if vec is None or texts is None or len(texts) != len(h):
                    raise ValueError("a lexical head needs the texts beside their features")
                lex = vec.rows(texts)
            elif (len(lex), lex.n_features) != (len(h), self.lexical.n_features):
                raise ValueError("precomputed lexical features of another shape")
            h = h + lex.logits(*self.lex_index)
        if self.rule_weights is not None:
            if texts is None or len(texts) != len(h):
                raise ValueError("a head with rule features needs the texts")
            h = h + rule_features(texts, self.rule_classes) @ self.rule_weights
        out: Array = h
        return out

    def predict_proba(
        self, embeddings: Array, features: Array, texts: Sequence[str] | None = None,
        lex: LexRows | None = None, lex_logits: Array | None = None,
    ) -> Array:
        import numpy as np

        z = self.logits(embeddings, features, texts, lex, lex_logits) / self.temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p: Array = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return p


def save_head(head: Head, path: Path) -> Path:
    """Write `path` (.npz) and its card (.json, with the npz's sha256). Returns the card path."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"mean": head.mean, "scale": head.scale}
    for i, (w, b) in enumerate(zip(head.weights, head.biases, strict=True)):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    for k, v in head.extra.items():
        arrays[f"extra_{k}"] = v
    if head.lexical is not None:
        if head.lex_rows is None or head.lex_weights is None:
            raise ValueError("a lexical head needs lex_rows and lex_weights")
        arrays["lex_rows"] = head.lex_rows.astype(np.int32)
        # float16 halves the artifact (the largest array); a weight moves by < 0.1 %, and the
        # head computes in float32 (load_head casts back)
        arrays["lex_weights"] = head.lex_weights.astype(np.float16)
        arrays["lex_spec"] = np.asarray(head.lexical.as_array(), dtype=np.float64)
    if head.rule_weights is not None:
        arrays["rule_weights"] = head.rule_weights.astype(np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    path.write_bytes(data)
    card = dict(head.card)
    card.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        target=head.target,
        classes=list(head.classes),
        tiers=[t.value for t in TIERS],
        feature_names=list(FEATURE_NAMES),
        embedding_dim=head.embedding_dim,
        layers=len(head.weights),
        temperature=head.temperature,
        backend=head.backend,
        lexical=None if head.lexical is None else head.lexical.as_card(),
        rule_classes=list(head.rule_classes),
        sha256=hashlib.sha256(data).hexdigest(),
        npz=path.name,
    )
    cp = card_path(path)
    cp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return cp


def _resolve(path: Path) -> Path:
    if path.is_dir():
        return path / "head.npz"
    return path.with_suffix(".npz") if path.suffix == ".json" else path


def load_head(path: str | Path | None = None) -> Head:
    """Load and verify an artifact (the packaged one when `path` is None)."""
    import numpy as np

    npz = _resolve(Path(path)) if path is not None else packaged_artifact()
    cp = card_path(npz)
    try:
        data = npz.read_bytes()
        card = json.loads(cp.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"classifier artifact not found: {e.filename}") from None
    except (OSError, ValueError) as e:
        raise ArtifactError(f"classifier model card {cp} is unreadable: {e}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ArtifactError(f"{cp} is not a {FORMAT} model card")
    if card.get("format_version") not in READABLE_VERSIONS:
        raise ArtifactError(f"{cp}: unsupported format_version {card.get('format_version')}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.get("sha256"):
        raise ArtifactError(
            f"classifier artifact {npz} does not match its model card (sha256 {digest[:12]}… "
            f"!= {str(card.get('sha256'))[:12]}…): refusing a modified or corrupt file"
        )
    target = card.get("target", "tier")
    if target == "task":
        classes = card.get("classes")
        if not isinstance(classes, list) or not classes or not all(
            isinstance(c, str) for c in classes
        ):
            raise ArtifactError(f"{cp}: a task head needs its 'classes' listed")
    elif target != "tier":
        raise ArtifactError(f"{cp}: unknown head target {target!r}")
    elif card.get("tiers") != [t.value for t in TIERS]:
        raise ArtifactError(f"{cp}: tiers {card.get('tiers')} differ from {list(TIERS)}")
    if card.get("feature_names") != list(FEATURE_NAMES):
        raise ArtifactError(f"{cp}: trained on other text features; retrain the head")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        n = int(card["layers"])
        spec = LexicalSpec.from_card(card["lexical"]) if card.get("lexical") else None
        stored = arrays["lex_spec"].tolist() if "lex_spec" in arrays else None
        if (spec.as_array() if spec else None) != stored:
            raise ArtifactError(
                f"classifier artifact {npz}: lexical hyper-parameters in the model card do not "
                "match the weights (card edited?): refusing it"
            )
        weights = tuple(arrays[f"W{i}"].astype(np.float32) for i in range(n))
        biases = tuple(arrays[f"b{i}"].astype(np.float32) for i in range(n))
        head = Head(
            mean=arrays["mean"].astype(np.float32),
            scale=arrays["scale"].astype(np.float32),
            weights=weights,
            biases=biases,
            temperature=float(card["temperature"]),
            card=card,
            extra={k[6:]: v for k, v in arrays.items() if k.startswith("extra_")},
            lexical=spec,
            lex_rows=arrays["lex_rows"].astype(np.int32) if spec else None,
            lex_weights=arrays["lex_weights"].astype(np.float32) if spec else None,
            rule_classes=tuple(str(c) for c in card.get("rule_classes") or ()),
            rule_weights=arrays.get("rule_weights"),
        )
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ArtifactError(f"classifier artifact {npz} is malformed: {e!r}") from None
    _check_shapes(head, npz)
    return head


def _check_shapes(head: Head, npz: Path) -> None:
    d, n = head.input_dim, len(head.classes)
    ok = head.scale.shape == (d,) and head.temperature > 0 and bool((head.scale > 0).all())
    for w, b in zip(head.weights, head.biases, strict=True):
        ok = ok and w.ndim == 2 and w.shape[0] == d and b.shape == (w.shape[1],)
        d = w.shape[1] if w.ndim == 2 else -1
    if head.lexical is not None:
        rows, lw = head.lex_rows, head.lex_weights
        if rows is None or lw is None or rows.ndim != 1 or lw.shape != (len(rows), n):
            ok = False
        elif len(rows):
            ok = ok and int(rows.min()) >= 0 and int(rows.max()) < head.lexical.n_features
    rw = head.rule_weights
    if (rw is None) != (not head.rule_classes) or (
        rw is not None and rw.shape != (len(head.rule_classes), n)
    ) or not set(head.rule_classes) <= set(TASKS):
        ok = False
    if not ok or d != n or head.embedding_dim != head.card.get("embedding_dim"):
        raise ArtifactError(f"classifier artifact {npz} has inconsistent array shapes")
    if head.card.get("backend", "embedding") != head.backend:
        raise ArtifactError(f"classifier artifact {npz}: card says backend "
                            f"{head.card.get('backend')!r}, arrays make {head.backend!r}")
