"""Replay recorded samples: what each strategy would have scored and cost, without a model.

For a question with M recorded samples, a strategy at N draws N of them without replacement
(the samples are exchangeable draws of the same model). Estimators, per question:

- `greedy`: the sample flagged greedy; without one, a single sample (the mean over all M:
  the unbiased estimate of one draw).
- majority vote at N (`self_consistency adaptive=false`), best-of-N by recorded score
  (`best_of_n mode=plain|weighted`): the exact expectation over every N-subset (ties broken
  uniformly, as a random draw order does) while C(M, N) <= `EXACT_SUBSETS`, else the mean
  over that many random subsets (unbiased, with a fixed seed).
- pass@N (`best_of_n` + `math_reference`, the oracle ceiling): 1 - C(M-c, N) / C(M, N), c the
  correct samples (the unbiased pass@k estimator of Chen et al. 2021).
- adaptive-stop self-consistency (`self_consistency`, rounds of `round_size`, stop once the
  leader cannot be caught): its answer is the majority of the first N draws (an undecided vote
  draws all N; a decided one cannot change), so accuracy is the exact majority@N expectation;
  the samples it draws, and so its cost, are averaged over `PERMUTATIONS` random orders.
- best-of-N by recorded score with early stopping (`best_of_n` with `stop_score` and/or
  `stop_share`: rounds of `round_size`, stop once the best score so far reaches `stop_score` or
  the leading answer holds `stop_share` of the summed scores, then pick among the samples drawn
  as `mode` says): accuracy and cost averaged over `PERMUTATIONS` random orders
  (ties go to the first in draw order, as the strategy breaks them).
- agreement cascade (`cascade`: `draft_n` samples, escalate to adaptive self-consistency with
  N more unless they all agree): averaged over `PERMUTATIONS` random orders (needs M >=
  draft_n + N).

Answers are grouped by `normalize_answer` (exact after normalisation; math-verify's semantic
equivalence is not re-run on replay). Costs: the live price of the same calls: one call (one
prompt) per sampling round, and the expected completion tokens of the samples drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from router.calibrate.cache import Record
from router.calibrate.grid import ORACLE as ORACLE
from router.calibrate.grid import SCORE_VERIFIER as SCORE_VERIFIER
from router.calibrate.grid import GridConfig
from router.calibrate.grid import replay_grid as replay_grid  # defined with the other grids
from router.calibrate.samples import RecordedItem
from router.upstreams.base import Price
from strategies.answers import normalize_answer

EXACT_SUBSETS = 2_000
RANDOM_SUBSETS = 1_000
PERMUTATIONS = 64


@dataclass(frozen=True)
class Expectation:
    correct: float
    calls: float
    completion: float


class _Question:
    """One question's samples as arrays: answer group per sample (-1: no answer)."""

    def __init__(self, item: RecordedItem) -> None:
        keys: dict[tuple[str, bool], int] = {}
        gid = []
        for s in item.samples:
            if s.answer is None or not s.answer.strip():
                gid.append(-1)
            else:
                gid.append(keys.setdefault((normalize_answer(s.answer), s.correct), len(keys)))
        self.m = len(item.samples)
        self.gid = np.array(gid, dtype=np.int64)
        self.groups = len(keys)
        self.group_correct = np.zeros(max(1, self.groups))
        for (_, ok), g in keys.items():
            self.group_correct[g] = float(ok)
        self.onehot = np.zeros((self.m, max(1, self.groups)))
        for i, g in enumerate(gid):
            if g >= 0:
                self.onehot[i, g] = 1.0
        self.correct = np.array([s.correct for s in item.samples], dtype=float)
        self.tokens = np.array([s.tokens for s in item.samples], dtype=float)
        self.score = np.array([s.score or 0.0 for s in item.samples], dtype=float)
        self.greedy = next((i for i, s in enumerate(item.samples) if s.greedy), None)
        self.pooled = [i for i, s in enumerate(item.samples) if not s.greedy] \
            if self.greedy is not None and self.m > 1 else list(range(self.m))
        self._orders: np.ndarray | None = None
        self._majority: dict[int, float] = {}

    def orders(self, rng: np.random.Generator) -> np.ndarray:
        """`PERMUTATIONS` random draw orders of the pool (sample indices), drawn once and
        shared by every configuration: each prefix is a uniformly random ordered draw, so
        every estimate stays unbiased, and configurations are compared on the same draws."""
        if self._orders is None:
            pool = np.array(self.pooled)
            self._orders = pool[np.argsort(rng.random((PERMUTATIONS, len(pool))), axis=1)]
        return self._orders


