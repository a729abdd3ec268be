"""The start-up heap is frozen out of the cyclic garbage collector while the app serves
(`router.app.freeze_startup_heap`), and handed back at shutdown."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from classifier.base import FixedClassifier, Tier


def test_the_startup_heap_is_frozen_while_serving_and_released_after(tmp_path: Path,
                                                                     redis_url: str) -> None:
    from router.app import create_app
    from router.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, redis_url=redis_url, redis_prefix="ttc-gc:"),
                     classifier=FixedClassifier(Tier.EASY))

    async def serve() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    frozen = asyncio.run(serve())
    # the SDKs' and pydantic's type trees alone are tens of thousands of objects
    assert frozen > 20_000
    assert gc.get_freeze_count() == 0
