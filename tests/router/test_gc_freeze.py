"""While the app serves, the start-up heap is frozen out of the cyclic garbage collector and
young collections run less often (`router.app.tune_gc`); shutdown undoes both."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from classifier.base import FixedClassifier, Tier


def test_the_startup_heap_is_frozen_while_serving_and_released_after(tmp_path: Path,
                                                                     redis_url: str) -> None:
    from router.app import GC_YOUNG_THRESHOLD, create_app
    from router.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, redis_url=redis_url, redis_prefix="ttc-gc:"),
                     classifier=FixedClassifier(Tier.EASY))

    async def serve() -> tuple[int, tuple[int, int, int]]:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count(), gc.get_threshold()

    # Another app of this test session may be serving (and have tuned the collector): start
    # from Python's defaults, so what is seen below is this app's doing.
    original = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        frozen, threshold = asyncio.run(serve())
        # the SDKs' and pydantic's type trees alone are tens of thousands of objects
        assert frozen > 20_000
        assert threshold == (GC_YOUNG_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*original)


def test_an_error_answer_to_a_large_body_leaves_no_garbage_holding_it(
    tmp_path: Path, redis_url: str
) -> None:
    """FastAPI's answer to a body that is not JSON leaves the request in a reference cycle;
    with the young threshold raised, that cycle (and the body) would wait for 10,000 new
    objects. The request middleware collects it when the body was large."""
    import httpx
    from starlette.requests import Request

    from router.app import create_app
    from router.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, redis_url=redis_url, redis_prefix="ttc-gc:"),
                     classifier=FixedClassifier(Tier.EASY))
    body = b"{" + b"x" * (256 * 1024)  # not JSON

    def holding_the_body() -> int:
        return sum(1 for o in gc.get_objects()
                   if isinstance(o, Request) and getattr(o, "_body", None) == body)

    async def run() -> tuple[int, int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.post("/v1/chat/completions", content=body,
                                      headers={"content-type": "application/json"})
            return r.status_code, holding_the_body()

    status, held = asyncio.run(run())
    assert status == 400
    assert held == 0
