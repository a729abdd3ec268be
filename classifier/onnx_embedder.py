"""MiniLM through onnxruntime: the packaged weights exported once, offline, then served
without torch.

`ensure_onnx(variant)` returns the path of `model.onnx` (fp32) or `model-int8.onnx`
(dynamic int8 quantisation of the linear layers, onnxruntime's `quantize_dynamic`) in the
cache folder, exporting it first when it is missing or was made from other weights. The
export runs `python -m classifier.onnx_export` in a child process, so the serving process never
imports torch (its import alone is ~300 MiB of RSS); it reads only the local weights (no hub).
Run it at image build with `ttc-router classifier export-onnx`.

`OnnxEmbedder` tokenises with the model's own `tokenizer.json` (the `tokenizers` library),
runs the graph, mean-pools over the attention mask and L2-normalises: the same vectors as
sentence-transformers' pipeline for this model (cosine 1.0 for fp32, ~0.97 for int8).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from classifier.embedder import DEFAULT_MAX_SEQ_LENGTH, PACKAGED_MODEL, packaged_model_path
from router.vocab.errors import RouterError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Variant = Literal["fp32", "int8"]
FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
EXPORT_VERSION = 1  # bump when the export recipe changes: cached exports are then redone


class OnnxExportError(RouterError):
    """The ONNX export of the embedding model failed (see the message for the child's log)."""


def default_cache_dir() -> Path:
    """`$TTC_ONNX_DIR`, else `$XDG_CACHE_HOME/ttc-router/onnx` (`~/.cache/...`)."""
    env = os.environ.get("TTC_ONNX_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttc-router" / "onnx"


def weights_digest(model_dir: Path) -> str:
    """sha256 of the weight file(s): the export is redone when the weights change."""
    h = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for f in sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin")):
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def resolve_model_dir(model: str | None) -> tuple[Path, str]:
    """(local folder, display name); only local folders: nothing is downloaded."""
    if model is None or model == PACKAGED_MODEL:
        return Path(packaged_model_path()), PACKAGED_MODEL
    path = Path(model)
    if not (path / "tokenizer.json").exists():
        raise OnnxExportError(
            f"ONNX backend needs a local sentence-transformers folder with tokenizer.json; "
            f"{model!r} is not one"
        )
    return path, model


def export_dir(model_dir: Path, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / weights_digest(model_dir)[:16]


def ensure_onnx(
    variant: Variant = "int8", model: str | None = None, cache_dir: Path | None = None
) -> Path:
    """The cached export for `variant`, made now (child process, ~5-20 s) when missing."""
    model_dir, _ = resolve_model_dir(model)
    out = export_dir(model_dir, cache_dir)
    path = out / FILES[variant]
    if path.exists() and (out / "export.json").exists():
        return path
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "classifier.onnx_export", str(model_dir), str(out)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise OnnxExportError(f"ONNX export of {model_dir} failed: " + " | ".join(tail))
    return path


class OnnxEmbedder:
    """Texts -> L2-normalised mean-pooled MiniLM vectors through onnxruntime (no torch)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        variant: Variant = "int8",
        cache_dir: Path | None = None,
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        threads: int | None = None,
        chunk: int = 16,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir, name = resolve_model_dir(model)
        self.path = ensure_onnx(variant, model, cache_dir)
        self.name = name
        self.variant: Variant = variant
        self.runtime = "onnx" if variant == "fp32" else "onnx-int8"
        self.max_seq_length = int(max_seq_length)
        self._chunk = chunk
        self._tok: Any = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.enable_truncation(self.max_seq_length)
        self._tok.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # no busy-waiting between calls: on a shared CPU spinning threads steal the cores the
        # event loop and the other workers need (measured: p50 16 ms vs 25 ms at load 17)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(json.loads((model_dir / "config.json").read_text())["hidden_size"])

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Length-sorted chunks (little padding), results back in the callers' order."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        encs = self._tok.encode_batch(list(texts))
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        for start in range(0, len(order), self._chunk):
            idx = order[start : start + self._chunk]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = encs[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            m = mask[..., None].astype(np.float32)
            vecs = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            out[idx] = vecs
        return out
