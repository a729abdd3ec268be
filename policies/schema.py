"""The policy schema: strict pydantic models, unknown keys refused.

Only structure and ranges live here. Cross-references (strategy and verifier names, models a
tier or verifier points at, step-level strategies on upstreams that can continue a partial
solution, every tier defined) are checked by `policies.loader`, which names the YAML path of
every problem at once.

Tenant semantics (see `router.tenancy`):

- A request that presents an API key must match one of the tenants' `api_key_sha256`
  (hex SHA-256 of the key), else 401 - as soon as any tenant has a key configured.
- A request without a key, or any request while no tenant has a key, is served as
  `anonymous_tenant` (its caps apply when it is also listed under `tenants`); with
  `anonymous_tenant: null` such requests get 401.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from classifier.base import Tier
from router.vocab.prompting import PROMPT_FORMATS
from router.vocab.upstream import Capabilities, Price

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Strict mode would accept only enum instances; YAML gives strings.
TierName = Annotated[Tier, Field(strict=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CapabilitiesSpec(_Strict):
    chat: bool = True
    completions: bool = False
    n: bool = False
    logprobs: bool = False
    prefill: bool = False
    thinking: bool = False
    think_tags: bool = False  # the template opens <think> in the prompt: output is thinking first

    def to_capabilities(self) -> Capabilities:
        return Capabilities(**self.model_dump())


class PriceSpec(_Strict):
    """USD per million tokens."""

    input_per_mtok: float = Field(default=0.0, ge=0, le=10_000)
    output_per_mtok: float = Field(default=0.0, ge=0, le=10_000)

    def to_price(self) -> Price:
        return Price(self.input_per_mtok, self.output_per_mtok)


class ModelSpec(_Strict):
    """One upstream model. `api_key_env` names an environment variable, never the key.

    `base_url` unset means the provider's own API (api.openai.com / api.anthropic.com, or the
    SDK's `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL`); the embedded `local` model ignores it.
    `prompt_format` says how a conversation becomes a raw prompt on `/v1/completions` and where
    the answer ends (`router.vocab.prompting`); unset: `qa` (one-line answers) for the
    embedded base model, `transcript` otherwise.
    """

    provider: Literal["openai", "anthropic", "local"]
    base_url: str | None = None
    model: str = Field(min_length=1)
    api_key_env: EnvName | None = None
    capabilities: CapabilitiesSpec = CapabilitiesSpec()
    price: PriceSpec = PriceSpec()
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_concurrency: int = Field(default=8, ge=1, le=4096)
    max_retries: int = Field(default=2, ge=0, le=10)
    # the upstream's context window in tokens: a prompt that cannot fit gets 400 before any
    # call (local: unset = TTC_LOCAL_CTX_PER_SLOT x TTC_LOCAL_PARALLEL, llama.cpp's window)
    context_tokens: int | None = Field(default=None, ge=1)
    # llama.cpp servers report `usage.completion_tokens` for the first of `n` choices only:
    # true asks for logprobs and counts every choice's tokens (the embedded model always does)
    count_choice_tokens: bool = False
    prompt_format: str | None = None

    @field_validator("prompt_format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None and value not in PROMPT_FORMATS:
            raise ValueError(f"unknown prompt format {value!r}; valid: {', '.join(PROMPT_FORMATS)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


# What a verifier service's calls are billed under (`Policy.price_of`); ':' is not allowed
# in policy names, so it cannot collide with a model.
VERIFIER_BILLING = "verifier:"


class VerifierSpec(_Strict):
    """`price` is what a verifier *service* charges (a `prm_http` PRM: its input tokens, as the
    PRM reports them or estimated at 3 characters a token), default zero (a self-hosted PRM).
    Verifiers that call policy models (`llm_judge`, `rollout`) are billed at that model's
    price instead."""

    kind: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None  # a `models` entry, for verifiers that call an LLM
    price: PriceSpec = Field(default_factory=PriceSpec)


class ClassifierPolicy(_Strict):
    confidence_threshold: float = Field(default=0.45, ge=0, le=1)
    fallback_model: str | None = None  # a `models` entry; None = no LLM fallback
    fallback_timeout_s: float = Field(default=1.0, gt=0, le=60)


class TierFallback(_Strict):
    """What a tier runs for a request that lacks what its verifier needs (a reference answer,
    code tests): another verifier (or none), and optionally another strategy."""

    verifier: str | None = None
    strategy: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class TierPolicy(_Strict):
    strategy: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    model: str = Field(min_length=1)
    verifier: str | None = None
    max_tokens: int = Field(default=512, ge=1, le=1_000_000)  # per sample
    token_budget: int | None = Field(default=None, ge=1)  # whole request, every call
    deadline_s: float = Field(default=30.0, gt=0, le=3600)
    fallback: TierFallback | None = None  # for requests without the verifier's inputs


TaskName = Literal[
    "maths", "code", "logic", "planning", "factual", "creative", "rewrite", "chat", "other"
]  # classifier.labels.TASKS


class TaskOverride(_Strict):
    """Replaces parts of the tier's plan for one task type (`router.overrides`)."""

    strategy: str | None = Field(default=None, min_length=1)
    params: dict[str, Any] | None = None  # None: the tier's (or {} when strategy changes)
    model: str | None = Field(default=None, min_length=1)
    verifier: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    min_confidence: float = Field(default=0.0, ge=0, le=1)  # task head's confidence needed


