"""Monte Carlo step labels against a hand-computed example, and the rollout verifier sharing
the estimator."""

from __future__ import annotations

from strategies.montecarlo import estimate
from strategies.prm_labels import ROW_FIELDS, LabelSettings, label_problem, summarise
from strategies.verifiers.rollout import RolloutValue
from tests.strategies.fakes import ScriptedGenerator, problem

SCRIPT = {
    "": ["a\nb\nAnswer: 5", "c\nAnswer: 7"],  # two sampled chains
    # chain 0, after step "a": 3 of 4 completions reach 5
    "a\n": ["b\nAnswer: 5", "x\nAnswer: 5", "Answer: 4", "Answer: 5"],
    # chain 0, after "a", "b": none does
    "a\nb\n": ["Answer: 6", "Answer: 4", "Answer: 6", "Answer: 9"],
    # chain 1, after "c": 1 of 4
    "c\n": ["Answer: 5", "Answer: 7", "Answer: 7", "Answer: 7"],
}
SETTINGS = LabelSettings(chains=2, k=4, step_delimiter="\n", max_tokens=64)


async def test_labels_match_the_hand_computed_example() -> None:
    gen = ScriptedGenerator(SCRIPT)
    p = problem("What is 2+3?", reference="5")
    labelled = await label_problem(gen, p, SETTINGS)
    rows = [c.row(p, "q1", i, SETTINGS.k) for i, c in labelled]
    assert [r["completions"] for r in rows] == [["a", "b", "Answer: 5"], ["c", "Answer: 7"]]
    # soft = share of the 4 completions that are correct; the last step is the chain itself
    assert [r["soft_labels"] for r in rows] == [[0.75, 0.0, 1.0], [0.25, 0.0]]
    # hard = any completion correct
    assert [r["labels"] for r in rows] == [[True, False, True], [True, False]]
    assert [(r["answer"], r["correct"]) for r in rows] == [("5", True), ("7", False)]
    assert rows[0]["prompt"] == "What is 2+3?" and set(rows[0]) == set(ROW_FIELDS)
    # one sampling call for both chains, one k=4 call per non-final step (3 of them)
    assert [(c.prefix, c.n) for c in gen.calls] == [("", 2), ("a\n", 4), ("a\nb\n", 4), ("c\n", 4)]

    summary = summarise(rows)
    assert summary["steps"] == 5 and summary["chains"] == 2 and summary["items"] == 1
    assert summary["hard_positive"] == 3 / 5
    assert abs(summary["soft_mean"] - (0.75 + 0 + 1 + 0.25 + 0) / 5) < 1e-9
    assert summary["soft_histogram"] == {
        "[0.0,0.2)": 2,
        "[0.2,0.4)": 1,
        "[0.4,0.6)": 0,
        "[0.6,0.8)": 1,
        "[0.8,1.0]": 1,
    }
    assert summary["chains_correct"] == 0.5
    assert summary["completion_tokens"] == sum(r["usage"][1] for r in rows) > 0


async def test_rollout_verifier_scores_with_the_same_estimator() -> None:
    p = problem("What is 2+3?", reference="5")
    offline = await estimate(ScriptedGenerator(SCRIPT), p, "a\n", 4, temperature=0.7, max_tokens=64)
    online = await RolloutValue(ScriptedGenerator(SCRIPT), k=4).score(p, [["a\n"], ["a\n", "b\n"]])
    assert (offline.hits, offline.total, offline.soft) == (3, 4, 0.75)
    assert online == [[0.75], [0.0]]


async def test_without_a_reference_the_value_is_the_majority_share() -> None:
    # no reference: the rollout target is the answer most completions agree on (7: 3 of 4)
    v = await estimate(
        ScriptedGenerator(SCRIPT), problem("q"), "c\n", 4, temperature=0.7, max_tokens=64
    )
    assert (v.hits, v.soft, v.hard) == (3, 0.75, True)
