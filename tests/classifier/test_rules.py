"""The documented corrections of `classifier/rules.py`: each fires on its form and only there,
and through a shipped classifier it shows in the scores' source and task."""

from __future__ import annotations

import pytest

from classifier import load_classifier
from classifier.base import Tier
from classifier.rules import apply_rules

P = (0.125, 0.5, 0.25, 0.125)  # exact in binary: sums compare equal


@pytest.mark.parametrize(
    "text",
    ["hi", "Hello!", "hi there, how are you today?", "Thanks, that was helpful!", "ok cool",
     "Hey there! How is it going?", "good morning", "bye"],
)
def test_greeting_alone_is_easy_chat(text: str) -> None:
    assert apply_rules(text, P) == ((1.0, 0.0, 0.0, 0.0), "greeting")


@pytest.mark.parametrize(
    "text",
    ["Hi, I need a rubric for evaluating laptops.", "Hello, can you help me with my homework?",
     "hey what is the derivative of x^2", "hello world program in C", "Good morning Vietnam cast",
     "What do you think about cats?"],
)
def test_a_greeting_with_a_request_is_left_to_the_heads(text: str) -> None:
    assert apply_rules(text, P) == (P, None)


async def test_shipped_default_reads_small_talk_as_easy_chat() -> None:
    clf = load_classifier()
    try:
        hi, ask = await clf.classify(["hi there, how are you today?", "Hi, who wrote Hamlet?"])
    finally:
        await clf.aclose()
    assert (hi.tier, hi.task, hi.source) == (Tier.EASY, "chat", f"{clf.label}+rule:greeting")
    assert ask.source == clf.label and ask.task != "chat"


def test_proof_task_only_moves_non_reasoning_kinds() -> None:
    from classifier.rules import proof_task

    assert proof_task("Prove that sqrt(2) is irrational.", "other") == "maths"
    assert proof_task("Show that the sum of two odd numbers is even.", "factual") == "maths"
    assert proof_task("Prove that the algorithm terminates.", "code") is None  # head kept
    assert proof_task("Prove the riddle's answer is unique.", "logic") is None
    assert proof_task("Write a poem about autumn.", "creative") is None


async def test_shipped_default_sends_proofs_to_a_reasoning_task() -> None:
    clf = load_classifier()
    try:
        scores = await clf.classify(["Prove that sqrt(2) is irrational.",
                                     "Show that there are infinitely many primes."])
    finally:
        await clf.aclose()
    for s in scores:
        assert s.task in {"maths", "code", "logic", "planning"}, s
        assert s.tier is not Tier.EASY


@pytest.mark.parametrize(
    "text",
    ["Write a SQL query...", "Write a SQL query that returns the second highest salary.",
     "Can you write a bash script to back up my home folder?",
     "Write a regex pattern that matches e-mail addresses.",
     "Please create a Python function that merges two sorted lists."],
)
def test_a_request_for_code_in_a_named_language_is_code(text: str) -> None:
    from classifier.rules import code_task

    assert code_task(text, "creative") == "code"
    assert code_task(text, "code") is None  # the head's answer stands


@pytest.mark.parametrize(
    "text",
    ["Write a poem about Python.", "Write a story about a programmer who loves SQL.",
     "Write an essay on the island of Java.", "Give me a go-to-market plan.",
     "What is SQL?"],
)
def test_writing_about_code_is_not_a_code_request(text: str) -> None:
    from classifier.rules import code_task

    assert code_task(text, "creative") is None


async def test_shipped_default_reads_a_sql_request_as_code() -> None:
    clf = load_classifier()
    try:
        (s,) = await clf.classify(["Write a SQL query that lists customers with 3+ orders."])
    finally:
        await clf.aclose()
    assert s.task == "code", s