_SUBSETS: dict[tuple[int, int], np.ndarray] = {}


def subsets(m: int, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Boolean rows, one per N-subset of M: every subset, or `RANDOM_SUBSETS` random ones.

    Both are computed once per (M, N) and shared by every question: a fixed random set of
    index subsets is still a uniform draw of subsets for each question (its samples are
    exchangeable), so each question's estimate is unbiased; the seed is (M, N), so a replay
    is reproducible whatever order the questions come in. `rng` is unused (kept for callers).
    """
    key = (m, n)
    if key not in _SUBSETS:
        if math.comb(m, n) <= EXACT_SUBSETS:
            rows = np.zeros((math.comb(m, n), m), dtype=bool)
            for r, combo in enumerate(combinations(range(m), n)):
                rows[r, list(combo)] = True
        else:
            draw = np.random.default_rng([m, n])
            order = np.argsort(draw.random((RANDOM_SUBSETS, m)), axis=1)[:, :n]
            rows = np.zeros((RANDOM_SUBSETS, m), dtype=bool)
            np.put_along_axis(rows, order, True, axis=1)
        _SUBSETS[key] = rows
    return _SUBSETS[key]


def _winner_credit(values: np.ndarray, valid: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Per row: the share of the top-valued entries (ties split evenly) that are good; 0 when
    no entry is valid."""
    masked = np.where(valid, values, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    tied = valid & (masked == top)
    n = tied.sum(axis=1)
    hits = (tied * good).sum(axis=1)
    return np.where(n > 0, hits / np.maximum(n, 1), 0.0)


def majority(q: _Question, rows: np.ndarray) -> float:
    counts = rows.astype(float) @ q.onehot[q.pooled]
    good = np.broadcast_to(q.group_correct, counts.shape)
    return float(_winner_credit(counts, counts > 0, good).mean())


def majority_at(q: _Question, n: int) -> float:
    """Majority vote of N draws from the pool (memoised: adaptive self-consistency shares it)."""
    if n not in q._majority:
        q._majority[n] = majority(q, subsets(len(q.pooled), n))
    return q._majority[n]


def best_by_score(q: _Question, rows: np.ndarray, weighted: bool) -> float:
    sub = rows  # columns: the pooled samples
    if weighted and q.groups:
        sums = (sub * q.score[q.pooled]) @ q.onehot[q.pooled]
        present = (sub.astype(float) @ q.onehot[q.pooled]) > 0
        good = np.broadcast_to(q.group_correct, sums.shape)
        credit = _winner_credit(sums, present, good)
        none = ~present.any(axis=1)
        if none.any():  # no answer in the subset: the best-scored sample (never correct)
            credit = np.where(none, 0.0, credit)
        return float(credit.mean())
    good = np.broadcast_to(q.correct[q.pooled], sub.shape)
    scores = np.broadcast_to(q.score[q.pooled], sub.shape)
    return float(_winner_credit(scores, sub, good).mean())


def pass_at(q: _Question, n: int) -> float:
    m = len(q.pooled)
    c = int(q.correct[q.pooled].sum())
    return 1.0 - math.comb(m - c, n) / math.comb(m, n)


def _decided(counts: np.ndarray, remaining: int) -> np.ndarray:
    """Per row: the leader cannot be caught by `remaining` more votes."""
    if counts.shape[1] == 1:
        return counts[:, 0] > remaining
    part = -np.sort(-counts, axis=1)
    return part[:, 0] > part[:, 1] + remaining


def _sc_run(q: _Question, perm: np.ndarray, n: int, rnd: int, confidence: float | None = None,
            min_samples: int = 3) -> tuple[np.ndarray, ...]:
    """Adaptive self-consistency over each row's draw order, as `strategies.self_consistency`
    runs it: (correct, samples drawn, rounds)."""
    rows = perm.shape[0]
    votes = q.onehot[perm]  # rows x n x groups
    cum = np.cumsum(votes, axis=1)
    drawn = np.full(rows, n)
    rounds = np.full(rows, math.ceil(n / rnd))
    open_ = np.ones(rows, dtype=bool)
    for r, end in enumerate(range(rnd, n + rnd, rnd)):
        end = min(end, n)
        counts = cum[:, end - 1, :]
        hit = open_ & _decided(counts, n - end)
        if confidence is not None and end >= min_samples:
            hit |= open_ & (counts.max(axis=1) > 0) & (counts.max(axis=1) / end >= confidence)
        drawn[hit], rounds[hit] = end, r + 1
        open_ &= ~hit
        if end == n:
            break
    final = cum[np.arange(rows), drawn - 1, :]
    top = final.max(axis=1, keepdims=True)
    tied = (final == top) & (final > 0)
    # ties: the first of the tied answers to appear wins
    first = np.full(rows, -1)
    order_g = q.gid[perm]
    for j in range(n - 1, -1, -1):
        g = order_g[:, j]
        ok = (g >= 0) & (j < drawn) & tied[np.arange(rows), np.maximum(g, 0)]
        first = np.where(ok, g, first)
    correct = np.where(first >= 0, q.group_correct[np.maximum(first, 0)], 0.0)
    return correct, drawn, rounds


def _perms(q: _Question, rng: np.random.Generator, length: int) -> np.ndarray:
    return q.orders(rng)[:, :length]


def adaptive_sc(q: _Question, n: int, rnd: int, rng: np.random.Generator,
                confidence: float | None = None, min_samples: int = 3) -> Expectation:
    """Without `confidence` the answer is the majority of N (exact); with it, the vote at the
    stop, averaged over draw orders."""
    perm = _perms(q, rng, n)
    correct, drawn, rounds = _sc_run(q, perm, n, rnd, confidence, min_samples)
    spent = np.cumsum(q.tokens[perm], axis=1)[np.arange(len(perm)), drawn - 1]
    acc = float(correct.mean()) if confidence is not None else majority_at(q, n)
    return Expectation(acc, float(rounds.mean()), float(spent.mean()))


def scored_stop(q: _Question, n: int, rnd: int, threshold: float | None, share: float | None,
                weighted: bool, rng: np.random.Generator, oracle: bool = False) -> Expectation:
    """Best-of-N by recorded score (`oracle`: by correctness) in rounds of `rnd`, stopping
    once the best score so far reaches `threshold` or the leading answer holds `share` of the
    summed scores, over each draw order, as `strategies.best_of_n` runs it."""
    perm = _perms(q, rng, n)
    rows = np.arange(len(perm))
    score = (q.correct if oracle else q.score)[perm]
    ends = [min(e, n) for e in range(rnd, n + rnd, rnd)]
    hit = np.zeros((len(perm), len(ends)), dtype=bool)
    if threshold is not None:
        best = np.maximum.accumulate(score, axis=1)
        hit |= np.stack([best[:, e - 1] >= threshold for e in ends], axis=1)
    if share is not None:
        sums = np.cumsum(score[:, :, None] * q.onehot[perm], axis=1)  # rows x n x groups
        total = np.cumsum(score, axis=1)
        for r, e in enumerate(ends):
            t = total[:, e - 1]
            lead = sums[:, e - 1, :].max(axis=1)
            hit[:, r] |= (t > 0) & (lead >= share * np.where(t > 0, t, 1.0) - 1e-12)
    stop = np.where(hit.any(axis=1), hit.argmax(axis=1), len(ends) - 1)
    drawn = np.array(ends)[stop]
    taken = np.arange(n)[None, :] < drawn[:, None]
    # plain: the first of the best-scored samples drawn (also the pick when none has an answer)
    first_best = np.where(taken, score, -np.inf).argmax(axis=1)
    correct = q.correct[perm][rows, first_best]
    if weighted and q.groups:
        votes = q.onehot[perm] * taken[:, :, None]  # rows x n x groups
        sums = np.einsum("rn,rng->rg", score, votes)
        present = votes.sum(axis=1) > 0
        # groups in order of first appearance; the first of the top-summed groups wins
        seen = np.where(votes > 0, np.arange(n)[None, :, None], n).min(axis=1)
        top = np.where(present, sums, -np.inf).max(axis=1, keepdims=True)
        tied = present & (sums >= top - 1e-12)
        winner = np.where(tied, seen, n + 1).argmin(axis=1)
        correct = np.where(present.any(axis=1), q.group_correct[winner], correct)
    spent = np.cumsum(q.tokens[perm], axis=1)[rows, drawn - 1]
    return Expectation(float(correct.mean()), float((stop + 1).mean()), float(spent.mean()))


def cascade(q: _Question, k: int, n: int, rnd: int, rng: np.random.Generator) -> Expectation:
    perm = _perms(q, rng, k + n)
    draft = q.gid[perm[:, :k]]
    agree = (draft >= 0).all(axis=1) & (draft == draft[:, :1]).all(axis=1)
    draft_ok = np.where(agree, q.group_correct[np.maximum(draft[:, 0], 0)], 0.0)
    esc_ok, drawn, rounds = _sc_run(q, perm[:, k:], n, rnd)
    esc_tokens = np.cumsum(q.tokens[perm[:, k:]], axis=1)[np.arange(len(perm)), drawn - 1]
    correct = np.where(agree, draft_ok, esc_ok)
    completion = q.tokens[perm[:, :k]].sum(axis=1) + np.where(agree, 0.0, esc_tokens)
    calls = 1 + np.where(agree, 0, rounds)
    return Expectation(float(correct.mean()), float(calls.mean()), float(completion.mean()))


def expectation(q: _Question, config: GridConfig, rng: np.random.Generator) -> Expectation | None:
    """The configuration's expected outcome on one question (None: not enough samples)."""
    p = config.params
    m = len(q.pooled)
    mean_t = float(q.tokens[q.pooled].mean())
    if config.strategy == "greedy":
        if q.greedy is not None:
            return Expectation(float(q.correct[q.greedy]), 1, float(q.tokens[q.greedy]))
        return Expectation(float(q.correct.mean()), 1, float(q.tokens.mean()))
    n = int(p.get("n", 8))
    if config.strategy == "cascade":
        draft = p["draft"]["params"]
        k = int(draft.get("n", 2))
        esc = p["escalate"]["params"]
        n = int(esc.get("n", 8))
        if k + n > m:
            return None
        return cascade(q, k, n, int(esc.get("round_size", 4)), rng)
    if n > m:
        return None
    if config.strategy == "self_consistency":
        if p.get("adaptive", True) is False:
            return Expectation(majority_at(q, n), 1, n * mean_t)
        conf = p.get("confidence")
        return adaptive_sc(q, n, int(p.get("round_size", 4)), rng,
                           None if conf is None else float(conf), int(p.get("min_samples", 3)))
    if config.strategy == "best_of_n":
        weighted = p.get("mode", "weighted") == "weighted"
        thr, share = p.get("stop_score"), p.get("stop_share")
        if thr is not None or share is not None:
            oracle = config.verifier == ORACLE
            e = scored_stop(q, n, int(p.get("round_size", 4)),
                            None if thr is None else float(thr),
                            None if share is None else float(share),
                            weighted and not oracle, rng, oracle)
            # stopping on a correct sample, the oracle finds one among the N whenever there is
            # one: pass@N exactly
            return Expectation(pass_at(q, n), e.calls, e.completion) \
                if oracle and share is None and thr is not None and thr > 0 else e
        if config.verifier == ORACLE:
            return Expectation(pass_at(q, n), 1, n * mean_t)
        return Expectation(best_by_score(q, subsets(m, n, rng), weighted), 1, n * mean_t)
    raise ValueError(f"{config.label}: cannot be replayed from independent samples")


def replayable(config: GridConfig) -> bool:
    if config.strategy in ("greedy", "self_consistency"):
        return config.verifier is None
    if config.strategy == "best_of_n":
        return config.verifier is not None
    if config.strategy == "cascade":
        p = config.params
        return all(isinstance(p.get(k), Mapping) and p[k].get("strategy") == "self_consistency"
                   for k in ("draft", "escalate")) and p.get("threshold") == 1.0
    return False


def replay(
    items: Sequence[RecordedItem],
    configs: Sequence[GridConfig],
    *,
    model: str,
    max_tokens: int,
    price: Price | None = None,
    seed: int = 0,
) -> tuple[list[Record], list[str]]:
    """One `Record` per (configuration, question) with expected correctness and cost; and
    notes (configurations some questions had too few samples for)."""
    price = price or Price()
    rng = np.random.default_rng(seed)
    keys = {c: c.key(model, max_tokens) for c in configs}
    out: list[Record] = []
    short: dict[str, int] = {}
    for item in items:
        q = _Question(item)
        key = item.eval_item().key
        good = int(q.correct.sum())
        for c in configs:
            e = expectation(q, c, rng)
            if e is None:
                short[c.label] = short.get(c.label, 0) + 1
                continue
            prompt = e.calls * item.prompt_tokens
            usd = (prompt * price.input_per_mtok + e.completion * price.output_per_mtok) / 1e6
            out.append(Record(
                config=keys[c], item=key, repeat=0, label=c.label, correct=e.correct,
                prompt_tokens=prompt, completion_tokens=e.completion, calls=e.calls, usd=usd,
                candidates=q.m, candidates_correct=good,
            ))
    notes = [f"{label}: {n} questions have too few samples (left out there)"
             for label, n in short.items()]
    return out, notes

