"""The tier-labelling of the public training mix, in one place.

Every source file under the data directory (see its SOURCES.md) maps to a tier through one
entry of `SOURCES`: how to read the query text from a row and how to label it. Sources that
span several tiers (MATH levels, LeetCode, Omni-MATH, AIME/AMC, Codeforces letters) matter most:
they stop the head from learning "source style" instead of difficulty.

| tier      | sources                                                                          |
|-----------|----------------------------------------------------------------------------------|
| easy      | NQ-open; MT-bench writing/roleplay/extraction/humanities; Vicuna generic,        |
|           | knowledge, roleplay, common-sense, counterfactual, writing; self-instruct;       |
|           | IFEval; MATH level 1; HumanEval; MBPP; LeetCode Easy                             |
| medium    | GSM8K; MATH levels 2-3; MT-bench reasoning/math/coding/stem; Vicuna fermi,      |
|           | coding, math; TruthfulQA; LeetCode Medium; Codeforces/CodeContests A-B;          |
|           | AMC difficulty <= 2.5; Omni-MATH < 2.5                                           |
| hard      | MATH levels 4-5; AMC > 2.5; AIME < 5; Omni-MATH 2.5-5.25; OlympiadBench;         |
|           | LeetCode Hard; Codeforces/CodeContests C-D; Arena-Hard v0.1                      |
| very_hard | AIME >= 5; Omni-MATH >= 5.5; Codeforces/CodeContests E and later                 |

MATH-500 (`math500`) is evaluation only: `SOURCES` never lists it; `EVAL_SOURCES` does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from classifier.base import Tier

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Row = Mapping[str, Any]


def math_level_tier(level: object) -> Tier | None:
    """MATH (Hendrycks) level 1-5; unknown levels are dropped."""
    return {1: Tier.EASY, 2: Tier.MEDIUM, 3: Tier.MEDIUM, 4: Tier.HARD, 5: Tier.HARD}.get(
        level if isinstance(level, int) else -1
    )


def leetcode_tier(difficulty: str) -> Tier | None:
    return {"easy": Tier.EASY, "medium": Tier.MEDIUM, "hard": Tier.HARD}.get(difficulty.lower())


def contest_index_tier(index: str) -> Tier | None:
    """Codeforces problem letter within a round (A easiest); `E1`/`E2` count as `E`."""
    letter = index.strip()[:1].upper()
    if not letter.isalpha():
        return None
    if letter in "AB":
        return Tier.MEDIUM
    if letter in "CD":
        return Tier.HARD
    return Tier.VERY_HARD


def amc_tier(difficulty: float) -> Tier:
    return Tier.MEDIUM if difficulty <= 2.5 else Tier.HARD


def aime_tier(difficulty: float) -> Tier:
    return Tier.VERY_HARD if difficulty >= 5 else Tier.HARD


def omni_tier(difficulty: float) -> Tier:
    if difficulty < 2.5:
        return Tier.MEDIUM
    return Tier.HARD if difficulty < 5.5 else Tier.VERY_HARD


MT_BENCH_TIERS: dict[str, Tier] = {
    "writing": Tier.EASY,
    "roleplay": Tier.EASY,
    "extraction": Tier.EASY,
    "humanities": Tier.EASY,
    "reasoning": Tier.MEDIUM,
    "math": Tier.MEDIUM,
    "coding": Tier.MEDIUM,
    "stem": Tier.MEDIUM,
}

VICUNA_TIERS: dict[str, Tier] = {
    "generic": Tier.EASY,
    "knowledge": Tier.EASY,
    "roleplay": Tier.EASY,
    "common-sense": Tier.EASY,
    "counterfactual": Tier.EASY,
    "writing": Tier.EASY,
    "fermi": Tier.MEDIUM,
    "coding": Tier.MEDIUM,
    "math": Tier.MEDIUM,
}


def _const(tier: Tier) -> Callable[[Row], tuple[Tier | None, str]]:
    def label(row: Row) -> tuple[Tier | None, str]:
        return tier, tier.value

    return label


def _math(row: Row) -> tuple[Tier | None, str]:
    return math_level_tier(row.get("level")), f"level{row.get('level')}"


def _leetcode(row: Row) -> tuple[Tier | None, str]:
    return leetcode_tier(str(row["difficulty"])), str(row["difficulty"]).lower()


def _codeforces(row: Row) -> tuple[Tier | None, str]:
    tier = contest_index_tier(str(row["index"]))
    return tier, tier.value if tier else "unknown"


def _codecontests(row: Row) -> tuple[Tier | None, str]:
    tier = contest_index_tier(str(row["cc_difficulty_name"]))
    return tier, tier.value if tier else "unknown"


def _scored(fn: Callable[[float], Tier]) -> Callable[[Row], tuple[Tier | None, str]]:
    def label(row: Row) -> tuple[Tier | None, str]:
        d = row.get("difficulty")
        if not isinstance(d, int | float):
            return None, "unknown"
        tier = fn(float(d))
        return tier, tier.value

    return label


def _category(table: Mapping[str, Tier]) -> Callable[[Row], tuple[Tier | None, str]]:
    def label(row: Row) -> tuple[Tier | None, str]:
        cat = str(row.get("category", ""))
        return table.get(cat), cat

    return label


def _field(name: str) -> Callable[[Row], str]:
    def text(row: Row) -> str:
        return str(row.get(name) or "")

    return text


def _nq_question(row: Row) -> str:
    """NQ-open questions are lower-case without a question mark; half of them (chosen by a
    hash of the text) get sentence case and "?", so the head cannot learn "lower case means
    easy" and file a well-typed factoid with TruthfulQA's capitalised questions (medium)."""
    q = str(row.get("question") or "").strip()
    if q and hashlib.sha256(q.encode()).digest()[0] % 2 == 0:
        q = q[:1].upper() + q[1:] + ("" if q.endswith("?") else "?")
    return q


