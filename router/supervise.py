"""Supervision of the embedded Redis (no `TTC_REDIS_URL`): a killed or crashed redis-server is
restarted on the same unix socket, with bounded retries, each logged; past the bound the router
gives up and stops itself (SIGTERM to its own process), so an orchestrator restarts the pod and
a laptop user sees the exit instead of a router that stays unready forever.

    restarts:   up to `max_restarts` within `window_s` (default 5 in 10 minutes); each attempt
                waits 0.5, 1, 2 ... s (backoff) before starting the server again
    gives up:   when a restart fails `max_restarts` times in a row, or the window is exhausted

Spend committed since the server's last RDB snapshot (`--save 60 1`) is lost with the process;
reservations of in-flight requests are not, after a clean restart they are simply absent.
`/readyz` shows the state under `checks.store.embedded` (restarts, last exit, last error).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from router.errors import StoreUnavailable
from router.store import EmbeddedRedis

log = structlog.get_logger("ttc.store")


def stop_this_process() -> None:
    """What giving up does by default: SIGTERM to ourselves, so uvicorn shuts down and exits."""
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class EmbeddedHealth:
    """The supervisor's view, for `/readyz`."""

    restarts: int = 0
    last_exit: int | None = None
    last_error: str | None = None
    gave_up: bool = False
    recent: deque[float] = field(default_factory=deque)

    def as_dict(self) -> dict[str, Any]:
        return {"restarts": self.restarts, "last_exit": self.last_exit,
                "last_error": self.last_error, "gave_up": self.gave_up}


async def _down(embedded: EmbeddedRedis) -> int | None:
    """The exit code when the server is gone (-1: not ours and not answering), else None."""
    process = embedded.process
    if process is not None:
        return process.returncode
    return None if await _answers(embedded) else -1


async def _answers(embedded: EmbeddedRedis) -> bool:
    client = aioredis.Redis(unix_socket_path=str(embedded.socket), socket_timeout=1.0)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def supervise(
    embedded: EmbeddedRedis,
    health: EmbeddedHealth,
    stop: asyncio.Event,
    *,
    interval_s: float = 1.0,
    max_restarts: int = 5,
    window_s: float = 600.0,
    give_up: Callable[[], None] = stop_this_process,
) -> None:
    """Watch the embedded server until `stop` is set; restart it when it exits."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return
        except TimeoutError:
            pass
        code = await _down(embedded)
        if code is None:
            continue
        health.last_exit = code
        log.error("embedded_redis_exited", code=code, socket=str(embedded.socket))
        if not await _restart(embedded, health, stop, max_restarts, window_s):
            health.gave_up = True
            log.critical("embedded_redis_gave_up", restarts=health.restarts,
                         error=health.last_error, action="stopping the router")
            give_up()
            return


async def _restart(
    embedded: EmbeddedRedis, health: EmbeddedHealth, stop: asyncio.Event, max_restarts: int,
    window_s: float,
) -> bool:
    now = time.monotonic()
    while health.recent and now - health.recent[0] > window_s:
        health.recent.popleft()
    for attempt in range(1, max_restarts + 1):
        if len(health.recent) >= max_restarts:
            health.last_error = f"{max_restarts} restarts within {window_s:g}s"
            return False
        if stop.is_set():
            return True
        await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        health.recent.append(time.monotonic())
        try:
            await embedded.start()
        except (StoreUnavailable, OSError) as exc:
            health.last_error = str(exc)
            log.error("embedded_redis_restart_failed", attempt=attempt, error=str(exc))
            continue
        health.restarts += 1
        health.last_error = None
        log.warning("embedded_redis_restarted", attempt=attempt, restarts=health.restarts)
        return True
    return False


__all__ = ["EmbeddedHealth", "stop_this_process", "supervise"]
