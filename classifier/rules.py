"""Five documented corrections for query forms the training mix does not contain.

The public mix (classifier/labels.py) has no bare arithmetic questions and almost no proof
requests (14 rows in ~40k mention "prove"/"show that", all olympiad length), so the heads learn
"short and numeric" = GSM8K = medium and "short" = easy: "What is 2+2?" came out medium and
"Prove that sqrt(2) is irrational." easy. Until labelled rows of these forms exist, two rules
move probability mass after the head (every backend), and the scores' `source` gets
"+rule:<name>" so the decision says a rule acted:

- `arithmetic`: the whole query is one arithmetic expression (optionally "what is" / "compute"
  ... "?"), at most 40 characters: a single step, so the mass of the higher tiers moves to easy.
- `proof`: the query asks for a proof ("prove", "show that", "demonstrate that"): a proof is
  never a single-step recall, so the easy mass moves to medium (the tiers above stay as the
  head put them).
- `greeting`: the whole query is a greeting, thanks or small talk ("hi there, how are you?",
  "thanks!"), at most 60 characters: the mix has almost no chit-chat (a handful of rows), so
  the task head read these as factual questions. All mass moves to easy and the task is chat.
- `proof` also names the task when the task head put a proof request outside the reasoning
  kinds (maths, code, logic, planning): "Prove that sqrt(2) is irrational." read as `other`,
  which the default policy answers greedily. A proof is reasoning the seed's search helps, so
  such a request's task becomes maths (a head that said logic or code keeps its answer).
- `code`: the query opens by asking to write code in a named language or for a code artefact
  ("Write a SQL query that...", "Give me a bash one-liner...", "Write a regex for..."): the
  task is code. The mix's "Write a ..." openings are mostly IFEval's writing prompts, so the
  task head read "Write a SQL query..." as creative (the default policy's greedy route).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ARITHMETIC = re.compile(
    r"^\s*(?:what(?:'s| is)|compute|calculate|evaluate|how much is)?\s*"
    r"[-+*/×÷^().\d\s]*\d[-+*/×÷^().\d\s]*[?.=]?\s*$",
    re.I,
)
_OPERATOR = re.compile(r"\d\s*[-+*/×÷^]\s*[\d(]")
_PROOF = re.compile(r"\b(?:prove|show that|demonstrate that)\b", re.I)
_GREETING = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening)|thanks|thank you|"
    r"thx|cheers|bye|goodbye|see you|ok(?:ay)?|cool|nice|lol|great)\b[\s,!.]*(?:there|all|"
    r"again|so much|a lot|mate|friend)?[\s,!.]*)+(?:how are you(?: doing)?(?: today)?|"
    r"how(?:'s| is) it going|what's up|how have you been|nice to meet you|"
    r"that (?:was|is) (?:very |really |so )?(?:helpful|great|useful))?[\s?!.]*$",
    re.I,
)


_CODE_REQUEST = re.compile(
    r"^\W*(?:please\s+)?(?:(?:can|could) you\s+)?(?:write|create|give me|generate|draft|"
    r"implement|show me|build)\b[^.?!\n]{0,30}?\b(?:sql|mysql|postgres(?:ql)?|sqlite|python|"
    r"javascript|typescript|java|c\+\+|c#|rust|golang|bash|shell|powershell|regex|"
    r"regular expression|html|css|react|excel formula|vba)\b[^.?!\n]{0,20}?\b(?:query|"
    r"queries|function|script|program|class|code|snippet|statement|expression|command|"
    r"one-liner|method|module|formula|macro|component|regex|pattern)s?\b",
    re.I,
)


# rules that also name the task type
RULE_TASKS: dict[str, str] = {"arithmetic": "maths", "greeting": "chat"}


REASONING_TASKS = frozenset({"maths", "code", "logic", "planning"})


def proof_task(text: str, task: str) -> str | None:
    """"maths" for a proof request the task head put outside the reasoning kinds, else None."""
    if task not in REASONING_TASKS and _PROOF.search(text):
        return "maths"
    return None


def code_task(text: str, task: str) -> str | None:
    """"code" for a request to write code in a named language the task head put elsewhere."""
    if task != "code" and _CODE_REQUEST.search(text):
        return "code"
    return None


# rule name -> correction of the task head's answer (None: the head's answer stands)
TASK_CORRECTIONS: dict[str, Callable[[str, str], str | None]] = {
    "proof": proof_task,
    "code": code_task,
}


def apply_rules(text: str, probs: tuple[float, ...]) -> tuple[tuple[float, ...], str | None]:
    """(probabilities after the rules, the rule's name or None). Tiers: easy..very_hard."""
    if len(text) <= 40 and _ARITHMETIC.match(text) and _OPERATOR.search(text):
        return (sum(probs), 0.0, 0.0, 0.0), "arithmetic"
    if len(text) <= 60 and _GREETING.match(text):
        return (sum(probs), 0.0, 0.0, 0.0), "greeting"
    if _PROOF.search(text) and probs[0] > 0:
        return (0.0, probs[0] + probs[1], *probs[2:]), "proof"
    return probs, None