def _first_turn(row: Row) -> str:
    turns = row.get("turns") or [""]
    return str(turns[0])


def _instruction(row: Row) -> str:
    text = str(row.get("instruction") or "")
    instances = row.get("instances") or []
    if instances and instances[0].get("input"):
        text = f"{text}\n\n{instances[0]['input']}"
    return text


def _olympiad(row: Row) -> str:
    ctx = row.get("context")
    return f"{ctx}\n\n{row['question']}" if ctx else str(row["question"])


@dataclass(frozen=True)
class SourceSpec:
    """One file of the mix: where it is, how to read its text, how to label a row."""

    path: str
    text: Callable[[Row], str]
    label: Callable[[Row], tuple[Tier | None, str]]


SOURCES: dict[str, SourceSpec] = {
    "nq_open": SourceSpec(
        "general_instructions/nq_open_dev_3610.jsonl", _nq_question, _const(Tier.EASY)
    ),
    "nq_open_efficientqa": SourceSpec(
        "general_instructions/nq_open_efficientqa_dev_1800.jsonl",
        _nq_question,
        _const(Tier.EASY),
    ),
    "mt_bench": SourceSpec(
        "general_instructions/mt_bench_80.jsonl", _first_turn, _category(MT_BENCH_TIERS)
    ),
    "vicuna_bench": SourceSpec(
        "general_instructions/vicuna_bench_80.jsonl", _first_turn, _category(VICUNA_TIERS)
    ),
    "self_instruct_seed": SourceSpec(
        "general_instructions/self_instruct_seed_175.jsonl", _instruction, _const(Tier.EASY)
    ),
    "self_instruct_user": SourceSpec(
        "general_instructions/self_instruct_user_oriented_252.jsonl",
        _instruction,
        _const(Tier.EASY),
    ),
    "ifeval": SourceSpec(
        "general_instructions/ifeval_540.jsonl", _field("prompt"), _const(Tier.EASY)
    ),
    "truthfulqa": SourceSpec(
        "general_instructions/truthfulqa_817.csv", _field("Question"), _const(Tier.MEDIUM)
    ),
    "arena_hard": SourceSpec(
        "general_instructions/arena_hard_v0.1_500.jsonl", _field("prompt"), _const(Tier.HARD)
    ),
    "math": SourceSpec(
        "math_hendrycks/math_prm800k_train_approx_11974.jsonl", _field("problem"), _math
    ),
    "gsm8k": SourceSpec("gsm8k/train.jsonl", _field("question"), _const(Tier.MEDIUM)),
    "humaneval": SourceSpec(
        "code/humaneval/HumanEval.jsonl.gz", _field("prompt"), _const(Tier.EASY)
    ),
    "mbpp": SourceSpec(
        "code/mbpp/mbpp_sanitized_427_codet.jsonl", _field("prompt"), _const(Tier.EASY)
    ),
    "leetcode": SourceSpec(
        "code/leetcode/leetcode_easy_medium_hard.jsonl", _field("query"), _leetcode
    ),
    "codeforces": SourceSpec(
        "code/codeforces/codeforces_2024_test_408.jsonl", _field("problem"), _codeforces
    ),
    "codecontests": SourceSpec(
        "code/codecontests/codecontests_test_165.jsonl", _field("problem"), _codecontests
    ),
    "amc": SourceSpec(
        "competition_math/amc_2022_2023_rllm.jsonl", _field("problem"), _scored(amc_tier)
    ),
    "aime": SourceSpec(
        "competition_math/aime_1983_2023_rllm.jsonl", _field("problem"), _scored(aime_tier)
    ),
    "omni_math": SourceSpec(
        "competition_math/omni_math_rule_2821.jsonl", _field("problem"), _scored(omni_tier)
    ),
    "olympiadbench": SourceSpec(
        "competition_math/olympiadbench_en_675.jsonl", _olympiad, _const(Tier.HARD)
    ),
}

