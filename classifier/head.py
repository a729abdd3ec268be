"""The trained head: plain numpy arrays in an `.npz` plus a model card JSON beside it.

No pickle anywhere: the arrays load with `allow_pickle=False`, and the card records the
sha256 of the `.npz`, so a tampered or truncated file is refused with `ArtifactError` before
any number in it is used. Inference is pure numpy (no scikit-learn import at serving time):

    x = ([embedding, features] - mean) / scale
    h = relu(x @ W0 + b0) ... (hidden layers, if any)
    p = softmax((h @ Wn + bn) / temperature)
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.base import TIERS
from classifier.features import FEATURE_NAMES
from router.errors import RouterError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float32]

FORMAT = "ttc-router/classifier-head"
FORMAT_VERSION = 1


class ArtifactError(RouterError):
    """The classifier artifact is missing, corrupt, tampered with or incompatible."""


def packaged_artifact() -> Path:
    return Path(__file__).resolve().parent / "model" / "head.npz"


def card_path(npz: Path) -> Path:
    return npz.with_suffix(".json")


@dataclass(frozen=True)
class Head:
    """Standardisation + dense layers (ReLU between) + temperature-scaled softmax."""

    mean: Array
    scale: Array
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    temperature: float = 1.0
    card: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Array] = field(default_factory=dict)  # held-out arrays (calibration)

    @property
    def input_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def embedding_dim(self) -> int:
        return self.input_dim - len(FEATURE_NAMES)

    def logits(self, embeddings: Array, features: Array) -> Array:
        import numpy as np

        x = np.concatenate([embeddings, features], axis=1).astype(np.float32)
        h = (x - self.mean) / self.scale
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        out: Array = h
        return out

    def predict_proba(self, embeddings: Array, features: Array) -> Array:
        import numpy as np

        z = self.logits(embeddings, features) / self.temperature
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
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    path.write_bytes(data)
    card = dict(head.card)
    card.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        tiers=[t.value for t in TIERS],
        feature_names=list(FEATURE_NAMES),
        embedding_dim=head.embedding_dim,
        layers=len(head.weights),
        temperature=head.temperature,
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
    if card.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{cp}: unsupported format_version {card.get('format_version')}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.get("sha256"):
        raise ArtifactError(
            f"classifier artifact {npz} does not match its model card (sha256 {digest[:12]}… "
            f"!= {str(card.get('sha256'))[:12]}…): refusing a modified or corrupt file"
        )
    if card.get("tiers") != [t.value for t in TIERS]:
        raise ArtifactError(f"{cp}: tiers {card.get('tiers')} differ from {list(TIERS)}")
    if card.get("feature_names") != list(FEATURE_NAMES):
        raise ArtifactError(f"{cp}: trained on other text features; retrain the head")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
        n = int(card["layers"])
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
        )
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ArtifactError(f"classifier artifact {npz} is malformed: {e!r}") from None
    _check_shapes(head, npz)
    return head


def _check_shapes(head: Head, npz: Path) -> None:
    d = head.input_dim
    ok = head.scale.shape == (d,) and head.temperature > 0 and bool((head.scale > 0).all())
    for w, b in zip(head.weights, head.biases, strict=True):
        ok = ok and w.ndim == 2 and w.shape[0] == d and b.shape == (w.shape[1],)
        d = w.shape[1] if w.ndim == 2 else -1
    if not ok or d != len(TIERS) or head.embedding_dim != head.card.get("embedding_dim"):
        raise ArtifactError(f"classifier artifact {npz} has inconsistent array shapes")
