"""The project-written task rows (classifier/data/task_supplement.jsonl): they load, and they
only ever reach the train side."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from classifier.embedder import NullEmbedder
from classifier.head import load_head
from classifier.labels import TASKS
from classifier.task_train import (
    SUPPLEMENT,
    SUPPLEMENT_SOURCE,
    load_supplement,
    task_examples,
    task_split,
    train_task_head,
)
from classifier.train import TrainConfig


def test_supplement_loads_with_the_sparse_classes_and_their_neighbours() -> None:
    rows = load_supplement()
    counts = Counter(t.task for t in rows)
    assert set(counts) <= set(TASKS)
    assert counts["chat"] >= 120 and counts["planning"] >= 80
    assert counts["factual"] >= 40  # near misses: short questions stay factual
    assert len({t.text for t in rows}) == len(rows)
    assert all(t.source == SUPPLEMENT_SOURCE for t in rows)


def test_supplement_refuses_unknown_tasks(tmp_path: Path) -> None:
    bad = tmp_path / "s.jsonl"
    bad.write_text(json.dumps({"text": "hi", "task": "gossip"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.jsonl:1"):
        load_supplement(bad)


def _tiny_mix(root: Path) -> Path:
    """A small mix (NQ-open factual, GSM8K maths, MT-bench reasoning = logic) big enough for
    both split sides."""
    general = root / "general_instructions"
    general.mkdir(parents=True)
    (root / "gsm8k").mkdir()
    with (general / "nq_open_dev_3610.jsonl").open("w", encoding="utf-8") as f:
        for i in range(120):
            f.write(json.dumps({"question": f"who was the mayor of town number {i}"}) + "\n")
    with (root / "gsm8k" / "train.jsonl").open("w", encoding="utf-8") as f:
        for i in range(120):
            f.write(json.dumps({"question": f"Ann has {i} apples and buys {i + 3} more. "
                                            "How many apples does she have now?"}) + "\n")
    with (general / "mt_bench_80.jsonl").open("w", encoding="utf-8") as f:
        for i in range(30):  # logic rows: the supplement has none
            f.write(json.dumps({"category": "reasoning", "turns": [
                f"Puzzle {i}: Ann is taller than Bo and Bo is taller than Cy. Who is shortest?"]})
                + "\n")
    return root


def test_supplement_goes_to_the_train_side_only(tmp_path: Path) -> None:
    data = _tiny_mix(tmp_path / "data")
    supplement = {t.text for t in load_supplement()}
    mix = task_examples(data)
    # what bench/classifier.py evaluates (task_examples -> task_split) never reads it
    assert not supplement & {t.text for t in mix}
    train, test = task_split(mix)
    cfg = TrainConfig(backend="lexical", c=3.0, dense_weight=0.3)
    metrics = train_task_head(data, tmp_path / "a.npz", NullEmbedder(), cfg,
                              supplement=SUPPLEMENT)
    assert metrics["n"] == len(test)  # the held-out side is the mix's alone
    assert set(metrics["per_source"]) <= {"nq_open", "gsm8k", "mt_bench"}
    card = load_head(tmp_path / "a.npz").card["training_data"]
    assert card["supplement"]["rows"] == len(supplement)
    assert card["supplement"]["use"] == "train side only"
    assert card["train"] == len(train) + len(supplement) and card["test"] == len(test)

    # a supplement row that repeats a text of the mix (here a held-out one) is dropped
    own = tmp_path / "own.jsonl"
    rows = [{"text": f"row {i} for {task}", "task": task} for task in TASKS for i in range(3)]
    rows.append({"text": test[0].text, "task": "chat"})
    own.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    metrics = train_task_head(data, tmp_path / "b.npz", NullEmbedder(), cfg, supplement=own)
    assert metrics["n"] == len(test)
    card = load_head(tmp_path / "b.npz").card["training_data"]
    assert card["supplement"]["rows"] == 3 * len(TASKS)
    assert card["train"] == len(train) + 3 * len(TASKS)
