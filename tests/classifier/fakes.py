"""In-process implementations of the seams the classifier uses (no patching)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from classifier.features import FEATURE_NAMES
from classifier.head import Head
from classifier.lexical import LexicalSpec
from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    StreamDelta,
    Usage,
)

Reply = str | BaseException | float  # text, an exception to raise, or seconds to hang


@dataclass
class ScriptedUpstream:
    """An Upstream whose answers come from `reply(request)`."""

    reply: Callable[[GenerationRequest], Reply]
    capabilities: Capabilities = field(default_factory=Capabilities)
    name: str = "scripted"
    model: str = "scripted-1"
    requests: list[GenerationRequest] = field(default_factory=list)

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        r = self.reply(request)
        if isinstance(r, BaseException):
            raise r
        if isinstance(r, float):
            await asyncio.sleep(r)
            r = "easy"
        return Generation((Choice(r),), Usage(10, 1, 0, 1), self.model)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        gen = await self.generate(request)
        yield StreamDelta(gen.choices[0].text)
        yield StreamDelta(finish_reason="stop", usage=gen.usage)

    async def aclose(self) -> None:
        return None


class HashEmbedder:
    """Deterministic pseudo-embeddings; counts texts encoded; can be told to fail."""

    name = "hash-embedder"

    def __init__(self, dim: int = 16, fail_on: str | None = None) -> None:
        self.dim = dim
        self.fail_on = fail_on
        self.encoded: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.encoded.append(list(texts))
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            raise RuntimeError("embedder exploded")
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


def random_head(dim: int = 16, hidden: int = 0, seed: int = 0) -> Head:
    rng = np.random.default_rng(seed)
    d = dim + len(FEATURE_NAMES)
    sizes = [d, hidden, 4] if hidden else [d, 4]
    ws = tuple(rng.standard_normal((a, b)).astype(np.float32) for a, b in itertools.pairwise(sizes))
    bs = tuple(rng.standard_normal(b).astype(np.float32) for b in sizes[1:])
    return Head(
        mean=rng.standard_normal(d).astype(np.float32),
        scale=(rng.random(d) + 0.5).astype(np.float32),
        weights=ws,
        biases=bs,
        temperature=1.3,
        card={"embedding_model": "hash-embedder", "version": "test"},
        extra={"heldout_confidence": rng.random(50).astype(np.float32)},
    )


def random_lexical_head(dim: int = 16, seed: int = 0) -> Head:
    """A "combined" head (dim > 0) or a "lexical" one (dim 0) with a small hashed map."""
    rng = np.random.default_rng(seed)
    base = random_head(dim=dim, seed=seed)
    spec = LexicalSpec(word_ngrams=(1, 2), char_ngrams=(2, 3), bits=10)
    rows = np.sort(rng.choice(spec.n_features, 300, replace=False)).astype(np.int32)
    return Head(
        mean=base.mean,
        scale=base.scale,
        weights=base.weights,
        biases=base.biases,
        temperature=base.temperature,
        card=base.card,
        extra=base.extra,
        lexical=spec,
        lex_rows=rows,
        lex_weights=(3 * rng.standard_normal((len(rows), 4))).astype(np.float32),
    )
