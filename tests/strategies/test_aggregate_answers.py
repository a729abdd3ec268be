import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import aggregate, answers_equivalent, extract_answer
from strategies.answers import group_answers

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.lists(unit, min_size=1, max_size=20))
def test_aggregations_stay_in_unit_interval_and_order(scores: list[float]) -> None:
    lo, mean, hi = aggregate(scores, "min"), aggregate(scores, "mean"), max(scores)
    prod = aggregate(scores, "product")
    eps = 1e-9  # float rounding of the mean
    assert 0.0 <= prod <= lo + eps and lo <= mean + eps and mean <= hi + eps
    assert aggregate(scores, "last") == scores[-1]
    assert math.isclose(mean, sum(scores) / len(scores), rel_tol=1e-9, abs_tol=1e-12)


@given(st.lists(unit, min_size=1, max_size=10), unit)
def test_adding_a_step_never_raises_min_or_product(scores: list[float], extra: float) -> None:
    assert aggregate([*scores, extra], "min") <= aggregate(scores, "min")
    assert aggregate([*scores, extra], "product") <= aggregate(scores, "product") + 1e-12


def test_aggregate_edge_cases() -> None:
    assert aggregate([], "min") == 0.0
    assert aggregate([1.5, -1.0], "mean") == 0.5  # clamped
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate([0.5], "max")


@settings(max_examples=40, deadline=None)
@given(st.integers(-10_000, 10_000))
def test_integer_forms_are_equivalent(n: int) -> None:
    assert answers_equivalent(str(n), f"{n}.0")
    assert answers_equivalent(f" {n} ", f"${n}$")
    assert not answers_equivalent(str(n), str(n + 1))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 50), st.integers(1, 50))
def test_fractions_match_decimals_and_equivalence_is_symmetric(a: int, b: int) -> None:
    frac = f"\\frac{{{a}}}{{{b}}}"
    dec = str(float(Fraction(a, b)))[:10]
    if len(str(float(Fraction(a, b)))) <= 8:  # exact decimals only
        assert answers_equivalent(frac, dec)
    assert answers_equivalent(frac, dec) == answers_equivalent(dec, frac)
    assert answers_equivalent(frac, f"{a}/{b}")


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("so \\boxed{\\frac{1}{2}} and \\boxed{3}", "boxed", "3"),
        ("x \\boxed{a_{1}+1} y", "auto", "a_{1}+1"),
        ("work\nAnswer: 42.", "auto", "42"),
        ("The answer is 7", "answer_line", "7"),
        ("it costs 1,234 dollars, not 12", "number", "12"),
        ("47+8=55", "number", "55"),
        ("```python\nprint(1)\n```\ntext\n```\nprint(2)\n```", "code", "print(2)\n"),
        ("no code", "code", None),
        ("just words here", "auto", "just words here"),
    ],
)
def test_extract_answer(text: str, fmt: str, expected: str | None) -> None:
    assert extract_answer(text, fmt) == expected


def test_group_answers_merges_equivalent_forms() -> None:
    assert group_answers(["55", "55.0", "56", None, "0.5", "1/2"]) == [[0, 1], [2], [4, 5]]