class InteractivePolicy(_Strict):
    """Caps for requests marked `x-ttc-latency: interactive` (or metadata.ttc_latency)."""

    deadline_s: float = Field(default=2.0, gt=0, le=3600)
    strategies: list[str] = Field(default_factory=lambda: ["greedy"], min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)


class LatencyPolicy(_Strict):
    interactive: InteractivePolicy = InteractivePolicy()


class BudgetPolicy(_Strict):
    on_exceeded: Literal["downgrade", "reject"] = "downgrade"
    reservation_ttl_s: int = Field(default=300, ge=1, le=86_400)
    fail_open: bool = False  # serve when Redis is down (caps unenforced)


class TenantPolicy(_Strict):
    api_key_sha256: list[Sha256Hex] = Field(default_factory=list)
    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)
    daily_tokens: int | None = Field(default=None, ge=0)
    monthly_tokens: int | None = Field(default=None, ge=0)
    max_tier: TierName | None = None
    tier_remap: dict[TierName, TierName] = Field(default_factory=dict)
    allow_tier_hint: bool = False


class CachePolicy(_Strict):
    enabled: bool = True
    ttl_s: int = Field(default=3600, ge=1, le=30 * 86_400)
    cache_sampled: bool = False  # cache temperature > 0 results too
    max_entry_bytes: int = Field(default=1_000_000, ge=1, le=64 * 1024 * 1024)


class Policy(_Strict):
    models: dict[Name, ModelSpec] = Field(min_length=1)
    logical_models: list[Name] = Field(default_factory=lambda: ["ttc-auto"], min_length=1)
    verifiers: dict[Name, VerifierSpec] = Field(default_factory=dict)
    classifier: ClassifierPolicy = ClassifierPolicy()
    tiers: dict[TierName, TierPolicy]
    budgets: BudgetPolicy = BudgetPolicy()
    tenants: dict[Name, TenantPolicy] = Field(default_factory=dict)
    anonymous_tenant: Name | None = "default"
    cache: CachePolicy = CachePolicy()
    tasks: dict[TaskName, TaskOverride] = Field(default_factory=dict)
    latency: LatencyPolicy = LatencyPolicy()

    def tenant(self, name: str) -> TenantPolicy | None:
        return self.tenants.get(name)

    def price_of(self, name: str) -> Price | None:
        """The price of what `name` spent: a policy model, or `verifier:<name>` (a verifier
        service); None when the policy names neither."""
        if name.startswith(VERIFIER_BILLING):
            spec = self.verifiers.get(name.removeprefix(VERIFIER_BILLING))
            return None if spec is None else spec.price.to_price()
        model = self.models.get(name)
        return None if model is None else model.price.to_price()

    @property
    def has_api_keys(self) -> bool:
        return any(t.api_key_sha256 for t in self.tenants.values())


__all__ = [
    "NAME_PATTERN",
    "VERIFIER_BILLING",
    "BudgetPolicy",
    "CachePolicy",
    "CapabilitiesSpec",
    "ClassifierPolicy",
    "InteractivePolicy",
    "LatencyPolicy",
    "ModelSpec",
    "Policy",
    "PriceSpec",
    "TaskOverride",
    "TenantPolicy",
    "TierFallback",
    "TierPolicy",
    "VerifierSpec",
]
