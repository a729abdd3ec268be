"""Difficulty classification: query text -> probabilities over tiers.

Heavy dependencies (torch, sentence-transformers, scikit-learn) load only when a classifier
is built or trained, never at import. Backends (`BACKENDS`, chosen by the artifact): "combined"
(sentence-transformers embedding + text features + hashed n-grams; the default) and "lexical"
(text features + hashed n-grams; never imports torch).
"""

from classifier.base import TIERS, Classifier, FixedClassifier, Tier, TierScores
from classifier.batcher import BatcherClosed, MicroBatcher
from classifier.cli import classifier_app, classify_cmd
from classifier.embedder import (
    PACKAGED_MODEL,
    Embedder,
    NullEmbedder,
    SentenceTransformerEmbedder,
)
from classifier.embedding import ClassifierUnavailable, EmbeddingClassifier, load_classifier
from classifier.fallback import LLMFallback, parse_tier
from classifier.features import classification_text
from classifier.head import (
    BACKENDS,
    DEFAULT_BACKEND,
    ArtifactError,
    Head,
    load_head,
    packaged_artifact,
    save_head,
)
from classifier.lexical import LexicalSpec, LexicalVectorizer

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "PACKAGED_MODEL",
    "TIERS",
    "ArtifactError",
    "BatcherClosed",
    "Classifier",
    "ClassifierUnavailable",
    "Embedder",
    "EmbeddingClassifier",
    "FixedClassifier",
    "Head",
    "LLMFallback",
    "LexicalSpec",
    "LexicalVectorizer",
    "MicroBatcher",
    "NullEmbedder",
    "SentenceTransformerEmbedder",
    "Tier",
    "TierScores",
    "classification_text",
    "classifier_app",
    "classify_cmd",
    "load_classifier",
    "load_head",
    "packaged_artifact",
    "parse_tier",
    "save_head",
]
