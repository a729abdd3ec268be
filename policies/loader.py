"""Load and validate a policy: YAML -> strict schema -> cross-reference checks -> revision.

Every problem is reported at once, each as ``yaml.path: reason``. Structural problems
(pydantic) and cross-reference problems (registries, references between sections) are both
collected; cross-references are checked for every section that is itself well formed.

The revision is the SHA-256 (first 16 hex digits) of the normalised policy: the validated
model dumped as canonical JSON, so comments, key order and formatting do not change it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from classifier.base import TIERS
from policies.overrides import check_overrides
from policies.schema import BudgetPolicy, ModelSpec, Policy, TierPolicy, VerifierSpec
from policies.verification import verification_problems
from router.vocab.anthropic_limits import tier_problems
from router.vocab.errors import PolicyError
from router.vocab.upstream import Capabilities
from strategies import REGISTRY, VERIFIERS, check_strategy, check_verifier_options, stages_of

MAX_POLICY_BYTES = 1_000_000
MAX_YAML_NODES = 200_000  # after alias expansion ("billion laughs" guard)


class PolicyValidationError(PolicyError):
    """A policy that cannot be served. `errors` holds every problem, ``path: reason``."""

    status = 400

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        self.source = source
        listing = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"invalid policy {source}: {len(self.errors)} error(s)\n{listing}")


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    revision: str
    source: str
    loaded_at: float = field(default=0.0, compare=False)


def _fmt_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = _fmt_loc(err["loc"])
        path = f"{prefix}.{loc}" if prefix and err["loc"] else (prefix or loc)
        errors.append(f"{path}: {err['msg']}")
    return errors


def _check_size(data: object) -> str | None:
    """Reject alias cycles and alias bombs before anything walks the structure."""
    budget = MAX_YAML_NODES
    on_path: set[int] = set()

    def walk(node: object) -> str | None:
        nonlocal budget
        budget -= 1
        if budget < 0:
            return f"policy too large: more than {MAX_YAML_NODES} nodes after alias expansion"
        if isinstance(node, dict | list):
            if id(node) in on_path:
                return "cyclic YAML alias"
            on_path.add(id(node))
            children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
            for child in children:
                if (problem := walk(child)) is not None:
                    return problem
            on_path.discard(id(node))
        return None

    return walk(data)


def _strategy_registry() -> Mapping[str, Any]:
    return REGISTRY


def _verifier_problems(spec: VerifierSpec) -> tuple[list[str] | None, list[str]]:
    """(problems with the options or None for an unknown kind, policy models it calls).

    `spec.model` is the default of `options.model`, as the pipeline builds it."""
    factory = VERIFIERS.get(spec.kind)
    if factory is None:
        return None, []
    options = dict(spec.options)
    if spec.model is not None:
        options.setdefault("model", spec.model)
    return list(check_verifier_options(spec.kind, options)), factory.models(options)


def _verifier_kinds() -> list[str]:
    return sorted(VERIFIERS)


def _partial(raw: Mapping[str, Any], key: str, adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """Entries of section `key` that are individually valid (for cross-checks on bad files)."""
    section = raw.get(key)
    if not isinstance(section, dict):
        return {}
    good: dict[str, Any] = {}
    for name, value in section.items():
        try:
            good[str(name)] = adapter.validate_python(value)
        except ValidationError:
            continue
    return good


def _cross_check(
    models: Mapping[str, ModelSpec],
    verifiers: Mapping[str, VerifierSpec],
    tiers: Mapping[str, TierPolicy],
    raw: Mapping[str, Any],
    policy: Policy | None,
) -> list[str]:
    errors: list[str] = []
    model_names = ", ".join(sorted(models)) or "(none)"
    for name, spec in verifiers.items():
        problems, calls = _verifier_problems(spec)
        if problems is None:
            kinds = ", ".join(_verifier_kinds())
            errors.append(f"verifiers.{name}.kind: unknown verifier {spec.kind!r}; valid: {kinds}")
            continue
        errors.extend(f"verifiers.{name}.options: {p}" for p in problems)
        for model in calls:
            if model not in _section_names(raw, "models"):
                where = "model" if spec.model == model else "options.model"
                errors.append(
                    f"verifiers.{name}.{where}: unknown model {model!r}; defined: {model_names}"
                )
    if isinstance(raw.get("tiers"), dict):
        missing = [t.value for t in TIERS if t.value not in {str(k) for k in raw["tiers"]}]
        if missing:
            errors.append(f"tiers: missing tier(s) {', '.join(missing)}; all of "
                          f"{', '.join(t.value for t in TIERS)} must be defined")
    for tier, tp in tiers.items():
        errors.extend(_tier_problems(f"tiers.{tier}", tp, models, raw))
    errors.extend(_ttl_problems(raw, tiers))
    if policy is not None:
        errors.extend(_policy_checks(policy, model_names))
    return errors


def _tier_problems(
    path: str, tp: TierPolicy, models: Mapping[str, ModelSpec], raw: Mapping[str, Any]
) -> list[str]:
    errors: list[str] = []
    registry = _strategy_registry()
    strategy = registry.get(tp.strategy)
    defined = ", ".join(sorted(models)) or "(none)"
    if tp.model not in _section_names(raw, "models"):
        errors.append(f"{path}.model: unknown model {tp.model!r}; defined: {defined}")
    verifiers = _section_names(raw, "verifiers")
    if tp.verifier is not None and tp.verifier not in verifiers:
        errors.append(f"{path}.verifier: unknown verifier {tp.verifier!r}; "
                      f"defined: {', '.join(sorted(verifiers)) or '(none)'}")
    if strategy is None:
        valid = ", ".join(sorted(registry))
        return [*errors, f"{path}.strategy: unknown strategy {tp.strategy!r}; valid: {valid}"]
    try:
        param_errors = list(strategy.check_params(tp.params))
    except Exception as exc:  # a strategy's checker must not crash the loader
        param_errors = [f"cannot be checked ({type(exc).__name__}: {exc})"]
    if param_errors:
        return errors + [f"{path}.params: {e}" for e in param_errors]
    if tp.model not in models:
        return errors  # its capabilities are unknown: already reported

    def capabilities_for(name: str | None) -> Capabilities | None:
        spec = models.get(tp.model if name is None else name)
        return None if spec is None else spec.capabilities.to_capabilities()

    try:
        problems = check_strategy(registry, tp.strategy, tp.params, capabilities_for,
                                  has_verifier=tp.verifier is not None)
    except Exception as exc:
        problems = [f"cannot be checked ({type(exc).__name__}: {exc})"]
    errors += _provider_problems(path, tp, models, strategy)
    errors += verification_problems(path, tp, models, raw, capabilities_for)
    return errors + [f"{path}.strategy: {p}" for p in problems]


def _ttl_problems(raw: Mapping[str, Any], tiers: Mapping[str, TierPolicy]) -> list[str]:
    """Reservations must outlive every tier's deadline; checked on the well-formed parts, so
    it is reported together with other problems of the file."""
    section = raw.get("budgets", {})
    try:
        budgets = BudgetPolicy.model_validate({} if section is None else section)
    except ValidationError:
        return []  # reported by the schema
    longest = max((t.deadline_s for t in tiers.values()), default=0.0)
    if budgets.reservation_ttl_s > longest:
        return []
    return [f"budgets.reservation_ttl_s: {budgets.reservation_ttl_s}s must exceed the longest "
            f"tier deadline ({longest:g}s), or reservations expire mid-run"]


def _provider_problems(
    path: str, tp: TierPolicy, models: Mapping[str, ModelSpec], strategy: Any
) -> list[str]:
    """The hosted API's own limits (Anthropic) for the tier and each stage of a composite
    strategy (cascade, decompose)."""
    stages: list[tuple[str, Any, Mapping[str, Any], str | None]] = [
        ("", strategy, tp.params, None)
    ]
    stages += [(f"params.{s.label}.", s.strategy, s.params, s.model)
               for s in stages_of(strategy, tp.params) if s.strategy is not strategy]
    errors = []
    for prefix, sub, params, model in stages:
        spec = models.get(model or tp.model)
        if spec is None or spec.provider != "anthropic":
            continue
        for where, reason in tier_problems(sub.name, sub.step_level, params, tp.max_tokens):
            field = where if where == "max_tokens" else prefix + where
            errors.append(f"{path}.{field}: {reason}")
    return errors


def _section_names(raw: Mapping[str, Any], key: str) -> set[str]:
    section = raw.get(key)
    return {str(k) for k in section} if isinstance(section, dict) else set()


def _policy_checks(policy: Policy, model_names: str) -> list[str]:
    errors: list[str] = []
    fallback = policy.classifier.fallback_model
    if fallback is not None and fallback not in policy.models:
        errors.append(
            f"classifier.fallback_model: unknown model {fallback!r}; defined: {model_names}"
        )
    owners: dict[str, str] = {}
    for name, tenant in policy.tenants.items():
        for i, digest in enumerate(tenant.api_key_sha256):
            if digest in owners:
                errors.append(f"tenants.{name}.api_key_sha256[{i}]: key already belongs to "
                              f"tenant {owners[digest]!r}")
            owners.setdefault(digest, name)
    if len(set(policy.logical_models)) != len(policy.logical_models):
        errors.append("logical_models: duplicate names")
    errors.extend(check_overrides(policy))
    return errors


def revision_of(policy: Policy) -> str:
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    """PyYAML's message naming `source` (not "<unicode string>"), its snippet lines kept."""
    if isinstance(exc, yaml.MarkedYAMLError):
        for mark in (exc.context_mark, exc.problem_mark):
            if mark is not None:
                mark.name = source
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "\n    ".join(lines)


