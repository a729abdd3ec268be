"""Policy documents for tests: a small valid base to mutate, and a priced ladder of tiers."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import yaml

from policies.loader import LoadedPolicy, parse_policy


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def base_doc() -> dict[str, Any]:
    """Valid: one chat model, one completions model, greedy .. beam search."""
    return copy.deepcopy({
        "models": {
            "chat": {"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "c",
                     "api_key_env": "CHAT_KEY", "capabilities": {"chat": True, "n": True},
                     "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
            "raw": {"provider": "local", "model": "r",
                    "capabilities": {"chat": False, "completions": True, "n": True}},
        },
        "verifiers": {"roll": {"kind": "rollout", "options": {"model": "raw", "k": 2}}},
        "tiers": {
            "easy": {"strategy": "greedy", "model": "chat", "max_tokens": 64, "deadline_s": 5},
            "medium": {"strategy": "self_consistency", "params": {"n": 3}, "model": "chat",
                       "max_tokens": 64, "deadline_s": 5},
            "hard": {"strategy": "best_of_n", "params": {"n": 4}, "model": "chat",
                     "max_tokens": 64, "deadline_s": 5},
            "very_hard": {"strategy": "beam_search",
                          "params": {"width": 2, "expansions": 2, "max_depth": 3},
                          "model": "raw", "verifier": "roll", "max_tokens": 32,
                          "deadline_s": 10},
        },
        "tenants": {
            "acme": {"api_key_sha256": [sha("sk-acme")], "daily_usd": 1.0,
                     "max_tier": "hard", "tier_remap": {"easy": "medium"},
                     "allow_tier_hint": True},
            "beta": {"api_key_sha256": [sha("sk-beta")], "monthly_tokens": 100000},
        },
    })


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def load_doc(doc: dict[str, Any]) -> LoadedPolicy:
    return parse_policy(dump(doc), "test.yaml")


def ladder_doc(on_exceeded: str = "downgrade", **tenant: Any) -> dict[str, Any]:
    """Greedy on every tier, output $1/Mtok: worst cases 1e-5, 1e-4, 1e-3, 1e-2 USD at
    prompt 0 (10, 100, 1000, 10000 tokens)."""
    model = {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
             "price": {"input_per_mtok": 0.0, "output_per_mtok": 1.0}}
    tiers = {name: {"strategy": "greedy", "model": "m", "max_tokens": 10 ** (i + 1),
                    "deadline_s": 5}
             for i, name in enumerate(("easy", "medium", "hard", "very_hard"))}
    return {"models": {"m": model}, "tiers": tiers,
            "budgets": {"on_exceeded": on_exceeded, "reservation_ttl_s": 60},
            "tenants": {"t": tenant}}
