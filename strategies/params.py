"""Declarative parameter specs: one `check` for the policy loader, one `resolve` for `run`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.vocab.errors import PolicyError
from strategies.aggregate import AGGREGATIONS
from strategies.answers import ANSWER_FORMATS


@dataclass(frozen=True)
class Spec:
    kind: str  # "int" | "float" | "bool" | "str" | "str_list" | "mapping"
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "str_list":
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if kind == "mapping":
        return isinstance(value, Mapping)
    raise ValueError(f"unknown spec kind {kind!r}")


_KIND_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "str_list": "a list of strings",
    "mapping": "a mapping",
}


def check(params: Mapping[str, Any], specs: Mapping[str, Spec]) -> list[str]:
    """Human-readable problems: unknown keys (with the valid ones), wrong types, out of range."""
    errors: list[str] = []
    for key, value in params.items():
        spec = specs.get(key)
        if spec is None:
            errors.append(f"unknown parameter {key!r} (valid: {', '.join(sorted(specs))})")
            continue
        if value is None and spec.default is None:
            continue
        if not _type_ok(spec.kind, value):
            errors.append(f"{key} must be {_KIND_WORDS[spec.kind]}, got {value!r}")
            continue
        if spec.lo is not None and value < spec.lo:
            errors.append(f"{key} must be >= {spec.lo:g}, got {value!r}")
        if spec.hi is not None and value > spec.hi:
            errors.append(f"{key} must be <= {spec.hi:g}, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            errors.append(f"{key} must be one of {', '.join(spec.choices)}, got {value!r}")
    return errors


def resolve(params: Mapping[str, Any], specs: Mapping[str, Spec]) -> dict[str, Any]:
    """Params with defaults filled in. Raises `PolicyError` on invalid params (the loader
    should have refused them already)."""
    errors = check(params, specs)
    if errors:
        raise PolicyError("invalid strategy parameters: " + "; ".join(errors))
    out = {k: s.default for k, s in specs.items()}
    out.update({k: v for k, v in params.items() if v is not None})
    return out


COMMON: dict[str, Spec] = {
    "temperature": Spec("float", 0.7, 0.0, 2.0),
    "max_tokens": Spec("int", None, 1, 1_000_000),  # per sample; capped by the budget's
    "stop": Spec("str_list", ()),
    "seed": Spec("int", None),
    "trace": Spec("bool", False),
    "answer_format": Spec("str", None, choices=ANSWER_FORMATS),  # default: the problem's
}

STEP: dict[str, Spec] = {
    "step_delimiter": Spec("str", "\n\n"),
    "max_depth": Spec("int", 8, 1, 256),
    "step_max_tokens": Spec("int", 256, 1, 100_000),
    "aggregation": Spec("str", "min", choices=AGGREGATIONS),
    "reject_below": Spec("float", None, 0.0, 1.0),  # speculative rejection threshold
    "reject_after": Spec("int", 1, 1, 256),  # ... applied from this depth on
    "terminal": Spec("str", "answer", choices=("answer", "stop")),
}
