"""Multi-part arithmetic for `bench/strategies.py`: "a+b, then c+d, then add the two results".

Whole-answer strategies see a few-shot prompt of worked chains (one line per step, then
`Answer: N`). `decompose` plans the two parts with a few-shot JSON planner, solves each on the
one-digit few-shot prompt the other tiers use, and composes from the sub-answers. `draft_target`
drafts each line of the chain and lets the target rewrite lines the draft is unsure of
(geometric-mean token probability under `threshold`). The cascade drafts a whole answer
(self-consistency, 2 votes) and escalates to self-consistency with 6 when the votes split.

There is one local model: the draft and target roles (and the cascade's two stages) run on
the same Gemma 3 270M, the draft at T = 0.7 and the target greedy. The roles are given model
names ("draft", "target") that resolve to that one upstream, so each role's tokens are
reported apart (`Result.model_usage`).
"""

from __future__ import annotations

import random
from typing import Any

from router.upstreams.base import Message
from strategies import Problem

CHAIN_SHOTS = "".join(
    f"Q: {a}+{b}, then {c}+{d}, then add the two results.\n"
    f"A: {a}+{b}={a + b}\n{c}+{d}={c + d}\n{a + b}+{c + d}={a + b + c + d}\n"
    f"Answer: {a + b + c + d}\n\n"
    for a, b, c, d in ((3, 5, 4, 2), (7, 1, 2, 9), (6, 6, 1, 3), (2, 8, 5, 4))
)
DIGIT_SHOTS = "3+5=8\n6+1=7\n2+2=4\n4+5=9\n1+7=8\n5+3=8\n9+4=13\n8+8=16\n"
PLAN = (
    "Split each problem into independent sub-problems, as a JSON list.\n\n"
    "Problem: 3+5, then 4+2, then add the two results.\n"
    'Sub-problems: ["3+5", "4+2"]\n\n'
    "Problem: 7+1, then 2+9, then add the two results.\n"
    'Sub-problems: ["7+1", "2+9"]\n\n'
    "Problem: {question}\nSub-problems: ["
)
COMPOSE = (
    "Q: 3+5, then 4+2, then add the two results.\nKnown:\n3+5=8\n4+2=6\nA: 8+6=14\n\n"
    "Q: 7+1, then 2+9, then add the two results.\nKnown:\n7+1=8\n2+9=11\nA: 8+11=19\n\n"
    "Q: {question}\nKnown:\n{sub_answers}\nA:"
)

DECOMPOSE: dict[str, Any] = {
    "prompts": {
        "plan": PLAN,
        "solve": DIGIT_SHOTS + "{sub_problem}=",
        "compose": COMPOSE,
        "answer_line": "{sub_problem}={sub_answer}",
    },
    "plan_max_tokens": 24,
    "compose_max_tokens": 12,
    "stop": ["\n"],
    "max_parts": 3,
}
CHAIN: dict[str, Any] = {"stop": ["\n\n"], "max_tokens": 40}
ARMS: list[tuple[str, str, int, dict[str, Any]]] = [
    ("greedy", "greedy", 1, {**CHAIN, "temperature": 0.0}),
    ("self-consistency", "self_consistency", 4, {**CHAIN, "n": 4, "round_size": 4}),
    (
        "cascade sc2->sc6",
        "cascade",
        8,
        {
            "threshold": 0.75,
            "trace": True,
            "draft": {"strategy": "self_consistency", "params": {**CHAIN, "n": 2}},
            "escalate": {
                "strategy": "self_consistency",
                "model": "target",
                "params": {**CHAIN, "n": 6, "round_size": 6},
            },
        },
    ),
    (
        "draft/target",
        "draft_target",
        1,
        {
            "draft_model": "draft",
            "scorer": "logprob",
            "threshold": 0.8,
            "draft_temperature": 0.7,
            "target_temperature": 0.0,
            "step_delimiter": "\n",
            "step_max_tokens": 14,
            "max_depth": 5,
            "stop": ["\n\n"],
            "trace": True,
        },
    ),
    (
        "decompose greedy",
        "decompose",
        2,
        {
            **DECOMPOSE,
            "trace": True,
            "sub": {"strategy": "greedy", "params": {"stop": ["\n"], "max_tokens": 4}},
        },
    ),
    (
        "decompose sc4",
        "decompose",
        8,
        {
            **DECOMPOSE,
            "sub": {
                "strategy": "self_consistency",
                "params": {
                    "n": 4,
                    "round_size": 4,
                    "stop": ["\n"],
                    "max_tokens": 4,
                    "answer_format": "number",
                },
            },
        },
    ),
]

# the new strategies first, so a run cut short on a loaded machine still has them
RUN_ORDER = [
    "greedy",
    "draft/target",
    "decompose greedy",
    "cascade sc2->sc6",
    "decompose sc4",
    "self-consistency",
]


