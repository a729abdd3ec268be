"""Builds and holds the `Upstream` clients a policy names; rebuilt when the policy changes.

The embedded llama.cpp server is expensive to start, so one `LocalModelServer` is kept across
policy reloads and shared by every `provider: local` model.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from router.errors import PolicyError
from router.metrics import Metrics
from router.settings import Settings
from router.upstreams.base import Upstream
from router.upstreams.local import (
    LOCAL_PROMPT_FORMAT,
    LocalModelConfig,
    LocalModelServer,
    LocalUpstream,
)
from router.upstreams.openai_compat import OpenAICompatUpstream

if TYPE_CHECKING:
    from policies.schema import ModelSpec

log = structlog.get_logger(__name__)


class UpstreamPool:
    """Name -> Upstream for the serving policy. `overrides` (tests, embedding apps) win."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        overrides: Mapping[str, Upstream] | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._overrides = dict(overrides or {})
        self._upstreams: dict[str, Upstream] = {}
        self._local: LocalModelServer | None = None

    def get(self, name: str) -> Upstream:
        try:
            return self._upstreams[name]
        except KeyError:
            raise PolicyError(f"model {name!r} is not configured") from None

    def names(self) -> list[str]:
        return sorted(self._upstreams)

    def items(self) -> list[tuple[str, Upstream]]:
        return sorted(self._upstreams.items())

    async def rebuild(self, models: Mapping[str, ModelSpec]) -> None:
        """Replace the clients with ones for `models`; closes the clients it drops."""
        for upstream in self.install(await self.build(models)):
            await upstream.aclose()

    async def build(self, models: Mapping[str, ModelSpec]) -> dict[str, Upstream]:
        """Clients for `models`, not yet serving (`install` or `discard` them). A client that
        cannot be built raises, after closing the ones already built."""
        new: dict[str, Upstream] = {}
        try:
            for name, spec in models.items():
                new[name] = self._overrides.get(name) or await self._build(name, spec)
        except BaseException:
            await self.discard(new)
            raise
        return new

    def install(self, new: Mapping[str, Upstream]) -> list[Upstream]:
        """Serve the clients `new` (from `build`) in one step; returns the dropped ones, for
        the caller to close."""
        old, self._upstreams = self._upstreams, dict(new)
        return [upstream for name, upstream in old.items()
                if new.get(name) is not upstream and name not in self._overrides]

    async def discard(self, staged: Mapping[str, Upstream]) -> None:
        """Close the clients of a `build` that will not serve."""
        for name, upstream in staged.items():
            if name not in self._overrides and self._upstreams.get(name) is not upstream:
                await upstream.aclose()

    async def _build(self, name: str, spec: ModelSpec) -> Upstream:
        return await PROVIDERS[spec.provider](self, name, spec)

    async def _local_server(self) -> LocalModelServer:
        if self._local is None:
            s = self._settings
            server = LocalModelServer(
                LocalModelConfig(
                    model_path=s.local_model_path,
                    data_dir=s.data_dir,
                    threads=s.local_threads,
                    parallel=s.local_parallel,
                    ctx_per_slot=s.local_ctx_per_slot,
                    cache_ram_mib=s.local_cache_ram_mib,
                )
            )
            await server.astart()
            log.info("local_model_started", base_url=server.base_url)
            self._local = server
        return self._local

    async def aclose(self) -> None:
        for name, upstream in self._upstreams.items():
            if name not in self._overrides:
                await upstream.aclose()
        self._upstreams = {}
        if self._local is not None:
            self._local.stop()
            self._local = None


def _api_key(spec: ModelSpec) -> str | None:
    return os.environ.get(spec.api_key_env) if spec.api_key_env else None


async def _local(pool: UpstreamPool, name: str, spec: ModelSpec) -> Upstream:
    """The embedded llama.cpp server, one per pool, shared by every `local` model."""
    return LocalUpstream(
        name,
        await pool._local_server(),
        timeout_s=spec.timeout_s,
        max_concurrency=spec.max_concurrency,
        metrics=pool._metrics,
        owns_server=False,
        prompt_format=spec.prompt_format or LOCAL_PROMPT_FORMAT,
    )


async def _anthropic(pool: UpstreamPool, name: str, spec: ModelSpec) -> Upstream:
    from router.upstreams.anthropic_api import AnthropicUpstream  # heavy SDK: lazy

    return AnthropicUpstream(
        name,
        model=spec.model,
        api_key=_api_key(spec),
        base_url=spec.base_url,
        capabilities=spec.capabilities.to_capabilities(),
        timeout_s=spec.timeout_s,
        max_concurrency=spec.max_concurrency,
        max_retries=spec.max_retries,
        metrics=pool._metrics,
    )


async def _openai(pool: UpstreamPool, name: str, spec: ModelSpec) -> Upstream:
    # An unset base_url is the OpenAI API (the SDK's default, or OPENAI_BASE_URL): the
    # policy loader is the one place that decides what a model spec needs.
    return OpenAICompatUpstream(
        name,
        base_url=spec.base_url,
        model=spec.model,
        api_key=_api_key(spec),
        capabilities=spec.capabilities.to_capabilities(),
        timeout_s=spec.timeout_s,
        max_concurrency=spec.max_concurrency,
        max_retries=spec.max_retries,
        metrics=pool._metrics,
        count_choice_tokens=spec.count_choice_tokens,
        prompt_format=spec.prompt_format,
    )


Provider = Callable[[UpstreamPool, str, "ModelSpec"], Awaitable[Upstream]]
# `models.<name>.provider` -> how the pool builds its client. The policy schema's
# `ModelSpec.provider` lists these names (a test keeps the two the same).
PROVIDERS: dict[str, Provider] = {"local": _local, "anthropic": _anthropic, "openai": _openai}

__all__ = ["PROVIDERS", "Provider", "UpstreamPool"]
