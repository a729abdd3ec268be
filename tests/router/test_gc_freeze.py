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