EVAL_SOURCES: dict[str, SourceSpec] = {
    "math500": SourceSpec(
        "math_hendrycks/math500_prm800k_test.jsonl", _field("problem"), _math
    ),
}


def solve_rate_tier(rate: float, thresholds: tuple[float, float, float]) -> Tier:
    """Operator data: a model's empirical solve rate -> tier.

    `thresholds` = (easy_min, medium_min, hard_min), descending: a rate >= easy_min is easy,
    >= medium_min medium, >= hard_min hard, anything lower very_hard.
    """
    easy_min, medium_min, hard_min = thresholds
    if not 1 >= easy_min >= medium_min >= hard_min >= 0:
        raise ValueError(f"solve-rate thresholds must descend within [0, 1]: {thresholds}")
    if rate >= easy_min:
        return Tier.EASY
    if rate >= medium_min:
        return Tier.MEDIUM
    return Tier.HARD if rate >= hard_min else Tier.VERY_HARD


DEFAULT_SOLVE_RATE_THRESHOLDS: tuple[float, float, float] = (0.8, 0.5, 0.2)


# --- task type ---------------------------------------------------------------------------
# What kind of task a query is (the second head). Test-time compute pays on the first four,
# does little for recall, writing and rewriting, and hurts chit-chat (see README, "Task type").
# The mix has almost no chat and planning rows: `train-task --supplement` also trains on rows
# this project wrote for them (classifier/data/task_supplement.jsonl; training only, never in an
# evaluation split: `classifier.task_train.load_supplement`); the shipped head does not.
TASKS: tuple[str, ...] = (
    "maths", "code", "logic", "planning", "factual", "creative", "rewrite", "chat", "other",
)
# source -> task where one task covers the whole source
SOURCE_TASKS: dict[str, str] = {
    **dict.fromkeys(
        ("math", "math500", "gsm8k", "amc", "aime", "omni_math", "olympiadbench"), "maths"
    ),
    **dict.fromkeys(("humaneval", "mbpp", "leetcode", "codeforces", "codecontests"), "code"),
    **dict.fromkeys(("nq_open", "nq_open_efficientqa", "truthfulqa"), "factual"),
}
CATEGORY_TASKS: dict[str, dict[str, str]] = {  # MT-bench / Vicuna categories
    "mt_bench": {
        "writing": "creative", "roleplay": "creative", "extraction": "rewrite",
        "reasoning": "logic", "math": "maths", "coding": "code", "stem": "factual",
        "humanities": "factual",
    },
    "vicuna_bench": {
        "writing": "creative", "roleplay": "creative", "counterfactual": "creative",
        # generic ("How can I improve my time management skills?") and common-sense ("How can
        # you tell if a restaurant is popular among locals?") are advice and explanation
        # questions, not chit-chat or puzzles
        "knowledge": "factual", "generic": "factual", "common-sense": "factual", "fermi": "logic",
        "coding": "code", "math": "maths",
    },
}
# Instruction sources (self-instruct, IFEval, Arena-Hard) have no task field: the first rule
# whose pattern matches the start of the instruction (first 300 characters, lower case) decides;
# none matching = "other". Rule labels are noisy: they are what the head learns for these rows.
TASK_RULES: tuple[tuple[str, str], ...] = (
    # an explicit request to write a piece ("Write a riddle about...", "Compose a poem on
    # Python") is writing, whatever the piece is about
    ("creative", r"^\W*(please\s+)?(write|create|compose|make up|come up with|draft)\b"
                 r"[^.?!\n]{0,40}\b(poem|story|stories|song|lyrics|haiku|limerick|riddle|joke|rap|essay|"
                 r"blog|slogan|tweet|speech|dialogue|advertisement|ad|pitch|letter|email)s?\b"),
    ("rewrite", r"\b(summari[sz]e|summary|rewrite|re-write|paraphrase|rephrase|proofread|"
                r"correct (the )?(grammar|spelling|errors)|extract|translate|shorten|simplify "
                r"the|convert (the|this|it)|edit (the|this)|classify|categori[sz]e|tag the)\b"),
    ("code", r"(```|\b(python|javascript|typescript|java\b|c\+\+|c#|sql|rust|golang|bash|"
             r"regex|html|css|function|script|code|program|api|bug|compile|class|algorithm|"
             r"database|ssms|spreadsheet|excel|pandas|dataframe|docker|linux)\b)"),
    ("maths", r"(\$|\\frac|\b(calculate|compute|solve|equation|probability|integral|"
              r"derivative|prove|theorem|how many|sum of|percent)\b|\d+\s*[+*/^-]\s*\d+)"),
    ("logic", r"\b(puzzle|riddle|logic(al)?|deduce|syllogism|true or false|paradox|"
              r"sudoku|who is lying|which of the following must)\b"),
    ("planning", r"\b(plan|itinerary|schedule|agenda|roadmap|timeline|step-by-step guide|"
                 r"workout|meal prep|checklist|strategy for|organi[sz]e my|budget for)\b"),
    ("creative", r"\b(poem|story|stories|song|lyrics|haiku|limerick|essay|letter|email|blog|"
                 r"slogan|tweet|speech|script|dialogue|joke|riddle|rap|cover letter|resume|"
                 r"advertisement|ad copy|imagine|pretend|role-?play|write a|compose|"
                 r"come up with|generate a (name|title|tagline))\b"),
    # a greeting alone is chit-chat; "Hi, I need two movie recommendations..." is a request
    ("chat", r"^(hi|hello|hey|thanks|thank you|how are you|good (morning|evening))\b.{0,40}$|"
             r"\b(what do you think|your (favou?rite|opinion)|tell me about yourself|"
             r"i feel|i'm feeling|can we talk|chat with me)\b"),
    ("factual", r"^(what|who|when|where|which|why|how|is|are|does|do|did|can|explain|"
                r"describe|define|tell me)\b"),
)


_COMPILED_RULES = tuple((task, re.compile(pattern)) for task, pattern in TASK_RULES)


def rule_task(text: str) -> str:
    """The `TASK_RULES` label of an instruction ("other" when no rule matches)."""
    head = text[:300].lower()
    for task, pattern in _COMPILED_RULES:
        if pattern.search(head):
            return task
    return "other"


def rule_features(texts: Sequence[str], classes: Sequence[str]) -> npt.NDArray[np.float32]:
    """One row per text: 1.0 in the column of `classes` that `rule_task` names, else zeros
    (the task head's view of the keyword rules; `classes` keeps the columns it was trained on)."""
    import numpy as np

    out = np.zeros((len(texts), len(classes)), np.float32)
    column = {c: i for i, c in enumerate(classes)}
    for i, text in enumerate(texts):
        j = column.get(rule_task(text))
        if j is not None:
            out[i, j] = 1.0
    return out


def task_of(source: str, category: str, text: str) -> str:
    """Task type of a row: the source's task, its category's, else the keyword rules."""
    if source in SOURCE_TASKS:
        return SOURCE_TASKS[source]
    table = CATEGORY_TASKS.get(source)
    if table is not None and category in table:
        return table[category]
    return rule_task(text)
