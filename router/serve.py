"""`ttc-router serve`: uvicorn with one worker, or N worker processes on one port.

One worker (the default): the app runs in this process. N workers (`--workers N` or
`TTC_WORKERS`): uvicorn's supervisor spawns N processes that each build the app from the same
`TTC_*` settings and load their own classifier; the kernel spreads connections over them.

- State is Redis, shared by every worker exactly as it is by every replica, so caps and the
  cache hold across workers. Without `TTC_REDIS_URL` the supervisor starts the embedded Redis
  itself and hands its unix socket to the workers (one server, not one per worker).
- Metrics: Prometheus multiprocess mode. Each worker writes its samples to files under
  `PROMETHEUS_MULTIPROC_DIR` (a fresh temp dir unless set; stale files there are removed at
  start) and `/metrics` on any worker reports the sum over all workers. Gauges report the most
  recent value (spend, caps) or the maximum (event-loop lag) across workers.
- uvloop and httptools are used when installed (`uvicorn[standard]`, a dependency).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from router.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    import importlib.util

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
    }


def prepare_metrics_dir() -> Path:
    """The multiprocess metrics dir: `PROMETHEUS_MULTIPROC_DIR`, emptied, or a new temp dir."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="ttc-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
    return path


def serve(settings: Settings) -> None:
    import uvicorn

    options = uvicorn_options(settings)
    if settings.workers <= 1:
        from router.app import create_app

        uvicorn.run(create_app(settings), **options)
        return
    # The workers read their settings from the environment: export what the CLI overrode.
    os.environ.update(
        TTC_HOST=settings.host, TTC_PORT=str(settings.port), TTC_WORKERS=str(settings.workers)
    )
    if settings.policy_path is not None:
        os.environ["TTC_POLICY_PATH"] = str(settings.policy_path)
    owned_dir = MULTIPROC_ENV not in os.environ
    metrics_dir = prepare_metrics_dir()
    loop = asyncio.new_event_loop()
    embedded = None
    try:
        if not settings.redis_url:
            from router.store import EmbeddedRedis

            embedded = EmbeddedRedis(settings.data_dir)
            loop.run_until_complete(embedded.start())
            os.environ["TTC_REDIS_URL"] = embedded.url
        uvicorn.run(
            "router.app:create_app", factory=True, workers=settings.workers, **options
        )
    finally:
        if embedded is not None:
            loop.run_until_complete(embedded.stop())
        loop.close()
        if owned_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


__all__ = ["prepare_metrics_dir", "serve", "uvicorn_options"]