def make_problems(count: int, seed: int) -> list[Problem]:
    r = random.Random(f"{seed}-multi")
    out = []
    for _ in range(count):
        a, b, c, d = (r.randint(1, 9) for _ in range(4))
        question = f"{a}+{b}, then {c}+{d}, then add the two results."
        out.append(
            Problem(
                messages=(Message("user", CHAIN_SHOTS + f"Q: {question}\nA:"),),
                reference=str(a + b + c + d),
            )
        )
    return out


def question_of(problem: Problem) -> str:
    """The bare question (decompose plans on it, not on the few-shot chain prompt)."""
    return problem.question.rsplit("Q: ", 1)[-1].removesuffix("\nA:")


def roles(arm: str, result: Any) -> dict[str, float]:
    """Per-role figures of one run: tokens of each role, and accepted/rewritten steps."""
    total = result.usage.total_tokens
    other = {name: u.total_tokens for name, u in result.model_usage.items()}
    if arm == "draft/target":
        events = [e for e in (result.trace or {}).get("events", []) if e["kind"] == "summary"]
        s = events[-1] if events else {"accepted": 0, "regenerated": 0}
        return {
            "draft_tokens": other.get("draft", 0),
            "target_tokens": total - other.get("draft", 0),
            "steps": s["accepted"] + s["regenerated"],
            "accepted": s["accepted"],
        }
    if arm.startswith("cascade"):
        escalated = other.get("target", 0)
        return {
            "draft_tokens": total - escalated,
            "target_tokens": escalated,
            "escalated": 1.0 if escalated else 0.0,
        }
    return {}


async def run_multi(
    upstream: Any, count: int, seed: int, concurrency: int = 2, partial: Any = None
) -> list[dict[str, Any]]:
    """Every arm on `count` problems (live calls, `concurrency` problems at a time);
    `partial(rows)` is called after each arm (the caller saves what is done so far)."""
    import asyncio
    import statistics
    import time

    from strategies import REGISTRY, Budget, UpstreamGenerator, extract_answer

    live = UpstreamGenerator(upstream, resolve=lambda name: upstream)
    problems = make_problems(count, seed)
    budget = Budget(max_tokens_per_sample=40, deadline_s=600.0)
    gate = asyncio.Semaphore(concurrency)
    out: list[dict[str, Any]] = []
    for label, name, n, params in sorted(ARMS, key=lambda a: RUN_ORDER.index(a[0])):
        t0 = time.monotonic()

        async def one(
            p: Problem, name: str = name, params: dict[str, Any] = params, label: str = label
        ) -> dict[str, Any]:
            if name == "decompose":  # plans on the bare question
                p = Problem(messages=(Message("user", question_of(p)),), reference=p.reference)
            async with gate:
                try:
                    result = await REGISTRY[name].run(p, live, None, params, budget)
                except Exception as exc:  # a failed run counts as wrong, and is reported
                    print(f"  multi   {label}: {type(exc).__name__}: {exc}", flush=True)
                    return {"correct": False, "tokens": 0, "generated": 0, "failed": 1}
            answer = extract_answer(result.text, "number")
            return {
                "correct": answer is not None and answer.strip() == p.reference,
                "tokens": result.usage.total_tokens,
                "generated": result.usage.completion_tokens,
                **roles(label, result),
            }

        runs = await asyncio.gather(*(one(p) for p in problems))
        row: dict[str, Any] = {
            "tier": "multi",
            "arm": label,
            "n": n,
            "accuracy": sum(r["correct"] for r in runs) / len(runs),
            "tokens": statistics.fmean(r["tokens"] for r in runs),
            "generated": statistics.fmean(r["generated"] for r in runs),
            "problems": len(runs),
            "failed": sum(r.get("failed", 0) for r in runs),
            "seconds": round(time.monotonic() - t0, 1),
        }
        ok = [r for r in runs if not r.get("failed")] or runs
        for key in ("draft_tokens", "target_tokens", "escalated"):
            if key in ok[0]:
                row[key] = statistics.fmean(r[key] for r in ok)
        if "steps" in ok[0]:
            steps = sum(r["steps"] for r in ok)
            row["accepted_share"] = sum(r["accepted"] for r in ok) / steps if steps else 0.0
            row["steps_per_problem"] = steps / len(ok)
        out.append(row)
        if partial is not None:
            partial(out)
        print(
            f"  multi   {label:17} N={n:<3} acc={row['accuracy']:.2f} "
            f"tok/q={row['tokens']:.0f} ({row['seconds']} s)",
            flush=True,
        )
    return out


def print_roles(rows: list[dict[str, Any]]) -> None:
    """The per-role table for draft/target and the cascade."""
    print(
        f"\n{'multi-part':18}{'acc':>6}{'draft tok/q':>13}{'target tok/q':>14}"
        f"{'accepted':>10}{'escalated':>11}"
    )
    for r in rows:
        if "draft_tokens" not in r:
            continue
        acc = f"{r['accepted_share']:.2f}" if "accepted_share" in r else "-"
        esc = f"{r['escalated']:.2f}" if "escalated" in r else "-"
        print(
            f"{r['arm']:18}{r['accuracy']:>6.2f}{r['draft_tokens']:>13.0f}"
            f"{r['target_tokens']:>14.0f}{acc:>10}{esc:>11}"
        )