def parse_policy(text: str, source: str = "<string>") -> LoadedPolicy:
    """Parse and validate policy YAML; raises `PolicyValidationError` with every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyValidationError(source, [f"(file): larger than {MAX_POLICY_BYTES} bytes"])
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyValidationError(source, [f"(yaml): {_yaml_problem(exc, source)}"]) from None
    except RecursionError:
        raise PolicyValidationError(source, ["(yaml): nested too deeply"]) from None
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        raise PolicyValidationError(source, [f"(top level): expected a mapping, got {kind}"])
    if (problem := _check_size(raw)) is not None:
        raise PolicyValidationError(source, [f"(yaml): {problem}"])
    errors: list[str] = []
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(exc))
    except RecursionError:
        raise PolicyValidationError(source, ["(yaml): nested too deeply"]) from None
    if policy is not None:
        models: Mapping[str, ModelSpec] = policy.models
        verifiers: Mapping[str, VerifierSpec] = policy.verifiers
        tiers: Mapping[str, TierPolicy] = {t.value: tp for t, tp in policy.tiers.items()}
    else:
        models = _partial(raw, "models", TypeAdapter(ModelSpec))
        verifiers = _partial(raw, "verifiers", TypeAdapter(VerifierSpec))
        tiers = {k: v for k, v in _partial(raw, "tiers", TypeAdapter(TierPolicy)).items()
                 if k in {t.value for t in TIERS}}
    errors.extend(_cross_check(models, verifiers, tiers, raw, policy))
    if errors or policy is None:
        raise PolicyValidationError(source, errors)
    return LoadedPolicy(policy, revision_of(policy), source, loaded_at=time.time())


def load_policy(path: Path | None = None) -> LoadedPolicy:
    """Load a policy file; None = the packaged `policies/default.yaml`."""
    if path is None:
        text = (Path(__file__).parent / "default.yaml").read_text("utf-8")
        return parse_policy(text, "packaged:policies/default.yaml")
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyValidationError(str(path), [f"(file): cannot read: {exc}"]) from None
    return parse_policy(text, str(path))


__all__ = [
    "LoadedPolicy",
    "PolicyValidationError",
    "load_policy",
    "parse_policy",
    "revision_of",
]
