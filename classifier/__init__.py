"""Difficulty classification: query text -> probabilities over tiers."""

from classifier.base import TIERS, Classifier, FixedClassifier, Tier, TierScores

__all__ = ["TIERS", "Classifier", "FixedClassifier", "Tier", "TierScores"]
