"""redis-py's own asyncio clients, picked by the URL's scheme (or `TTC_REDIS_MODE`).

    redis://[[user]:pass@]host:port/db         one server (also rediss://, unix://)
    redis+cluster://[[user]:pass@]h1:p1,h2:p2  Redis Cluster (`redis.asyncio.cluster.RedisCluster`)
    redis+sentinel://[[user]:pass@]s1:p1,s2:p2,s3:p3/service[/db]
                                               the primary of a Sentinel-managed service
                                               (`redis.asyncio.sentinel.Sentinel.master_for`)

`rediss+cluster://` and `rediss+sentinel://` use TLS. With `mode="cluster"` or
`mode="sentinel"` a plain `redis://` URL is read the same way (the host list as startup nodes or
sentinels; the Sentinel service from the path, else `sentinel_service`).

Every budget script touches only one tenant's keys, which share the `{tenant}` hash tag, so each
runs in one Cluster slot. The Sentinel client rediscovers the primary after a failover and
retries a command that failed on a dropped connection or on the demoted primary (for up to
`failover_s` in all); the budget scripts are idempotent per reservation id, so a retried call
never counts twice.

Two things differ from a bare `Sentinel.master_for` (redis-py 8.1, issues #3560 / #3874):
- every socket connect asks Sentinel for the primary (`_ResolvingConnection`). redis-py only
  does so for a connection the pool hands out fresh; a connection that failed mid-command
  reconnects from `send_packed_command` straight to the address it had, so a request in flight
  when the primary died kept dialling the dead address for the whole retry budget.
- retries stop at a deadline (`DeadlineRetry`), not a count: an attempt can itself take a
  socket timeout (a hung or unreachable primary), so a count sized for the window ran several
  times longer than `failover_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias, TypeVar
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")

RedisClient: TypeAlias = "aioredis.Redis | RedisCluster"
RedisMode = Literal["auto", "standalone", "cluster", "sentinel"]
SCHEMES: dict[str, tuple[str, bool]] = {  # scheme -> (mode, tls)
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}


class DeadlineRetry(Retry):
    """redis-py's `Retry`, bounded by time since the first failure instead of by a count:
    a command gives up about `window_s` after it first failed, plus at most one attempt's
    timeouts, however long each attempt takes. redis-py runs the reconnect's retry loop inside
    the command's with the same object; the inner loop starts later, so it ends no later."""

    def __init__(self, window_s: float, supported_errors: tuple[type[RedisError], ...]) -> None:
        super().__init__(ExponentialBackoff(cap=0.5, base=0.05), -1, supported_errors)
        self.window_s = window_s

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        deadline = time.monotonic() + self.window_s
        failures = 0
        while True:
            try:
                return await do()
            except self._supported_errors as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                delay = self._backoff.compute(failures)
                if time.monotonic() + delay > deadline:
                    raise error
                await asyncio.sleep(delay)


class _ResolvingConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that asks Sentinel for the primary on every socket
    connect, reconnects after a failed command included (see the module docstring)."""

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()  # type: ignore[no-untyped-call]


class _ResolvingSSLConnection(_ResolvingConnection, SSLConnection):
    pass


def url_mode(url: str, mode: RedisMode = "auto") -> tuple[str, bool]:
    """(standalone | cluster | sentinel, tls) for a URL and the configured mode."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SCHEMES:
        found, tls = SCHEMES[scheme]
        if mode not in ("auto", found):
            raise ValueError(f"TTC_REDIS_MODE={mode} contradicts the URL scheme {scheme}://")
        return found, tls
    tls = scheme == "rediss"
    return ("standalone" if mode == "auto" else mode), tls


def _hosts(netloc: str, default_port: int) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    auth, _, hostlist = netloc.rpartition("@")
    user, password = None, None
    if auth:
        user_part, has_password, pw = auth.partition(":")
        user = unquote(user_part) or None
        password = unquote(pw) if has_password else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, ""
        hosts.append((host.strip("[]"), int(port) if port else default_port))
    if not hosts:
        raise ValueError("the Redis URL names no host")
    return user, password, hosts


def make_client(
    url: str,
    *,
    max_connections: int = 64,
    timeout_s: float = 2.0,
    mode: RedisMode = "auto",
    sentinel_service: str = "mymaster",
    failover_s: float = 15.0,
) -> RedisClient:
    """A pooled client with short timeouts, so a dead Redis fails a request fast.

    One server: the pool blocks (up to `timeout_s`) for a free connection when all are busy;
    the plain pool would fail the request with "Too many connections" under a burst. A
    connection error is retried twice at once-ish (20 then 40 ms): after a Redis restart every
    pooled connection is dead and fails on first use, and without a retry each one fails a
    request long after Redis is back; a refused connect still fails within ~0.1 s."""
    kind, tls = url_mode(url, mode)
    common: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": True,
    }
    if kind == "standalone":
        plain = url
        if urlsplit(url).scheme.lower() not in ("redis", "rediss", "unix"):
            plain = "rediss" + url[url.index("://"):] if tls else "redis" + url[url.index("://"):]
        pool = aioredis.BlockingConnectionPool.from_url(
            plain, max_connections=max_connections, timeout=timeout_s,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2, (RedisConnectionError,)),
            retry_on_error=[RedisConnectionError], **common,
        )
        return aioredis.Redis(connection_pool=pool)
    parts = urlsplit(url)
    user, password, hosts = _hosts(parts.netloc, 26379 if kind == "sentinel" else 6379)
    if kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in hosts],
            # per node, and the cluster client fails (not waits) past it: room for bursts
            max_connections=4 * max_connections, ssl=tls, require_full_coverage=True,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
            username=user, password=password, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, decode_responses=True,
        )
    path = [p for p in parts.path.split("/") if p]
    service = unquote(path[0]) if path else sentinel_service
    db = int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        sentinel_kwargs={"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s},
        ssl=tls, **common,
    )
    primary: aioredis.Redis = sentinel.master_for(
        service,
        db=db,
        connection_class=_ResolvingSSLConnection if tls else _ResolvingConnection,
        max_connections=max_connections,
        retry=DeadlineRetry(failover_s, (RedisConnectionError, RedisTimeoutError)),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ReadOnlyError],
        username=user,
        password=password,
    )
    return primary


__all__ = ["DeadlineRetry", "RedisClient", "RedisMode", "make_client", "url_mode"]
