"""LLM providers behind the `Upstream` protocol."""

from router.upstreams.base import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    Message,
    Price,
    StreamDelta,
    Upstream,
    Usage,
)

__all__ = [
    "Capabilities",
    "Choice",
    "Generation",
    "GenerationRequest",
    "Message",
    "Price",
    "StreamDelta",
    "Upstream",
    "Usage",
]
