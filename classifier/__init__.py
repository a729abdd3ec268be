"""Difficulty classification: query text -> probabilities over tiers.

Heavy dependencies (torch, onnxruntime, scikit-learn) load only when a classifier is built or
trained, never at import. Serving backends (`BACKENDS`): "static" (the default: a token table
distilled from MiniLM + text features + hashed n-grams; numpy only), "onnx-int8" (MiniLM int8
through onnxruntime + the same features), "onnx" (fp32), "combined" (MiniLM through torch) and
"lexical" (text features + hashed n-grams; no model); `LLMClassifier` asks an LLM.
A second head on the same embedding names the task type (`TASKS`).
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
from classifier.labels import TASKS
from classifier.lexical import LexicalSpec, LexicalVectorizer
from classifier.llm_backend import LLMClassifier
from classifier.onnx_embedder import OnnxEmbedder, OnnxExportError, ensure_onnx
from classifier.rules import apply_rules
from classifier.static_embedder import StaticEmbedder, StaticTableError
from classifier.static_embedder import distill as distill_static

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "PACKAGED_MODEL",
    "TASKS",
    "TIERS",
    "ArtifactError",
    "BatcherClosed",
    "Classifier",
    "ClassifierUnavailable",
    "Embedder",
    "EmbeddingClassifier",
    "FixedClassifier",
    "Head",
    "LLMClassifier",
    "LLMFallback",
    "LexicalSpec",
    "LexicalVectorizer",
    "MicroBatcher",
    "NullEmbedder",
    "OnnxEmbedder",
    "OnnxExportError",
    "SentenceTransformerEmbedder",
    "StaticEmbedder",
    "StaticTableError",
    "Tier",
    "TierScores",
    "apply_rules",
    "classification_text",
    "classifier_app",
    "classify_cmd",
    "distill_static",
    "ensure_onnx",
    "load_classifier",
    "load_head",
    "packaged_artifact",
    "parse_tier",
    "save_head",
]
