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
~`failover_s`); the budget scripts are idempotent per reservation id, so a retried call never
counts twice.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

RedisClient: TypeAlias = "aioredis.Redis | RedisCluster"
RedisMode = Literal["auto", "standalone", "cluster", "sentinel"]
SCHEMES: dict[str, tuple[str, bool]] = {  # scheme -> (mode, tls)
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}


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
    the plain pool would fail the request with "Too many connections" under a burst."""
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
            health_check_interval=30, **common,
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
    # Exponential backoff capped at 0.5 s: ~failover_s of retries across a failover.
    retries = max(1, int(failover_s / 0.5) + 3)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        sentinel_kwargs={"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s},
        ssl=tls, **common,
    )
    primary: aioredis.Redis = sentinel.master_for(
        service,
        db=db,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ReadOnlyError],
        username=user,
        password=password,
    )
    return primary


__all__ = ["RedisClient", "RedisMode", "make_client", "url_mode"]
