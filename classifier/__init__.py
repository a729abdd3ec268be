"""Difficulty classification: query text -> probabilities over tiers.

Heavy dependencies (torch, sentence-transformers, scikit-learn) load only when a classifier
is built or trained, never at import.
"""

from classifier.base import TIERS, Classifier, FixedClassifier, Tier, TierScores
from classifier.batcher import BatcherClosed, MicroBatcher
from classifier.cli import classifier_app, classify_cmd
from classifier.embedder import PACKAGED_MODEL, Embedder, SentenceTransformerEmbedder
from classifier.embedding import ClassifierUnavailable, EmbeddingClassifier, load_classifier
from classifier.fallback import LLMFallback, parse_tier
from classifier.features import classification_text
from classifier.head import ArtifactError, Head, load_head, packaged_artifact, save_head

__all__ = [
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
    "MicroBatcher",
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
