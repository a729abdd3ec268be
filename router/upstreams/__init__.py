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
from router.upstreams.prompting import PROMPT_FORMATS, PromptFormat, prompt_format

__all__ = [
    "PROMPT_FORMATS",
    "Capabilities",
    "Choice",
    "Generation",
    "GenerationRequest",
    "Message",
    "Price",
    "PromptFormat",
    "StreamDelta",
    "Upstream",
    "Usage",
    "prompt_format",
]
