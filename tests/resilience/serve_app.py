"""Runs the router as its own process for tests that read its stderr: settings from the
`TTC_*` environment, a `FixedClassifier` (tier from `TTC_TEST_FIXED_TIER`, default medium)
instead of the embedding model. `python -m tests.resilience.serve_app`."""

from __future__ import annotations

import os


def main() -> None:
    import uvicorn

    from classifier.base import FixedClassifier, Tier
    from router.app import create_app
    from router.settings import Settings

    settings = Settings()
    tier = Tier(os.environ.get("TTC_TEST_FIXED_TIER", "medium"))
    app = create_app(settings, classifier=FixedClassifier(tier))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
