"""Monte Carlo tree search over reasoning steps.

Each simulation: **selection** from the root, taking an unvisited child first (in generation
order) and otherwise the child maximising UCB1, `mean + c * sqrt(ln(N_parent) / n_child)`;
**expansion** of the reached leaf, once it has been visited, with `branching` next steps in one
call (all children are scored by the verifier in one call at creation: a PRM on the partial
chain aggregated by `aggregation`, or a rollout value when the verifier is `rollout`);
**evaluation**: the first new child's score (a node reached unvisited backs up its creation
score and is expanded on its next visit); **backpropagation** of that value to every node on
the path (visits + 1, value_sum + v). Terminal nodes (final-answer marker, end of sequence,
`max_depth`) are not expanded; selecting one backs its value up again.

Speculative rejection: a new child scoring under `reject_below` (after `reject_after` steps)
never enters the tree. A node whose continuations are all rejected is a dead end (it backs up
the best rejected score once and is never selected again), and so is a parent whose children
are all dead ends; when the root is one, the search stops.

The answer is the terminal node with the best mean value, ties broken by visit count; terminals
never visited fall back to their own score. With no terminal at all, the most visited path is
completed with one unrestricted continuation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies.aggregate import aggregate
from strategies.answers import extract_answer
from strategies.base import Budget, Candidate, Generator, Problem, Result, Verifier
from strategies.params import COMMON, STEP, Spec, check, resolve
from strategies.runtime import OutOfBudget, RunContext
from strategies.steps import Chain, expand, need_verifier, rejected, score_chains

SPECS: dict[str, Spec] = {
    **COMMON,
    **STEP,
    "simulations": Spec("int", 16, 1, 10_000),
    "branching": Spec("int", 3, 1, 64),
    "exploration": Spec("float", math.sqrt(2), 0.0, 100.0),
}


@dataclass(eq=False)
class Node:
    chain: Chain
    id: int
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    expanded: bool = False
    dead: bool = False  # every continuation was rejected (`reject_below`): never selected

    @property
    def mean(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def terminal(self) -> bool:
        return self.chain.done

    def ucb(self, c: float) -> float:
        assert self.parent is not None
        if self.visits == 0:
            return math.inf
        return self.mean + c * math.sqrt(math.log(max(self.parent.visits, 1)) / self.visits)

    def tree(self) -> dict[str, Any]:
        last = self.chain.steps[-1] if self.chain.steps else ""
        return {
            "id": self.id,
            "step": last[:80],
            "visits": self.visits,
            "mean": round(self.mean, 4),
            "score": round(self.chain.value, 4),
            "terminal": self.terminal,
            "children": [c.tree() for c in self.children],
        }


def select(root: Node, c: float) -> list[Node]:
    """Path from the root to a leaf: unvisited children first, then UCB1 (first max wins)."""
    path = [root]
    node = root
    while node.expanded and node.children and not node.terminal:
        live = [ch for ch in node.children if not ch.dead]
        if not live:
            break
        unvisited = [ch for ch in live if ch.visits == 0]
        node = unvisited[0] if unvisited else max(live, key=lambda ch: ch.ucb(c))
        path.append(node)
    return path


def mark_dead(node: Node) -> None:
    """`node` has no continuation left; neither has any ancestor whose children are all dead."""
    current: Node | None = node
    while current is not None and (current is node or all(ch.dead for ch in current.children)):
        current.dead = True
        current = current.parent


def backpropagate(path: list[Node], value: float) -> None:
    for node in path:
        node.visits += 1
        node.value_sum += value


def walk(root: Node) -> list[Node]:
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def best_terminal(root: Node) -> Node | None:
    terminals = [n for n in walk(root) if n.terminal and n is not root]
    visited = [n for n in terminals if n.visits > 0]
    if visited:
        return max(visited, key=lambda n: (n.mean, n.visits))
    return max(terminals, key=lambda n: n.chain.value) if terminals else None


class MCTS:
    name = "mcts"
    step_level = True
    requires_verifier = True

    def check_params(self, params: Mapping[str, Any]) -> list[str]:
        return check(params, SPECS)

    def max_samples(self, params: Mapping[str, Any]) -> int:
        g = {**{k: s.default for k, s in SPECS.items()}, **params}
        return int(g["simulations"]) * int(g["branching"]) + 1

    async def run(
        self,
        problem: Problem,
        generator: Generator,
        verifier: Verifier | None,
        params: Mapping[str, Any],
        budget: Budget,
    ) -> Result:
        p = resolve(params, SPECS)
        v = need_verifier(self.name, verifier)
        ctx = RunContext(self.name, budget, p, problem)
        ids = iter(range(1_000_000))
        root = Node(Chain(), next(ids))
        sims = 0
        pruned: list[Chain] = []
        try:
            for sims in range(1, p["simulations"] + 1):
                path = select(root, p["exploration"])
                leaf = path[-1]
                # a new node was scored at creation: its first visit backs that score up;
                # it is expanded on the visit after
                fresh = leaf.visits == 0 and leaf is not root
                value = leaf.chain.value
                if not leaf.terminal and not leaf.expanded and not fresh:
                    chains = await expand(ctx, generator, p, leaf.chain, p["branching"])
                    chains = await score_chains(ctx, v, chains, p["aggregation"])
                    kept = [ch for ch in chains if not rejected(ch, p)]  # speculative rejection
                    pruned += [ch for ch in chains if rejected(ch, p)]
                    leaf.children = [Node(ch, next(ids), leaf) for ch in kept]
                    leaf.expanded = True
                    if leaf.children:
                        leaf = leaf.children[0]
                        path.append(leaf)
                        value = leaf.chain.value
                    elif chains:  # every continuation rejected: a dead end
                        mark_dead(leaf)
                        value = max(ch.value for ch in chains)
                backpropagate(path, value)
                ctx.note(
                    kind="simulation", n=sims, path=[n.id for n in path], value=round(value, 4)
                )
                if root.dead:  # every branch rejected: nothing left to search
                    break
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
        best = best_terminal(root)
        if best is None and not ctx.stopped:
            best = await self._complete(ctx, generator, v, p, root)
        nodes = [n for n in walk(root) if n is not root]
        candidates = [self._candidate(n, ctx.fmt) for n in nodes if n.terminal]
        if best is None and nodes:  # cut by the budget before any terminal: best partial chain
            best = max(nodes, key=lambda n: (n.mean, n.visits))
        chosen = self._candidate(best, ctx.fmt) if best else None
        if chosen is None and pruned:  # everything was rejected: the best of it, flagged
            chosen = max(pruned, key=lambda ch: ch.value).candidate(ctx.fmt)
        notes = [f"{sims} simulations, {len(nodes)} nodes"]
        if pruned:
            notes.append(f"{len(pruned)} continuation(s) rejected below {p['reject_below']}")
        return ctx.result(
            chosen,
            candidates or ([chosen] if chosen else []),
            tree=root.tree(),
            notes=notes,
        )

    @staticmethod
    def _candidate(node: Node, fmt: str) -> Candidate:
        c = node.chain.candidate(fmt)
        score = node.mean if node.visits else node.chain.value
        return Candidate(c.text, c.answer, score, c.tokens, c.steps, c.step_scores)

    async def _complete(
        self, ctx: RunContext, generator: Generator, v: Verifier, p: dict[str, Any], root: Node
    ) -> Node | None:
        node = root
        while node.children:
            node = max(node.children, key=lambda n: (n.visits, n.mean))
        if node is root:
            return None
        left = ctx.answer_tokens_left(node.chain.tokens)  # the client's max_tokens
        if left is not None and left <= 0:
            return node
        try:
            batch = await ctx.extend(
                generator,
                node.chain.text,
                1,
                temperature=p["temperature"],
                max_tokens=ctx.sample_tokens if left is None else min(ctx.sample_tokens, left),
                stop=tuple(p["stop"]),
            )
            s = batch.samples[0]
            steps = (*node.chain.steps, s.text) if s.text else node.chain.steps
            raw = await ctx.score(v, [steps])
            chain = Chain(
                steps,
                tuple(raw[0]),
                aggregate(raw[0], p["aggregation"]),
                True,
                node.chain.tokens + s.tokens,
            )
        except OutOfBudget as exc:
            ctx.stopped = exc.reason
            return node
        done = Node(chain, -1, node)
        ctx.note(kind="completed", answer=extract_answer(chain.text, ctx.fmt))
        return done
