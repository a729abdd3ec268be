"""ttc-router: the service (HTTP API, pipeline, tenancy, budgets, cache, upstreams, CLI)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
