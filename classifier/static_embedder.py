"""A static (model2vec-style) embedding distilled from the packaged MiniLM: a token table, no
network at serving time, no torch.

Distillation (`distill`, run once by `ttc-router classifier distill-static`; needs torch and
the local weights only): every word piece of the model's vocabulary goes through MiniLM alone
(`[CLS] piece [SEP]`), mean-pooled like the sentence pipeline; the table is reduced by PCA to
`dim` components, each row is weighted by SIF (`a / (a + p)` with a Zipf `p` by vocabulary
rank, as model2vec does), and stored int8 with one float scale per row (`static-minilm.npz`,
~4 MiB). Serving (`StaticEmbedder`): the model's own fast tokenizer (`tokenizer.json`; for a
single text, its word pieces memoised per word, `token_ids`), the mean of the pieces' rows,
L2-normalised: tens of microseconds per query.

The table records the sha256 of the tokenizer it was distilled with and of the weights; the
embedder refuses a tokenizer that differs (ids would point at the wrong rows).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.embedder import DEFAULT_MAX_SEQ_LENGTH, PACKAGED_MODEL, packaged_model_path
from router.vocab.errors import RouterError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

TABLE_FORMAT = "ttc-router/static-embedding"
STATIC_TABLE = Path(__file__).resolve().parent / "model" / "static-minilm.npz"
DEFAULT_DIM = 128
SIF_A = 1e-3


class StaticTableError(RouterError):
    """The static embedding table is missing, corrupt or made for another tokenizer."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_dir(model: str | None) -> tuple[Path, str]:
    if model is None or model == PACKAGED_MODEL:
        return Path(packaged_model_path()), PACKAGED_MODEL
    return Path(model), model


