"""The upstream seam's vocabulary (`router.vocab.upstream`), for the service's own modules."""

from router.vocab.upstream import (
    Capabilities,
    Choice,
    Generation,
    GenerationRequest,
    Message,
    Price,
    Role,
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
    "Role",
    "StreamDelta",
    "Upstream",
    "Usage",
]
