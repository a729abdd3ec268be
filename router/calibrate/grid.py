"""The grid of configurations to evaluate: strategies x parameter values x verifiers.

A grid file (YAML) lists configurations; a list value expands into one configuration per value
(the cartesian product over every list-valued parameter):

    configs:
      - strategy: greedy
        params: {temperature: 0.0}
      - strategy: self_consistency
        params: {n: [4, 8, 16]}
      - strategy: best_of_n
        params: {n: [4, 16], mode: plain}
        verifier: code_tests          # a policy verifier name, or an outcome-checker kind

On the command line the same thing is `--config "best_of_n n=4,16 mode=plain verifier=code_tests"`.

`verifier` names a verifier of the policy, or one of the outcome-checker kinds that need no model
(`math_reference`, `code_tests`), built with default options. `math_reference` checks against
the evaluation file's reference answers, which live traffic does not carry: a policy that keeps
it needs requests that bring a reference.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INLINE_VERIFIERS = ("math_reference", "code_tests")
ORACLE_VERIFIERS = ("math_reference",)  # they compare with the reference answer: pass@N
STOP_SCORES = (0.8, 0.9)  # best-of-N's early-stop thresholds in the replay grid (default: first)
STOP_ROUND = 2  # best-of-N's early-stop round size in the grids (the cascade's draft size)
SCORE_VERIFIER = "recorded_score"  # replay: best-of-N selects by the samples' recorded score
ORACLE = "math_reference"  # checks against the reference: pass@N, the ceiling


class GridError(ValueError):
    """A malformed grid (file or `--config` spec)."""


@dataclass(frozen=True)
class GridConfig:
    strategy: str
    params_json: str  # canonical JSON of the params (frozen, hashable)
    verifier: str | None = None

    @classmethod
    def make(
        cls, strategy: str, params: Mapping[str, Any] | None = None, verifier: str | None = None
    ) -> GridConfig:
        return cls(strategy, json.dumps(dict(params or {}), sort_keys=True), verifier)

    @property
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.params_json)
        return out

    @property
    def label(self) -> str:
        """`best_of_n(n=4,mode=plain)+code_tests`: short, unique within a grid."""
        inner = ",".join(
            f"{k}={_short(v)}" for k, v in self.params.items()
            if k not in ("stop", "answer_format")
        )
        text = f"{self.strategy}({inner})" if inner else self.strategy
        return f"{text}+{self.verifier}" if self.verifier else text

    @property
    def samples_hint(self) -> int:
        """N for plots (1 when the strategy has no `n`)."""
        params = self.params
        if self.strategy == "cascade":  # the escalation's N
            params = params.get("escalate", {}).get("params", {})
        for key in ("n", "simulations", "width", "budget_tokens"):
            value = params.get(key)
            if isinstance(value, int):
                return value
        return 1

    def key(self, model: str, max_tokens: int) -> str:
        """Cache key: everything that changes the outcome of a run."""
        canonical = json.dumps(
            [self.strategy, self.params, self.verifier, model, max_tokens], sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _short(value: Any) -> str:
    """A cascade stage `{strategy: self_consistency, params: {n: 2}}` as `self_consistency:2`."""
    if isinstance(value, dict) and "strategy" in value:
        n = (value.get("params") or {}).get("n")
        return f"{value['strategy']}:{n}" if n is not None else str(value["strategy"])
    return str(value)


def expand(
    strategy: str, params: Mapping[str, Any], verifier: str | None = None
) -> list[GridConfig]:
    """One configuration per combination of list-valued parameters (except `stop`)."""
    fixed = {k: v for k, v in params.items() if not isinstance(v, list) or k == "stop"}
    varying = {k: v for k, v in params.items() if k not in fixed}
    if any(not v for v in varying.values()):
        raise GridError(f"{strategy}: empty list of values")
    keys = list(varying)
    out = []
    for combo in itertools.product(*(varying[k] for k in keys)):
        out.append(GridConfig.make(strategy, {**fixed, **dict(zip(keys, combo, strict=True))},
                                   verifier))
    return out


def _entry(raw: Any, where: str) -> list[GridConfig]:
    if not isinstance(raw, dict) or not isinstance(raw.get("strategy"), str):
        raise GridError(f"{where}: each configuration needs a 'strategy' name")
    unknown = set(raw) - {"strategy", "params", "verifier"}
    if unknown:
        raise GridError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise GridError(f"{where}: 'params' must be a mapping")
    verifier = raw.get("verifier")
    if verifier is not None and not isinstance(verifier, str):
        raise GridError(f"{where}: 'verifier' must be a name")
    return expand(raw["strategy"], params, verifier)


def parse_grid(text: str, source: str = "<grid>") -> list[GridConfig]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GridError(f"{source}: invalid YAML ({' '.join(str(exc).split())})") from None
    entries = raw.get("configs") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise GridError(f"{source}: expected a non-empty list under 'configs'")
    return dedupe(c for i, e in enumerate(entries) for c in _entry(e, f"{source}: configs[{i}]"))


def load_grid(path: Path) -> list[GridConfig]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError(f"{path}: cannot read ({exc})") from None
    return parse_grid(text, str(path))


def _scalar(value: str) -> Any:
    parsed = yaml.safe_load(value)
    return value if isinstance(parsed, dict | list) or parsed is None else parsed


def parse_spec(spec: str) -> list[GridConfig]:
    """`"best_of_n n=2,4,8 mode=plain verifier=math_reference"` -> three configurations."""
    parts = spec.split()
    if not parts or "=" in parts[0]:
        raise GridError(f"{spec!r}: start with a strategy name")
    params: dict[str, Any] = {}
    verifier = None
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise GridError(f"{spec!r}: expected key=value, got {part!r}")
        if key == "verifier":
            verifier = value
            continue
        values = [_scalar(v) for v in value.split(",")]
        params[key] = values if len(values) > 1 else values[0]
    return expand(parts[0], params, verifier)


def dedupe(configs: Iterable[GridConfig]) -> list[GridConfig]:
    return list(dict.fromkeys(configs))


def is_oracle(config: GridConfig) -> bool:
    """Selection that peeks at the reference answer (pass@N): a ceiling, not a serve-time
    strategy, unless requests bring their reference."""
    return config.verifier in ORACLE_VERIFIERS


def is_posterior(config: GridConfig) -> bool:
    """Allocation by evidence: compute depends on what the first samples say (self-consistency
    that stops once the vote is decided, best-of-N that stops once a verifier score passes, a
    cascade that escalates on disagreement)."""
    if config.strategy == "self_consistency":
        return config.params.get("adaptive", True) is not False
    if config.strategy == "best_of_n":  # stops on the verifier's scores
        p = config.params
        staged = p.get("stop_score") is not None or p.get("stop_share") is not None
        return staged and config.verifier is not None
    return config.strategy == "cascade"


def family(config: GridConfig) -> str:
    """The curve a configuration belongs to in reports (its budgets are the points)."""
    p = config.params
    if config.strategy == "self_consistency":
        name = "self-consistency, adaptive stop" if is_posterior(config) else "majority vote"
        if is_posterior(config) and p.get("confidence") is not None:
            name = f"self-consistency, stop at {p['confidence']:g} agreement"
    elif config.strategy == "best_of_n":
        name = f"best-of-N {p.get('mode', 'weighted')}"
        if is_posterior(config):
            stops = [f"score {p['stop_score']:g}"] if p.get("stop_score") is not None else []
            if p.get("stop_share") is not None:
                stops.append(f"{p['stop_share']:g} of the score")
            name += ", stop at " + " or ".join(stops)
    elif config.strategy == "cascade":
        draft = p.get("draft", {}).get("params", {}).get("n", 1)
        name = f"agreement cascade (draft {draft})"
    elif config.strategy == "thinking":
        name = "thinking budget"
    else:
        name = config.strategy
    if config.verifier:
        name += f" + {config.verifier}"
    return f"{name} (oracle)" if is_oracle(config) else name


def agreement_cascade(draft_n: int, escalate_n: int, **sampling: Any) -> GridConfig:
    """Cheap first, escalate on disagreement: `draft_n` samples by majority vote; unless all
    of them agree, adaptive-stop self-consistency with `escalate_n` samples."""
    draft = {"n": draft_n, "adaptive": False, **sampling}
    escalate = {"n": escalate_n, **sampling}
    params: dict[str, Any] = {
        "draft": {"strategy": "self_consistency", "params": draft},
        "escalate": {"strategy": "self_consistency", "params": escalate},
        "threshold": 1.0,
    }
    return GridConfig.make("cascade", params)


def thinking_grid(budgets: Sequence[int]) -> list[GridConfig]:
    return expand("thinking", {"budget_tokens": list(budgets)}) if budgets else []


def default_grid(verifiers: Sequence[str] = (), thinking: Sequence[int] = ()) -> list[GridConfig]:
    """Greedy; self-consistency (adaptive stop) at N = 4, 8, 16, and at N = 8, 16 stopping
    once 75% of the votes agree; the agreement cascade (2 samples, escalate to 8 or 16); per
    named verifier, best-of-N at N = 4, 8, 16, and at N = 8, 16 stopping once a score reaches
    0.8 (rounds of 2); and, when given, one thinking configuration per budget."""
    out = [GridConfig.make("greedy", {"temperature": 0.0})]
    out += expand("self_consistency", {"n": [4, 8, 16]})
    out += expand("self_consistency", {"n": [8, 16], "confidence": 0.75})
    out += [agreement_cascade(2, 8), agreement_cascade(2, 16)]
    for name in verifiers:
        out += expand("best_of_n", {"n": [4, 8, 16], "mode": "plain"}, name)
        out += expand("best_of_n", {"n": [8, 16], "mode": "plain", "stop_score": STOP_SCORES[0],
                                    "round_size": STOP_ROUND}, name)
    out += thinking_grid(thinking)
    return dedupe(out)


def replay_grid(max_n: int, scores: bool, score_verifier: str = SCORE_VERIFIER
                ) -> list[GridConfig]:
    """Everything `calibrate --samples` can replay (router/calibrate/replay.py) at N = 2, 4,
    8, ... up to `max_n` samples."""
    ns = [n for n in (2, 4, 8, 16, 32, 64) if n <= max_n]
    out = [GridConfig.make("greedy", {"temperature": 0.0})]
    out += expand("self_consistency", {"n": ns, "adaptive": False}) if ns else []
    if big := [n for n in ns if n >= 4]:
        out += expand("self_consistency", {"n": big})
    if bigger := [n for n in ns if n >= 8]:
        out += expand("self_consistency", {"n": bigger, "confidence": 0.75})
    out += [agreement_cascade(2, n) for n in ns if n >= 4 and 2 + n <= max_n]
    if scores and ns:
        out += expand("best_of_n", {"n": ns, "mode": ["plain", "weighted"]}, score_verifier)
        if big:  # posterior: stop once a recorded score passes the threshold
            out += expand("best_of_n", {"n": big, "mode": ["plain", "weighted"],
                                        "stop_score": list(STOP_SCORES),
                                        "round_size": STOP_ROUND}, score_verifier)
    out += expand("best_of_n", {"n": [1, *ns], "mode": "plain"}, ORACLE)
    return out
