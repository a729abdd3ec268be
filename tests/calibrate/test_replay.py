"""Replayed strategies against the real strategies run on random draws from the same pool,
and the recorded-samples file format."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from router.calibrate import GridConfig, agreement_cascade, expand
from router.calibrate.data import EvalFileError
from router.calibrate.replay import (
    Expectation,
    _Question,
    expectation,
    replay,
    replay_grid,
    replayable,
)
from router.calibrate.samples import (
    RecordedItem,
    RecordedSample,
    load_samples,
    parse_samples,
    write_samples,
)
from router.upstreams.base import Capabilities, Usage
from strategies import REGISTRY, Batch, Budget, Problem, Sample

# 10 samples: the right answer "7" four times, "3" three times, "5" twice, and one with no answer
ANSWERS = ["7", "3", "7", "5", "3", None, "7", "5", "3", "7"]
SCORES = [0.9, 0.8, 0.3, 0.6, 0.75, 0.1, 0.55, 0.2, 0.4, 0.35]
TOKENS = [10, 20, 12, 30, 25, 40, 9, 31, 22, 14]
ITEM = RecordedItem(
    "q", "what?", tuple(RecordedSample(a, a == "7", t, s)
                        for a, t, s in zip(ANSWERS, TOKENS, SCORES, strict=True)), "7")


def _text(i: int) -> str:
    return f"s{i}: The answer is {ANSWERS[i]}" if ANSWERS[i] else f"s{i}: no idea"


class PermutedPool:
    """A generator that serves the recorded samples in a random order, without replacement."""

    capabilities = Capabilities(chat=True, n=True)

    def __init__(self, rng: random.Random) -> None:
        self.order = list(range(len(ANSWERS)))
        rng.shuffle(self.order)
        self.cursor = 0

    async def sample(self, problem: Problem, n: int, *, temperature: float, max_tokens: int,
                     stop: Sequence[str] = (), seed: int | None = None) -> Batch:
        take = self.order[self.cursor:self.cursor + n]
        self.cursor += n
        return Batch(tuple(Sample(_text(i), TOKENS[i]) for i in take),
                     Usage(0, sum(TOKENS[i] for i in take), calls=1))

    async def extend(self, problem: Problem, prefix: str, n: int, *, temperature: float,
                     max_tokens: int, stop: Sequence[str] = ()) -> Batch:
        raise NotImplementedError


class RecordedScore:
    """The serve-time verifier whose scores were recorded with the samples."""

    async def score(self, problem: Problem, candidates: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        return [[SCORES[int("".join(c).split(":")[0][1:])]] for c in candidates]


class ExactChecker:
    async def score(self, problem: Problem, candidates: Sequence[Sequence[str]]
                    ) -> list[list[float]]:
        return [[1.0 if "is 7" in "".join(c) else 0.0] for c in candidates]


async def simulate(config: GridConfig, runs: int) -> Expectation:
    rng = random.Random(5)
    verifier = {None: None, "recorded_score": RecordedScore(),
                "math_reference": ExactChecker()}[config.verifier]
    problem = Problem(messages=(), reference="7", answer_format="answer_line")
    correct = calls = tokens = 0.0
    for _ in range(runs):
        result = await REGISTRY[config.strategy].run(
            problem, PermutedPool(rng), verifier, config.params, Budget())
        correct += result.answer == "7"
        calls += result.usage.calls
        tokens += result.usage.completion_tokens
    return Expectation(correct / runs, calls / runs, tokens / runs)


CONFIGS = [
    GridConfig.make("greedy", {"temperature": 0.0}),
    *expand("self_consistency", {"n": [3, 6], "adaptive": False}),
    *expand("self_consistency", {"n": [4, 8], "round_size": 2}),
    GridConfig.make("self_consistency", {"n": 8, "confidence": 0.6, "round_size": 2}),
    agreement_cascade(2, 6),
    *expand("best_of_n", {"n": [2, 5], "mode": ["plain", "weighted"]}, "recorded_score"),
    *expand("best_of_n", {"n": [1, 4], "mode": "plain"}, "math_reference"),
    # posterior best-of-N: rounds of 2 or 3, stop once a score passes (0.8: the 0.9 sample
    # alone; 0.5: five samples; 0.95: never, so all N)
    *expand("best_of_n", {"n": [6, 10], "mode": ["plain", "weighted"], "round_size": 2,
                          "stop_score": [0.5, 0.8]}, "recorded_score"),
    GridConfig.make("best_of_n", {"n": 7, "round_size": 3, "stop_score": 0.95}, "recorded_score"),
    GridConfig.make("best_of_n", {"n": 6, "round_size": 2, "stop_score": 1.0}, "math_reference"),
    # stop once the leading answer holds that share of the summed scores (and/or a score passes)
    *expand("best_of_n", {"n": 10, "mode": ["plain", "weighted"], "round_size": 2,
                          "stop_share": 0.6}, "recorded_score"),
    GridConfig.make("best_of_n", {"n": 6, "round_size": 2, "stop_share": 0.9}, "recorded_score"),
    GridConfig.make("best_of_n", {"n": 8, "round_size": 3, "stop_share": 0.7, "stop_score": 0.85},
                    "recorded_score"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label)
async def test_replay_matches_running_the_strategy(config: GridConfig) -> None:
    # the share stop spends anywhere from 2 to N samples: more runs for the same precision
    wide = "stop_share" in config.params
    runs = 2000 if wide else 500
    live = await simulate(config, runs)
    rng = np.random.default_rng(0)
    # Monte Carlo parts (draw orders are drawn once per question): average 20 questions' worth
    draws = [expectation(_Question(ITEM), config, rng) for _ in range(60 if wide else 20)]
    assert all(d is not None for d in draws)
    acc = float(np.mean([d.correct for d in draws if d]))
    spent = float(np.mean([d.completion for d in draws if d]))
    calls = float(np.mean([d.calls for d in draws if d]))
    # the live mean over 500 random draw orders: standard error <= 0.023
    assert acc == pytest.approx(live.correct, abs=0.07), (acc, live)
    assert spent == pytest.approx(live.completion, rel=0.05)
    assert calls == pytest.approx(live.calls, abs=0.1)


def test_exact_estimators() -> None:
    q = _Question(ITEM)
    rng = np.random.default_rng(0)
    # pass@4 = 1 - C(6, 4) / C(10, 4)
    bon = expectation(q, GridConfig.make("best_of_n", {"n": 4, "mode": "plain"},
                                         "math_reference"), rng)
    assert bon is not None and bon.correct == pytest.approx(1 - 15 / 210)
    # greedy without a flagged sample: one random sample
    greedy = expectation(q, GridConfig.make("greedy", {}), rng)
    assert greedy == Expectation(0.4, 1, float(np.mean(TOKENS)))
    # majority of all ten samples: "7" has 4 votes of 9 answers
    full = expectation(q, GridConfig.make("self_consistency", {"n": 10, "adaptive": False}), rng)
    assert full is not None and full.correct == 1.0 and full.completion == sum(TOKENS)
    flagged = RecordedItem("g", "p", (RecordedSample("3", False, 5, greedy=True),
                                      *ITEM.samples), "7")
    g = expectation(_Question(flagged), GridConfig.make("greedy", {}), rng)
    assert g == Expectation(0.0, 1, 5.0)
    # the pool of the other strategies leaves the greedy sample out
    sc = expectation(_Question(flagged), GridConfig.make(
        "self_consistency", {"n": 10, "adaptive": False}), rng)
    assert sc is not None and sc.correct == 1.0
    too_many = GridConfig.make("self_consistency", {"n": 11, "adaptive": False})
    assert expectation(q, too_many, rng) is None


def test_replay_grid_and_records() -> None:
    grid = replay_grid(16, scores=True)
    assert all(replayable(c) for c in grid)
    assert not replayable(GridConfig.make("beam_search", {"width": 2}))
    assert not replayable(GridConfig.make("thinking", {"budget_tokens": 64}))
    labels = {c.label for c in grid}
    assert "best_of_n(mode=weighted,n=16)+recorded_score" in labels
    assert "cascade(draft=self_consistency:2,escalate=self_consistency:8,threshold=1.0)" in labels
    small = {c.label for c in replay_grid(4, scores=False)}
    assert small == {"greedy(temperature=0.0)", "self_consistency(adaptive=False,n=2)",
                     "self_consistency(adaptive=False,n=4)", "self_consistency(n=4)",
                     "best_of_n(mode=plain,n=1)+math_reference",
                     "best_of_n(mode=plain,n=2)+math_reference",
                     "best_of_n(mode=plain,n=4)+math_reference"}
    records, notes = replay([ITEM], replay_grid(16, scores=True), model="m", max_tokens=8)
    assert any("too few samples" in n for n in notes)  # N = 16 needs 16 samples
    assert {r.candidates for r in records} == {10} and {r.candidates_correct for r in records} \
        == {4}
    assert all(0 <= r.correct <= 1 for r in records)


def test_samples_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_samples([ITEM], path)
    [again] = load_samples(path)
    assert again == ITEM
    for bad, message in [
        ('{"problem": "p"}', "'samples' must be"),
        ('{"problem": "p", "samples": [{"answer": "1"}]}', "'correct' must be"),
        ('{"samples": [{"correct": true}]}', "missing 'problem'"),
        ('{"problem": "p", "samples": [{"correct": true, "completion_tokens": -1}]}',
         "non-negative"),
        ('{"problem": "p", "samples": [{"correct": true, "greedy": true}, '
         '{"correct": true, "greedy": true}]}', "at most one"),
    ]:
        with pytest.raises(EvalFileError, match=message):
            parse_samples([bad])
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "samples.jsonl"
    assert load_samples(example)