def distill(
    model: str | None = None, out: Path = STATIC_TABLE, *, dim: int = DEFAULT_DIM,
    batch: int = 512,
) -> dict[str, Any]:
    """Distil the token table from local weights (torch, transformers; offline). Returns the
    card written beside `out`."""
    import time

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from sklearn.decomposition import PCA
    from transformers import AutoModel

    from classifier.onnx_embedder import weights_digest

    began = time.perf_counter()
    model_dir, name = _model_dir(model)
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tok["model"]["vocab"]
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    n = max(vocab.values()) + 1
    net = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    torch.manual_seed(0)
    rows = np.zeros((n, net.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, n, batch):
            ids = torch.arange(start, min(n, start + batch))
            x = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)
            hidden = net(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            rows[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    reduced = PCA(n_components=dim, svd_solver="full", random_state=0).fit_transform(rows)
    rank = np.arange(n, dtype=np.float64) + 2.0  # Zipf by vocabulary rank (model2vec's SIF)
    p = (1.0 / rank) / (1.0 / rank).sum()
    reduced = reduced * (SIF_A / (SIF_A + p))[:, None]
    scale = np.maximum(np.abs(reduced).max(axis=1), 1e-12) / 127.0
    q = np.round(reduced / scale[:, None]).astype(np.int8)
    buf = io.BytesIO()
    np.savez_compressed(buf, table=q, scale=scale.astype(np.float32))
    data = buf.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    card = {
        "format": TABLE_FORMAT,
        "embedding_model": name,
        "weights_digest": weights_digest(model_dir),
        "tokenizer_sha256": file_sha256(model_dir / "tokenizer.json"),
        "vocab": n,
        "dim": dim,
        "recipe": "[CLS] piece [SEP] through the model, mean of the 3 outputs; PCA (full SVD); "
                  f"SIF a={SIF_A} with Zipf p by vocabulary rank; int8 rows, float32 scales",
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - began, 1),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


class StaticEmbedder:
    """Texts -> L2-normalised mean of the distilled rows of their word pieces (numpy only)."""

    runtime = "static"

    def __init__(
        self, table: Path = STATIC_TABLE, *, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    ) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        try:
            data = table.read_bytes()
            card = json.loads(table.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StaticTableError(f"static embedding table {table} unreadable: {e}") from None
        if card.get("format") != TABLE_FORMAT or hashlib.sha256(data).hexdigest() != card.get(
            "sha256"
        ):
            raise StaticTableError(f"static embedding table {table} does not match its card")
        model_dir, name = _model_dir(str(card.get("embedding_model")))
        tok_path = model_dir / "tokenizer.json"
        if not tok_path.exists() or file_sha256(tok_path) != card.get("tokenizer_sha256"):
            raise StaticTableError(
                f"static table {table} was distilled with another tokenizer than {tok_path}"
            )
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            q, scale = z["table"], z["scale"]
        # Served as stored, int8 rows and a float32 scale each: a quarter of the memory of
        # dequantised rows (4 MB, not 16), and a quarter of the cache lines a text's rows span.
        self._rows: npt.NDArray[np.int8] = np.ascontiguousarray(q, np.int8)
        self._scale: npt.NDArray[np.float32] = scale.astype(np.float32)
        self.card = card
        self.path = table
        self.name = name
        self.dim = int(self._rows.shape[1])
        self.max_seq_length = int(max_seq_length)
        self._tok: Any = Tokenizer.from_file(str(tok_path))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_seq_length)
        # the ids alone: tokenizers >= 0.21 can skip the character offsets nothing here reads
        self._encode_batch: Any = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        self._pieces: dict[str, list[int]] = {}  # word -> its word pieces' ids (`token_ids`)
        # the tokenizer's added tokens ([CLS], [SEP], ...) are matched in the raw text before
        # any cutting: a text holding one goes to the tokenizer whole (`token_ids`)
        added = [t.content for t in self._tok.get_added_tokens_decoder().values()]
        self._added = (re.compile("|".join(re.escape(a) for a in added), re.IGNORECASE)
                       if added else None)
        model = self._tok.model
        self._wordpiece = (WordPiece(self._tok.token_to_id, model)
                           if type(model).__name__ == "WordPiece" else None)

    def token_ids(self, text: str) -> list[int]:
        """The ids the tokenizer gives `text` (no special tokens, truncated), with the word
        pieces of each word memoised: traffic repeats words far more than whole texts.

        A text of printable ASCII (plus tab, newline, carriage return) is cut here as the
        tokenizer's BERT normaliser and pre-tokeniser cut it: lowercased, words are runs of
        letters and digits, every other printable character is a word of its own, whitespace
        separates. Each word's pieces are those the tokenizer gives the word alone (WordPiece
        reads words one at a time): a word not seen yet is cut by `WordPiece` here (or by the
        tokenizer, for a tokenizer of another kind). Any other text (accents, CJK, control
        characters), or holding one of the tokenizer's added tokens (`[CLS]`, `[SEP]`, ...),
        goes to the tokenizer whole. The tests hold the two equal."""
        if _NOT_PLAIN.search(text) is not None or (
                self._added is not None and self._added.search(text) is not None):
            ids: list[int] = self._tok.encode(text, add_special_tokens=False).ids
            return ids
        words = _PIECE.findall(text.lower())
        memo = self._pieces
        new = [w for w in dict.fromkeys(words) if w not in memo]
        fresh: dict[str, list[int]] = {}
        if new:
            cut = self._wordpiece
            pieces_of = ([cut(w) for w in new] if cut is not None else
                         [e.ids for e in self._encode_batch(new, add_special_tokens=False)])
            for word, pieces in zip(new, pieces_of, strict=True):
                fresh[word] = pieces
                if len(word) <= _MEMO_WORD_CHARS and len(memo) < _MEMO_WORDS:
                    memo[word] = pieces
        out: list[int] = []
        limit = self.max_seq_length
        for w in words:
            pieces = memo.get(w)
            out.extend(fresh[w] if pieces is None else pieces)
            if len(out) >= limit:
                return out[:limit]
        return out

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        for i, enc in enumerate(self._encode_batch(list(texts), add_special_tokens=False)):
            if enc.ids:
                # the mean of the dequantised rows times their count, which the
                # normalisation below divides out
                out[i] = self.pooled(enc.ids)
        norms = np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
        out /= np.maximum(norms, 1e-12)
        return out

    def pooled(self, ids: Sequence[int]) -> npt.NDArray[np.float32]:
        """The scale-weighted sum of `ids`' int8 rows: `encode`'s row before normalising."""
        import numpy as np

        a = np.array(ids, np.intp)  # one conversion for both lookups
        out: npt.NDArray[np.float32] = self._scale[a] @ self._rows[a]
        return out


class WordPiece:
    """The tokenizer's WordPiece model for one pre-tokenised word: greedy longest match from
    the left, later pieces with the continuing prefix (`##`), the unknown token for a word
    longer than `max_input_chars_per_word` or with a part no piece matches. Pieces are looked
    up in the tokenizer's own vocabulary (`token_to_id`): a copy as a Python dict would hold
    about 14 MiB of a worker's memory."""

    def __init__(self, lookup: Callable[[str], int | None], model: Any) -> None:
        self.lookup = lookup
        unknown = lookup(model.unk_token)
        if unknown is None:
            raise StaticTableError(f"the tokenizer has no {model.unk_token!r} token")
        self.unknown = [unknown]
        self.prefix = str(model.continuing_subword_prefix)
        self.max_chars = int(model.max_input_chars_per_word)

    def __call__(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return self.unknown
        lookup, out, start = self.lookup, [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                found = lookup(piece)
                if found is not None:
                    out.append(found)
                    break
                end -= 1
            else:
                return self.unknown
            start = end
        return out


# Printable ASCII and tab, newline, carriage return: text the BERT normaliser changes only by
# lowercasing (it drops other control characters, strips accents, splits CJK characters).
_NOT_PLAIN = re.compile(r"[^\t\n\r -~]")
# After lowercasing: runs of letters and digits; each other printable character alone (the
# BERT pre-tokeniser isolates all ASCII punctuation); whitespace separates.
_PIECE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
# Memo bounds: words up to 32 characters, 30,000 of them (a few MB, whatever the traffic)
_MEMO_WORDS = 30_000
_MEMO_WORD_CHARS = 32
